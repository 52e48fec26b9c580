"""Feedback rules: what each condition delivers on a hit and a miss (Kagan et al. 2022)."""

from __future__ import annotations

import numpy as np
import pytest

from dishbrain.feedback import (
    FeedbackConfig,
    FreeEnergyFeedback,
    NoFeedback,
    RestCondition,
    SilentFeedback,
    make_feedback,
)
from dishbrain.mea import MEA
from envs.pong import PongConfig


class StimRecorder:
    """Stands in for a Culture: records stimulate()/stop_stimulation() calls at its clock."""

    def __init__(self):
        self.mea = MEA()
        self.t_ms = 1000.0
        self.calls: list[tuple] = []

    def stimulate(self, electrodes, amplitude_mv, rate_hz, duration_ms, random_timing=False):
        self.calls.append((tuple(electrodes), amplitude_mv, rate_hz, duration_ms, random_timing))

    def stop_stimulation(self, electrodes=None):
        self.calls.append(("stop", electrodes))


def test_make_feedback_names_and_unknown():
    assert isinstance(make_feedback("stimulus"), FreeEnergyFeedback)
    assert isinstance(make_feedback("silent"), SilentFeedback)
    assert isinstance(make_feedback("no-feedback"), NoFeedback)
    assert isinstance(make_feedback("rest"), RestCondition)
    allowed = "allowed: stimulus, silent, no-feedback, rest, frozen, yoked"
    with pytest.raises(ValueError, match=f"unknown condition 'reward'; {allowed}"):
        make_feedback("reward")


def test_stimulus_hit_is_100ms_at_100hz_on_all_8_sensory_electrodes():
    culture = StimRecorder()
    rule = make_feedback("stimulus")
    rule.on_event("hit", culture, np.random.default_rng(0))
    assert culture.calls == [(culture.mea.sensory, 75.0, 100.0, 100.0, False)]
    assert rule.last_feedback == ("predictable", 1000.0)
    assert rule.is_active(1099.0) and not rule.is_active(1100.0)


def test_stimulus_miss_is_4s_of_poisson_pulses_at_random_electrodes():
    culture = StimRecorder()
    rule = make_feedback("stimulus", FeedbackConfig(unpredictable_electrodes=3))
    rng = np.random.default_rng(0)
    chosen = set()
    for _ in range(20):
        culture.calls.clear()
        rule.on_event("miss", culture, rng)
        [(electrodes, amp, rate, duration, random_timing)] = culture.calls
        assert len(electrodes) == 3 and set(electrodes) <= set(culture.mea.sensory)
        assert (amp, duration, random_timing) == (150.0, 4000.0, True)
        assert rate * len(electrodes) == pytest.approx(5.0)  # 5 Hz in all, spread over them
        chosen.add(electrodes)
    assert len(chosen) > 5                                    # different electrodes each miss
    assert rule.last_feedback == ("unpredictable", 1000.0)
    assert rule.is_active(4999.0) and not rule.is_active(5000.0)
    assert len(rule.history) == 20
    # Default: all 8 sensory electrodes, 5/8 Hz each.
    culture.calls.clear()
    make_feedback("stimulus").on_event("miss", culture, rng)
    assert culture.calls == [(culture.mea.sensory, 150.0, 5.0 / 8, 4000.0, True)]


@pytest.mark.parametrize("name", ["silent", "no-feedback", "rest"])
def test_other_conditions_never_stimulate(name):
    culture = StimRecorder()
    rule = make_feedback(name)
    for event in ("serve", "hit", "none", "miss"):
        rule.on_event(event, culture, np.random.default_rng(0))
        assert not rule.stimulates_on(event)
    assert culture.calls == [] and rule.last_feedback is None


def test_stimulus_ignores_serve_and_none():
    culture = StimRecorder()
    rule = make_feedback("stimulus")
    for event in ("serve", "none"):
        rule.on_event(event, culture, np.random.default_rng(0))
    assert culture.calls == [] and rule.last_feedback is None


def test_env_overrides_and_flags():
    assert make_feedback("stimulus").env_overrides() == {"miss_pause_ms": 4000.0,
                                                         "serve_after_miss": True}
    assert make_feedback("silent").env_overrides() == {"miss_pause_ms": 4000.0,
                                                       "serve_after_miss": True}
    assert make_feedback("no-feedback").env_overrides() == {"serve_after_miss": False}
    # The pause follows the feedback's duration.
    long = make_feedback("silent", FeedbackConfig(unpredictable_duration_ms=6000))
    assert long.env_overrides()["miss_pause_ms"] == 6000
    for name in ("stimulus", "silent", "no-feedback", "rest"):
        PongConfig().replace(**make_feedback(name).env_overrides())  # valid PongConfig fields
        assert make_feedback(name).blocks_sensory == (name == "rest")
        assert make_feedback(name).name == name


@pytest.mark.parametrize("field, value", [
    ("predictable_rate_hz", 0), ("predictable_duration_ms", -1),
    ("unpredictable_amplitude_mv", "x"),
    ("unpredictable_duration_ms", float("nan")), ("unpredictable_electrodes", 0),
])
def test_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"FeedbackConfig.{field} must be"):
        FeedbackConfig(**{field: value})


# -- with a real (small) culture: the pulses actually delivered ------------------------------------

@pytest.fixture
def small_culture():
    from dishbrain.culture import Culture, CultureConfig
    return Culture(CultureConfig(n_neurons=100), seed=0)


def delivered_pulses(culture, duration_ms):
    """Run `culture` for `duration_ms`; (times in ms from now, electrodes) of every pulse."""
    from brian2 import SpikeMonitor

    start = culture.t_ms
    mon = SpikeMonitor(culture._b.electrodes, name="test_pulse_monitor")
    culture._net.add(mon)
    try:
        culture.run(duration_ms)
        t = np.asarray(mon.variables["t"].get_value()) * 1e3 - start
        i = np.asarray(mon.variables["i"].get_value())
    finally:
        culture._net.remove(mon)
    return t.copy(), i.copy()


def test_real_culture_hit_gets_10_pulses_in_100ms_on_each_sensory_electrode(small_culture):
    rule = make_feedback("stimulus")
    rule.on_event("hit", small_culture, np.random.default_rng(0))
    t, i = delivered_pulses(small_culture, 300.0)
    sensory = small_culture.mea.sensory
    assert sorted(set(i.tolist())) == sorted(sensory)
    for e in sensory:
        assert t[i == e] == pytest.approx(np.arange(0.0, 100.0, 10.0))


def test_real_culture_miss_gets_4s_of_random_pulses_at_random_electrodes(small_culture):
    rule = make_feedback("stimulus")
    rule.on_event("miss", small_culture, np.random.default_rng(0))
    t, i = delivered_pulses(small_culture, 5000.0)
    assert set(i.tolist()) <= set(small_culture.mea.sensory)
    assert len(set(i.tolist())) >= 4                      # spread over the sensory electrodes
    assert 8 <= len(t) <= 35                              # Poisson, 5 Hz x 4 s = 20 expected
    assert t.max() < 4000.0                               # and nothing after the 4 s
    gaps = np.diff(np.sort(t))
    assert gaps.std() > 0.5 * gaps.mean()                 # irregular, not a periodic train


@pytest.mark.parametrize("name", ["silent", "no-feedback", "rest"])
def test_real_culture_other_conditions_deliver_nothing(small_culture, name):
    rule = make_feedback(name)
    for event in ("hit", "miss"):
        rule.on_event(event, small_culture, np.random.default_rng(0))
    t, _ = delivered_pulses(small_culture, 200.0)
    assert t.size == 0


# -- Stage 1b controls (issue 17): Frozen and Yoked ------------------------------------------------

def _stimulus_log(path, events, condition="stimulus"):
    import json
    lines = [{"kind": "header", "agent": "culture", "seed": 3, "condition": condition}]
    lines += [{"kind": kind, "t": step / 100.0, "step": step, "rally": 0, "hits": 0}
              for step, kind in events]
    lines.append({"kind": "end", "t": 1.0, "step": 100, "stopped": False})
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_frozen_stimulates_as_stimulus_and_asks_for_no_plasticity():
    for event in ("hit", "miss", "none"):
        a, b = StimRecorder(), StimRecorder()
        make_feedback("frozen").on_event(event, a, np.random.default_rng(1))
        make_feedback("stimulus").on_event(event, b, np.random.default_rng(1))
        assert a.calls == b.calls
    assert make_feedback("frozen").plastic is False
    assert all(make_feedback(n).plastic for n in ("stimulus", "silent", "no-feedback", "rest",
                                                  "yoked"))
    assert make_feedback("frozen").env_overrides() == make_feedback("stimulus").env_overrides()


def test_yoked_replays_the_source_steps_whatever_its_own_events(tmp_path):
    log = _stimulus_log(tmp_path / "s.jsonl", [(1, "serve"), (5, "hit"), (9, "miss")])
    rule = make_feedback("yoked")
    rule.load_log(log)
    assert rule.schedule == {5: "predictable", 9: "unpredictable"}
    culture = StimRecorder()
    rng = np.random.default_rng(0)
    own = ["serve", "hit", "miss", "none"]          # its own play: ignored
    stims = []
    for step in range(1, 12):
        event = own[step % 4]
        stims.append(rule.stimulates_on(event))
        rule.on_event(event, culture, rng)
        culture.t_ms += 10.0
    assert [k + 1 for k, s in enumerate(stims) if s] == [5, 9]
    assert [c[1:4] for c in culture.calls] == [(75.0, 100.0, 100.0), (150.0, 5.0 / 8, 4000.0)]
    assert [kind for kind, _ in rule.history] == ["predictable", "unpredictable"]
    assert rule.last_feedback == ("unpredictable", 1080.0) and rule.is_active(1080.0 + 3999.0)
    rule.reset()                                     # a new session replays from the start
    assert rule.stimulates_on("none") is False and rule.schedule
    with pytest.raises(ValueError, match="needs a Stimulus session's log"):
        rule.load_log(_stimulus_log(tmp_path / "q.jsonl", [(5, "hit")], condition="silent"))


@pytest.mark.slow
def test_frozen_and_yoked_culture_players(tmp_path):
    from agents.culture import make_culture_agent
    from dishbrain.logs import read_jsonl
    from dishbrain.session import play_session

    frozen = make_culture_agent(seed=0, condition="frozen", n_neurons=50)
    c = frozen.culture.config
    assert not (c.stdp_enabled or c.homeostasis_enabled or c.stdp_tagging)
    assert make_culture_agent(seed=0, n_neurons=50).culture.config.stdp_enabled
    with pytest.raises(ValueError, match="condition 'yoked' needs yoke_log"):
        make_culture_agent(condition="yoked", n_neurons=50)
    with pytest.raises(ValueError, match="yoke_log is only for condition 'yoked'"):
        make_culture_agent(condition="stimulus", n_neurons=50, yoke_log=tmp_path / "x.jsonl")
    source = tmp_path / "stimulus.jsonl"
    play_session(make_culture_agent(seed=1, n_neurons=50, layout="vertical"), log_path=source,
                 minutes=0.5, seed=1, condition="stimulus", progress=False)
    fed = [r["step"] for r in read_jsonl(source) if r["kind"] in ("hit", "miss")]
    assert fed                                       # the source was stimulated at all
    yoked = make_culture_agent(seed=2, condition="yoked", n_neurons=50, yoke_log=source)
    play_session(yoked, log_path=tmp_path / "yoked.jsonl", minutes=0.5, seed=2, progress=False)
    assert len(yoked.feedback.history) == len(fed)
    # At the same steps: the culture's clock reads (step - 1) ticks when step's learn() runs.
    assert [round(t) for _, t in yoked.feedback.history] == [10 * (s - 1) for s in fed]
