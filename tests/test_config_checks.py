"""The shared field checks of the config dataclasses (`envs.config`): what passes, and the
message."""

import math
import re
from dataclasses import dataclass

import numpy as np
import pytest

from envs.config import check_bool, check_choice, check_int, check_number


def message(check, *args, **kwargs) -> str:
    with pytest.raises(ValueError) as info:
        check(*args, **kwargs)
    return str(info.value)


# -- check_number ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lo_open, hi_open, text", [
    (False, False, "[0.01, 1.0]"),
    (True, False, "(0.01, 1.0]"),
    (False, True, "[0.01, 1.0)"),
    (True, True, "(0.01, 1.0)"),
])
def test_number_bounds_open_and_closed(lo_open, hi_open, text):
    bounds = dict(lo=0.01, hi=1.0, lo_open=lo_open, hi_open=hi_open)
    check_number("C", "x", 0.5, **bounds)
    for end, is_open in ((0.01, lo_open), (1.0, hi_open)):
        if is_open:
            assert message(check_number, "C", "x", end, **bounds) == (
                f"C.x must be a finite number in {text}, got {end!r}")
        else:
            check_number("C", "x", end, **bounds)
    for outside in (0.0, 1.5, -3):
        assert message(check_number, "C", "x", outside, **bounds) == (
            f"C.x must be a finite number in {text}, got {outside!r}")


@pytest.mark.parametrize("bounds, inside, outside, text", [
    (dict(lo=0, lo_open=True), [1e-9, 5, 1e300], [0, -1.0], "> 0"),
    (dict(lo=0.0), [0, 0.0, 7.5], [-1e-9], ">= 0.0"),
    (dict(hi=5, hi_open=True), [-1e300, 4.99], [5, 6.0], "< 5"),
    (dict(hi=5), [5, -2], [5.01], "<= 5"),
])
def test_number_one_sided_bounds(bounds, inside, outside, text):
    for value in inside:
        check_number("C", "x", value, **bounds)
    for value in outside:
        assert message(check_number, "C", "x", value, **bounds) == (
            f"C.x must be a finite number {text}, got {value!r}")


def test_number_without_bounds_still_needs_a_finite_number():
    check_number("C", "x", -1e300)
    assert message(check_number, "C", "x", "1") == "C.x must be a finite number, got '1'"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.nan, np.float64("inf")])
def test_nan_and_inf_fail_even_without_bounds(value):
    with pytest.raises(ValueError, match=r"^C\.x must be a finite number, got"):
        check_number("C", "x", value)
    with pytest.raises(ValueError, match=r"^C\.x must be a finite number in \[0, 1\], got"):
        check_number("C", "x", value, 0, 1, numpy=True)


@pytest.mark.parametrize("value", [True, False])
def test_bools_are_not_numbers(value):
    assert message(check_number, "C", "x", value, lo=0) == (
        f"C.x must be a finite number >= 0, got {value!r}")
    assert message(check_number, "C", "x", value, lo=0, numpy=True).endswith(f"got {value!r}")
    with pytest.raises(ValueError, match=r"^C\.x must be an integer >= 0, got"):
        check_int("C", "x", value, lo=0)


@pytest.mark.parametrize("value", ["1.0", None, (1.0,), [1.0], 1 + 0j, np.array([0.5])])
def test_non_numbers_fail(value):
    for numpy in (False, True):
        with pytest.raises(ValueError, match=r"^C\.x must be a finite number in \[0, 1\], got"):
            check_number("C", "x", value, 0, 1, numpy=numpy)


def test_ints_pass_as_numbers_and_huge_ints_do_not_overflow():
    check_number("C", "x", 3, lo=0)
    check_number("C", "x", 10 ** 400, lo=0)
    with pytest.raises(ValueError, match=r"must be a finite number <= 1.0, got 1000"):
        check_number("C", "x", 10 ** 400, hi=1.0)


def test_numpy_scalars_only_where_allowed():
    # np.float64 is a float: it always passes; other numpy scalars need numpy=True (a config that
    # goes into a JSON log keeps to Python numbers).
    check_number("C", "x", np.float64(0.5), 0, 1)
    for value in (np.float32(0.5), np.int64(1), np.float16(0.25)):
        check_number("C", "x", value, 0, 1, numpy=True)
        with pytest.raises(ValueError, match=r"^C\.x must be a finite number in \[0, 1\], got"):
            check_number("C", "x", value, 0, 1)
    with pytest.raises(ValueError, match="finite number"):
        check_number("C", "x", np.float32("nan"), numpy=True)
    with pytest.raises(ValueError, match="finite number"):
        check_number("C", "x", np.bool_(True), numpy=True)


# -- check_int ------------------------------------------------------------------------------------

def test_int_bounds_are_closed():
    for value in (4, 10, 64):
        check_int("C", "n", value, 4, 64)
    for value in (3, 65, -1):
        assert message(check_int, "C", "n", value, 4, 64) == (
            f"C.n must be an integer in [4, 64], got {value}")
    check_int("C", "n", 10 ** 30, lo=1)
    assert message(check_int, "C", "n", 0, lo=1) == "C.n must be an integer >= 1, got 0"
    assert message(check_int, "C", "n", 9, hi=8) == "C.n must be an integer <= 8, got 9"
    assert message(check_int, "C", "n", "3") == "C.n must be an integer, got '3'"


@pytest.mark.parametrize("value", [8.0, 8.5, np.float64(8.0), math.nan, "8", None])
def test_floats_are_not_ints(value):
    with pytest.raises(ValueError, match=r"^C\.n must be an integer in \[4, 64\], got"):
        check_int("C", "n", value, 4, 64, numpy=True)


def test_numpy_ints_only_where_allowed():
    for value in (np.int64(8), np.int32(8), np.uint8(8)):
        check_int("C", "n", value, 4, 64, numpy=True)
        with pytest.raises(ValueError, match=r"^C\.n must be an integer in \[4, 64\], got"):
            check_int("C", "n", value, 4, 64)
    with pytest.raises(ValueError, match=r"must be an integer in \[4, 64\], got"):
        check_int("C", "n", np.int64(65), 4, 64, numpy=True)


# -- check_bool and check_choice ------------------------------------------------------------------

def test_bool_accepts_only_true_and_false():
    check_bool("C", "flag", True)
    check_bool("C", "flag", False)
    for value in (0, 1, "yes", None, np.bool_(True)):
        assert message(check_bool, "C", "flag", value) == (
            f"C.flag must be True or False, got {value!r}")


def test_choice_lists_the_choices_in_order():
    choices = ("linear", "geometric")
    check_choice("C", "curve", "geometric", choices)
    assert message(check_choice, "C", "curve", "cubic", choices) == (
        "C.curve must be one of ('linear', 'geometric'), got 'cubic'")
    assert message(check_choice, "C", "curve", None, ["a", "b"]) == (
        "C.curve must be one of ('a', 'b'), got None")
    with pytest.raises(ValueError, match="one of"):
        check_choice("C", "curve", "Linear", choices)   # case matters


# -- the owner and the configs that use the checks ------------------------------------------------

@dataclass(frozen=True)
class Thing:
    rate_hz: float = 1.0

    def __post_init__(self):
        check_number(self, "rate_hz", self.rate_hz, lo=0, lo_open=True)


def test_owner_is_a_name_a_class_or_an_instance():
    assert message(check_number, Thing, "rate_hz", 0, lo=0, lo_open=True).startswith(
        "Thing.rate_hz must be")
    assert message(check_number, Thing(), "rate_hz", 0, lo=0, lo_open=True).startswith(
        "Thing.rate_hz must be")
    with pytest.raises(ValueError, match=re.escape("Thing.rate_hz must be a finite number > 0, "
                                                   "got -2.0")):
        Thing(rate_hz=-2.0)


def test_every_config_uses_the_one_message_format():
    from dishbrain.culture import CultureConfig
    from dishbrain.decoding import DecoderConfig
    from dishbrain.encoding import EncoderConfig
    from dishbrain.feedback import FeedbackConfig
    from dishbrain.mea import MEAConfig
    from envs.pong import PongConfig

    cases = [
        (CultureConfig, "dt_ms", 5.0, "a finite number in [0.01, 1.0], got 5.0"),
        (CultureConfig, "n_neurons", 1000.0, "an integer in [10, 1000000], got 1000.0"),
        (CultureConfig, "stdp_tagging", 1, "True or False, got 1"),
        (MEAConfig, "cols", 8.5, "an integer in [4, 64], got 8.5"),
        (MEAConfig, "pitch_um", -1.0, "a finite number in [10.0, 5000.0], got -1.0"),
        (EncoderConfig, "rate_min_hz", 0, "a finite number > 0.0, got 0"),
        (EncoderConfig, "paddle_face_x", 1.0, "a finite number in [0.0, 1.0), got 1.0"),
        (EncoderConfig, "n_sensory", True, "an integer >= 1, got True"),
        (EncoderConfig, "pulse_shape", "square",
         "one of ('biphasic', 'monophasic'), got 'square'"),
        (DecoderConfig, "mode", "vote", "one of ('difference', 'linear', 'contrast'), got 'vote'"),
        (DecoderConfig, "dead_band", math.inf, "a finite number >= 0, got inf"),
        (DecoderConfig, "switch_layout_after_misses", 1.0, "an integer >= 0, got 1.0"),
        (FeedbackConfig, "predictable_rate_hz", 0, "a finite number > 0, got 0"),
        (FeedbackConfig, "unpredictable_electrodes", 0, "an integer >= 1, got 0"),
        (PongConfig, "tick_ms", 0, "a finite number > 0, got 0"),
        (PongConfig, "miss_pause_ms", -1, "a finite number >= 0, got -1"),
        (PongConfig, "paddle_friction", 1.5, "a finite number in [0, 1], got 1.5"),
        (PongConfig, "court_width", True, "a finite number > 0, got True"),
        (PongConfig, "serve_after_miss", 1, "True or False, got 1"),
    ]
    for cls, field, value, allowed in cases:
        with pytest.raises(ValueError) as info:
            cls(**{field: value})
        assert str(info.value) == f"{cls.__name__}.{field} must be {allowed}"
