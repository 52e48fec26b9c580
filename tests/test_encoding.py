"""The sensory code: place code at the band edges, rate code 4-40 Hz, delivery to a culture."""

from __future__ import annotations

import numpy as np
import pytest

from dishbrain.encoding import (
    DishBrainEncoder,
    EncoderConfig,
    PlaceCodeEncoder,
    RateCodeEncoder,
    SensoryCommand,
)
from dishbrain.mea import MEA
from envs.pong import OBS_BALL_X, OBS_BALL_Y, OBS_IN_PLAY, OBS_SIZE, PongEnv


def obs(x: float = 0.5, y: float = 0.5, in_play: bool = True) -> np.ndarray:
    o = np.zeros(OBS_SIZE, dtype=np.float32)
    o[OBS_BALL_X], o[OBS_BALL_Y], o[OBS_IN_PLAY] = x, y, float(in_play)
    return o


class StimRecorder:
    """Stands in for a Culture: records stimulate()/stop_stimulation() calls at its clock."""

    def __init__(self):
        self.mea = MEA()
        self.t_ms = 0.0
        self.calls: list[tuple] = []

    def stimulate(self, electrodes, amplitude_mv, rate_hz, duration_ms, random_timing=False):
        self.calls.append(("stim", self.t_ms, tuple(electrodes), amplitude_mv, rate_hz,
                           duration_ms, random_timing))

    def stop_stimulation(self, electrodes=None):
        self.calls.append(("stop", self.t_ms, None if electrodes is None else tuple(electrodes)))


def test_place_code_band_edges():
    place = PlaceCodeEncoder(8)
    assert place.slot(0.0) == 0
    assert place.slot(1.0) == 7
    for k in range(1, 8):
        assert place.slot(k / 8) == k            # a band's upper edge belongs to the next band
        assert place.slot(k / 8 - 1e-6) == k - 1
    assert place.slot(-0.1) == 0 and place.slot(1.1) == 7
    # The env's float32 observation of court y = 75 * k (the band edges of a 600-unit court).
    for k in range(9):
        y = np.float32(75.0 * k / 600.0)
        assert place.slot(y) == min(k, 7)


def test_rate_code_far_wall_paddle_and_linear():
    c = EncoderConfig(rate_step_hz=0.0)
    rate = RateCodeEncoder(c)
    assert rate.rate_hz(1.0) == pytest.approx(4.0)
    assert rate.rate_hz(c.paddle_face_x) == pytest.approx(40.0)
    assert rate.rate_hz(0.0) == pytest.approx(40.0)  # behind the paddle's face: still "at" it
    mid = (1.0 + c.paddle_face_x) / 2
    assert rate.rate_hz(mid) == pytest.approx(22.0)
    # Default: quantised to 2 Hz steps, same end points.
    q = RateCodeEncoder(EncoderConfig())
    assert q.rate_hz(1.0) == 4.0 and q.rate_hz(0.0) == 40.0
    assert all((q.rate_hz(x) - 4.0) % 2.0 == 0 for x in np.linspace(0, 1, 101))
    geo = RateCodeEncoder(EncoderConfig(rate_curve="geometric", rate_step_hz=0.0))
    assert geo.rate_hz(1.0) == pytest.approx(4.0) and geo.rate_hz(0.0) == pytest.approx(40.0)
    assert geo.rate_hz(mid) == pytest.approx(np.sqrt(4.0 * 40.0))


def test_encode_and_vector():
    enc = DishBrainEncoder()
    assert enc.encode(obs(in_play=False)) is None
    assert not enc.vector(obs(in_play=False)).any()
    cmd = enc.encode(obs(x=1.0, y=0.99))
    assert cmd == SensoryCommand(slot=7, rate_hz=4.0, amplitude_mv=75.0)
    v = enc.vector(obs(x=0.0, y=0.3))
    assert v.shape == (8,) and v.dtype == np.float32
    assert v[2] == pytest.approx(1.0) and np.count_nonzero(v) == 1
    assert enc.vector(obs(x=1.0, y=0.0))[0] == pytest.approx(0.1)


def test_encoder_on_the_env_observation():
    env = PongEnv()
    o, _ = env.reset(seed=1)
    enc = DishBrainEncoder()
    cmd = enc.encode(o)
    assert cmd.slot == 4 and cmd.rate_hz == 22.0  # centre serve: band 4 of 8, half way


@pytest.mark.parametrize("field, value, message", [
    ("rate_min_hz", 0, "EncoderConfig.rate_min_hz must be"),
    ("rate_max_hz", 2.0, "EncoderConfig.rate_max_hz must be >= rate_min_hz"),
    ("amplitude_mv", -75, "EncoderConfig.amplitude_mv must be"),
    ("n_sensory", 0, "EncoderConfig.n_sensory must be"),
    ("rate_curve", "cubic", "EncoderConfig.rate_curve must be one of"),
    ("pulse_shape", "square", "EncoderConfig.pulse_shape must be one of"),
    ("pulse_phase_us", 0, "EncoderConfig.pulse_phase_us must be"),
    ("rate_step_hz", float("nan"), "EncoderConfig.rate_step_hz must be"),
])
def test_config_validation_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        EncoderConfig(**{field: value})
    with pytest.raises(ValueError, match="unknown EncoderConfig field"):
        EncoderConfig.from_dict({"rate_hz": 3})


def test_apply_starts_keeps_switches_at_pulse_and_stops():
    culture = StimRecorder()
    sensory = culture.mea.sensory
    enc = DishBrainEncoder()
    enc.apply(culture, obs(x=1.0, y=0.05))        # band 0, 4 Hz: a train starts at once
    assert culture.calls == [("stim", 0.0, (sensory[0],), 75.0, 4.0, pytest.approx(8.64e7), False)]
    assert enc.state() == {"electrode": sensory[0], "slot": 0, "rate_hz": 4.0}
    culture.t_ms = 10.0
    enc.apply(culture, obs(x=1.0, y=0.06))        # same band and rate: nothing re-issued
    assert len(culture.calls) == 1
    culture.t_ms = 20.0
    enc.apply(culture, obs(x=1.0, y=0.2))         # band 1 now, but the next 4 Hz pulse is at 250 ms
    assert len(culture.calls) == 1 and enc.slot == 0
    for t in range(30, 250, 10):
        culture.t_ms = float(t)
        enc.apply(culture, obs(x=1.0, y=0.2))
    assert len(culture.calls) == 1
    culture.t_ms = 250.0                          # the pulse is due: the train moves to band 1
    enc.apply(culture, obs(x=1.0, y=0.2))
    assert culture.calls[1:] == [
        ("stop", 250.0, (sensory[0],)),
        ("stim", 250.0, (sensory[1],), 75.0, 4.0, pytest.approx(8.64e7), False)]
    culture.t_ms = 260.0
    enc.apply(culture, obs(in_play=False))        # no ball: the train stops
    assert culture.calls[-1] == ("stop", 260.0, (sensory[1],))
    assert enc.electrode is None and enc.rate_hz == 0.0
    enc.apply(culture, obs(in_play=False))
    assert len(culture.calls) == 4


def test_apply_over_a_crossing_keeps_the_pulse_rate():
    """Pulses delivered while the ball crosses the court match the rate code within a few %."""
    culture = StimRecorder()
    enc = DishBrainEncoder()
    tick = 10.0
    pulses_delivered = 0.0
    expected = 0.0
    n = 295                                           # 2.95 s from far wall to paddle
    for i in range(n):
        culture.t_ms = i * tick
        x = 1.0 - i / (n - 1)
        enc.apply(culture, obs(x=x, y=0.5), tick_ms=tick)
        expected += enc.rate.rate_hz(x) * tick / 1000.0
    # Count pulses of each issued train up to the next issue (first pulse at once).
    issues = [c for c in culture.calls if c[0] == "stim"]
    ends = [c[1] for c in issues[1:]] + [n * tick]
    for call, end in zip(issues, ends):
        t0, rate = call[1], call[4]
        pulses_delivered += np.ceil((end - t0) * rate / 1000.0 - 1e-9)
    assert len(issues) <= 19                          # re-issued only on 2 Hz steps
    assert pulses_delivered == pytest.approx(expected, rel=0.06)


def test_real_culture_gets_the_rate_code_over_a_crossing():
    """Delivered pulses over a 2.95 s crossing of a real culture: right electrodes, right count."""
    from brian2 import SpikeMonitor

    from dishbrain.culture import Culture, CultureConfig

    culture = Culture(CultureConfig(n_neurons=100), seed=0)
    enc = DishBrainEncoder()
    n = 295
    expected = []

    def tick(t_ms, counts):
        i = int(round(t_ms / 10.0))
        x, y = 1.0 - i / (n - 1), 0.05 + 0.9 * i / (n - 1)   # far top -> paddle bottom
        enc.apply(culture, obs(x=x, y=y))
        expected.append(enc.rate.rate_hz(x) / 100.0)
        return None

    mon = SpikeMonitor(culture._b.electrodes, name="test_pulse_monitor")
    culture._net.add(mon)
    culture.run(n * 10.0, tick=tick)
    electrodes = np.asarray(mon.variables["i"].get_value())
    sensory = culture.mea.sensory
    assert set(electrodes.tolist()) == set(sensory)             # the ball went through all bands
    assert electrodes.size == pytest.approx(sum(expected), rel=0.06)
    first = [int(np.flatnonzero(electrodes == e)[0]) for e in sensory]
    assert first == sorted(first)                                   # top band first, bottom last
