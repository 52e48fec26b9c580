"""The motor decoder: up regions -> up, down regions -> down, baselines, sigma-delta, layouts."""

from __future__ import annotations

import numpy as np
import pytest

from dishbrain.decoding import DecoderConfig, MotorDecoder, RunningBaseline
from dishbrain.mea import MEA
from envs.pong import ACTION_DOWN, ACTION_STAY, ACTION_UP


@pytest.fixture(scope="module")
def mea():
    return MEA()


def background(mea, rng, rate=2.0):
    return rng.poisson(rate, mea.n_electrodes).astype(float)


def warm(decoder, mea, rng, ticks=300):
    for _ in range(ticks):
        decoder.decode(background(mea, rng))


@pytest.mark.parametrize("mode", ["difference", "linear", "contrast"])
def test_up_regions_move_up_and_down_regions_move_down(mea, mode):
    rng = np.random.default_rng(0)
    dec = MotorDecoder(mea, DecoderConfig(mode=mode, gain=1.0))
    layout = mea.motor_layout(dec.layout)
    warm(dec, mea, rng)
    actions = []
    for _ in range(20):
        counts = background(mea, rng)
        counts[list(layout.up_electrodes)] += 6
        actions.append(dec.decode(counts))
    assert actions.count(ACTION_UP) >= 19 and dec.movement > 0.9
    dec.reset()
    warm(dec, mea, rng)
    actions = []
    for _ in range(20):
        counts = background(mea, rng)
        counts[list(layout.down_electrodes)] += 6
        actions.append(dec.decode(counts))
    assert actions.count(ACTION_DOWN) >= 19 and dec.movement < -0.9


def test_only_up_regions_firing_from_silence(mea):
    """No background at all: a burst in the up regions alone still moves the paddle up."""
    dec = MotorDecoder(mea)
    zero = np.zeros(mea.n_electrodes)
    for _ in range(50):
        assert dec.decode(zero) == ACTION_STAY
    counts = zero.copy()
    counts[list(mea.motor_layout(dec.layout).up_electrodes)] = 1
    assert dec.decode(counts) == ACTION_UP
    counts = zero.copy()
    counts[list(mea.motor_layout(dec.layout).down_electrodes)] = 1
    assert dec.decode(counts) == ACTION_DOWN


def test_each_region_is_normalised_against_its_own_baseline(mea):
    """A region that is always busy does not win: only departures from its baseline count."""
    rng = np.random.default_rng(1)
    dec = MotorDecoder(mea, DecoderConfig(baseline_tau_s=2.0))
    up = list(mea.motor_layout(dec.layout).up_electrodes)
    actions = []
    for _i in range(3000):
        counts = background(mea, rng)
        counts[up] += rng.poisson(10.0, len(up))      # the up regions fire 6x more, always
        actions.append(dec.decode(counts))
    late = actions[1000:]
    assert 0.2 < late.count(ACTION_UP) / len(late) < 0.5
    assert 0.2 < late.count(ACTION_DOWN) / len(late) < 0.5


def test_linear_mode_sigma_delta_mean_tracks_the_command(mea):
    dec = MotorDecoder(mea, DecoderConfig(mode="linear"))
    for command in (0.3, -0.55, 0.0, 0.9, 1.0):
        dec.reset()
        pushes = []
        for _ in range(200):
            dec.normalised = lambda counts, c=command: _fixed_z(dec, c)   # noqa: B023
            a = dec.decode(np.zeros(mea.n_electrodes))
            pushes.append({ACTION_UP: 1, ACTION_DOWN: -1, ACTION_STAY: 0}[a])
            assert dec.movement == pytest.approx(command)
        assert np.mean(pushes) == pytest.approx(command, abs=1 / 200 + 1e-9)
        # And it never drifts: the running sum stays within half a push of the command's.
        assert np.max(np.abs(np.cumsum(pushes) - command * np.arange(1, 201))) <= 0.5 + 1e-9


def _fixed_z(dec: MotorDecoder, movement: float) -> np.ndarray:
    """Normalised region activity whose up - down difference gives `movement` at the gain."""
    z = np.zeros(dec._regions.shape[0])
    up_rows, _ = dec._rows_of[dec.layout]
    z[up_rows[0]] = movement / dec.config.gain
    return z


def test_difference_mode_dead_band(mea):
    dec = MotorDecoder(mea, DecoderConfig(dead_band=1.0))
    cases = ((0.99, ACTION_STAY), (1.01, ACTION_UP), (-1.01, ACTION_DOWN), (0, ACTION_STAY))
    for d, expected in cases:
        dec.normalised = lambda counts, d=d: _fixed_z(dec, d * dec.config.gain)  # noqa: B023
        assert dec.decode(np.zeros(mea.n_electrodes)) == expected


def test_layouts_set_and_switch_after_misses(mea):
    dec = MotorDecoder(mea, DecoderConfig(layout="vertical", switch_layout_after_misses=2))
    assert dec.layout == "vertical"
    dec.on_event("miss")
    assert dec.layout == "vertical"
    dec.on_event("hit")
    dec.on_event("miss")
    names = mea.layout_names
    assert dec.layout == names[(names.index("vertical") + 1) % len(names)]
    dec.set_layout("dishbrain_swapped")
    assert dec.layout == "dishbrain_swapped"
    with pytest.raises(ValueError, match="unknown motor layout 'nope'"):
        dec.set_layout("nope")
    dec.reset()
    assert dec.layout == "vertical"
    # Swapped layout: the same activity moves the paddle the other way.
    up = list(mea.motor_layout("dishbrain").up_electrodes)
    a, b = MotorDecoder(mea), MotorDecoder(mea, DecoderConfig(layout="dishbrain_swapped"))
    zero = np.zeros(mea.n_electrodes)
    for _ in range(20):
        a.decode(zero), b.decode(zero)
    counts = zero.copy()
    counts[up] = 2
    assert a.decode(counts) == ACTION_UP and b.decode(counts) == ACTION_DOWN


def test_running_baseline_tracks_mean_and_variance():
    rng = np.random.default_rng(2)
    b = RunningBaseline(2, tau_s=10.0, dt_s=0.01)
    for _ in range(5000):
        b.update(np.array([rng.normal(3.0, 2.0), rng.normal(-1.0, 0.5)]))
    assert b.mean == pytest.approx([3.0, -1.0], abs=0.3)
    assert np.sqrt(b.var) == pytest.approx([2.0, 0.5], rel=0.15)


@pytest.mark.parametrize("field, value, message", [
    ("mode", "vote", "DecoderConfig.mode must be one of"),
    ("smoothing_ms", 0.0, "DecoderConfig.smoothing_ms must be a finite number > 0"),
    ("baseline_tau_s", 0, "DecoderConfig.baseline_tau_s must be"),
    ("gain", -1, "DecoderConfig.gain must be"),
    ("dead_band", float("inf"), "DecoderConfig.dead_band must be"),
    ("switch_layout_after_misses", -1, "DecoderConfig.switch_layout_after_misses must be"),
])
def test_config_validation_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        DecoderConfig(**{field: value})


def test_bad_layout_and_counts_shape(mea):
    with pytest.raises(ValueError, match="DecoderConfig.layout must be one of"):
        MotorDecoder(mea, DecoderConfig(layout="diagonal"))
    with pytest.raises(ValueError, match=r"counts must have shape \(64,\)"):
        MotorDecoder(mea).decode(np.zeros(10))


def _contrast(mea, **fields):
    return MotorDecoder(mea, DecoderConfig(mode="contrast", dead_band=0.0, **fields))


def test_contrast_mode_removes_a_constant_bias_but_not_the_sign_of_a_change(mea):
    """Up regions always busier than down ones: per tick the push is not pinned up (the common
    baseline takes the bias out), but an extra burst on one side still wins."""
    rng = np.random.default_rng(3)
    dec = _contrast(mea)
    layout = mea.motor_layout(dec.layout)
    up_e, down_e = list(layout.up_electrodes), list(layout.down_electrodes)

    def biased():
        counts = np.zeros(mea.n_electrodes)
        counts[up_e] = rng.poisson(3.0, len(up_e))
        counts[down_e] = rng.poisson(2.0, len(down_e))
        return counts

    for _ in range(3000):                       # 30 s, three baseline time constants
        dec.decode(biased())
    actions = [dec.decode(biased()) for _ in range(2000)]
    assert 0.3 < actions.count(ACTION_UP) / len(actions) < 0.7
    assert ACTION_STAY not in actions           # dead band 0: every tick pushes
    for side, want in ((down_e, ACTION_DOWN), (up_e, ACTION_UP)):
        for _ in range(100):                    # 1 s: the last burst's leaky count has decayed
            dec.decode(biased())
        counts = biased()
        counts[side] += 10
        assert dec.decode(counts) == want


def test_contrast_mode_reads_which_side_fires_not_how_much(mea):
    """A burst that reaches both sides alike moves the command far less than a one-sided one."""
    rng = np.random.default_rng(4)
    dec = _contrast(mea)
    layout = mea.motor_layout(dec.layout)
    warm(dec, mea, rng, ticks=2000)
    z_rest = [abs(dec.contrast(background(mea, rng))) for _ in range(200)]
    both = background(mea, rng)
    both[list(layout.up_electrodes) + list(layout.down_electrodes)] += 20
    z_both = abs(dec.contrast(both))
    dec.reset()
    warm(dec, mea, rng, ticks=2000)
    one = background(mea, rng)
    one[list(layout.up_electrodes)] += 20
    z_one = dec.contrast(one)
    assert z_one > 5 * max(z_both, np.percentile(z_rest, 90))


def test_contrast_mode_smooths_over_about_100_ms(mea):
    """One tick of up spikes in silence keeps the contrast up for the next ~100 ms, then decays;
    with smoothing_ms 10 it is gone within a few ticks."""
    def after_pulse(smoothing_ms):
        dec = _contrast(mea, smoothing_ms=smoothing_ms)
        zero = np.zeros(mea.n_electrodes)
        warm(dec, mea, np.random.default_rng(5), ticks=1000)
        for _ in range(100):
            dec.decode(zero)
        pulse = zero.copy()
        pulse[list(mea.motor_layout(dec.layout).up_electrodes)] = 3
        dec.decode(pulse)
        up = [dec.activity[0]]
        for _ in range(5):
            dec.decode(zero)
            up.append(dec.activity[0])
        return up

    slow, fast = after_pulse(100.0), after_pulse(10.0)
    assert slow[5] == pytest.approx(slow[0] * np.exp(-0.5))       # 50 ms at tau 100 ms
    assert fast[5] < 0.01 * fast[0]
