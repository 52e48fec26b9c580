"""The compiled (cpp_standalone, lock-step) culture backend against the runtime one.

The first test run builds one binary (~25 s for this configuration, cached under
DISHBRAIN_STANDALONE_CACHE or ~/.cache/dishbrain/standalone); later runs reuse it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from dishbrain.culture import Culture, CultureConfig, make_culture, standalone_available
from dishbrain.culture.standalone import StandaloneCulture

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not standalone_available()[0],
                                 reason=f"no standalone backend: {standalone_available()[1]}")]

CONFIG = CultureConfig(n_neurons=200)


def _closed_loop(culture, ms=2000.0):
    """A scripted closed loop: periodic then Poisson stimulation set from the tick, a stop."""
    culture.stimulate([10], 75.0, 20.0, 500.0)
    log = []

    def tick(t, counts):
        log.append((t, np.array(counts, copy=True)))
        if t == 1000.0:
            culture.stimulate([20], 75.0, 40.0, 300.0, random_timing=True)
        if t == 1200.0:
            culture.stop_stimulation([20])

    culture.run(ms, tick=tick, tick_ms=10.0)
    return log


@pytest.mark.parametrize("config", [
    CONFIG, CONFIG.replace(stdp_tagging=True, capture_gain=20.0),
    # Issue 17's options: multiplicative STDP, bidirectional (frequency-dependent) capture, the
    # positive part only, tags gated by the presynaptic rate (all in one build).
    CONFIG.replace(stdp_weight_dependence="multiplicative", stdp_tagging=True, capture_gain=20.0,
                   ltd_capture=True, ltd_capture_gain=20.0, capture_positive_only=True,
                   tag_hf_max=2.0),
    # Entry 13's covariance tags (entry 12's Hebbian tags less one line), gated, signed capture.
    CONFIG.replace(stdp_tagging=True, capture_gain=0.2, tag_rule="covariance", tag_hf_max=2.0),
    # Entry 25's heterosynaptic normalisation of each neuron's outputs (every 100 ms here, so
    # that the 2-s run normalises 20 times), with entry 12's Hebbian tags.
    CONFIG.replace(stdp_tagging=True, capture_gain=20.0, tag_rule="hebbian",
                   capture_positive_only=True, tag_hf_max=2.0, output_normalization=True,
                   output_normalization_interval_ms=100.0),
    # Entry 31's slow inhibition (GABA_B beside GABA_A).
    CONFIG.replace(gaba_b_ratio=1.0),
    # Entry 34's conditional covariance tags, gated, signed capture, with normalisation.
    CONFIG.replace(stdp_tagging=True, capture_gain=200.0, tag_rule="conditional",
                   tag_hf_max=5.0, tag_conditional_spikes=20.0, output_normalization=True,
                   output_normalization_interval_ms=100.0)],
    ids=["stdp", "tagged-stdp", "issue-17-options", "covariance-tags", "normalisation",
         "gaba-b", "conditional-tags"])
def test_same_seed_same_activity_as_runtime(config, tmp_path):
    a, b = Culture(config, seed=3), StandaloneCulture(config, seed=3)
    la, lb = _closed_loop(a), _closed_loop(b)
    assert [t for t, _ in la] == [t for t, _ in lb] == [10.0 * k for k in range(200)]
    ca = np.array([c for _, c in la])
    cb = np.array([c for _, c in lb])
    assert a.t_ms == b.t_ms == 2000.0
    # The compiled build looks its synaptic decays up on the time grid (dishbrain.culture.decay):
    # the two STDP traces on the presynaptic pathway and the presynaptic one on the postsynaptic.
    folder = b.prepare(10.0, verbose=False)
    assert json.loads((folder / "manifest.json").read_text())["decays_tabled"] >= 3
    # ... and its run loop reads the CPU clock once, not after every step.
    from dishbrain.culture.build import _STEP_CLOCK
    assert _STEP_CLOCK not in (folder / "project" / "network.cpp").read_text()
    # Distribution: the mean rate within 10%, electrode-wise counts correlated.
    assert b.firing_rate_hz() > 0.1
    assert b.firing_rate_hz() == pytest.approx(a.firing_rate_hz(), rel=0.1)
    ea, eb = ca.sum(0), cb.sum(0)
    assert np.corrcoef(ea, eb)[0, 1] > 0.9
    # The stimulus response near electrode 10 (0-500 ms, 20 Hz) is there on both paths.
    near = a._record[10].indices.size > 0
    if near:
        assert cb[:50, 10].sum() > 0 and ca[:50, 10].sum() > 0
    # In fact the same code and random numbers give the same spikes (same compiler arithmetic).
    if not np.array_equal(ca, cb):
        pytest.skip("not bit-identical here (compiler floating point); distribution checked")
    # ... and the plasticity code too: the same weights (and tags) at the end.
    a.save(tmp_path / "a.npz")
    b.save(tmp_path / "b.npz")
    with np.load(tmp_path / "a.npz") as za, np.load(tmp_path / "b.npz") as zb:
        for var in ("w", "tag"):
            key = f"state::culture_synapses_ee::{var}"
            if key in za.files or key in zb.files:
                np.testing.assert_allclose(zb[key], za[key], rtol=1e-9, atol=1e-12)
        key = "state::culture_neurons::gb"
        assert (key in za.files) == (key in zb.files) == (config.gaba_b_ratio > 0)
        if key in za.files:
            np.testing.assert_allclose(zb[key], za[key], rtol=1e-9, atol=1e-12)


def test_stimulus_response_matches_runtime():
    """Evoked spikes right after each pulse of a 10 Hz train, both paths."""
    def evoked(cls):
        c = cls(CONFIG, seed=5)
        c.run(200.0)
        c.stimulate([27], 75.0, 10.0, 1000.0)
        t, i = c.record(1000.0)
        rel = (t - 200.0) % 100.0
        return np.sum(rel < 10.0), np.sum((rel >= 50.0) & (rel < 60.0))

    ra, rb = evoked(Culture), evoked(StandaloneCulture)
    assert rb[0] > 3 * max(rb[1], 1) and ra[0] > 3 * max(ra[1], 1)
    assert rb[0] == pytest.approx(ra[0], rel=0.25)


def test_tick_stop_and_time_like_runtime():
    def go(cls):
        c = cls(CONFIG, seed=1)
        seen = []

        def tick(t, counts):
            seen.append(t)
            return t < 300.0

        c.run(1000.0, tick=tick)
        return c.t_ms, seen

    assert go(StandaloneCulture) == go(Culture)


def test_save_on_one_path_load_on_the_other(tmp_path):
    b = StandaloneCulture(CONFIG, seed=7)
    b.run(500.0)
    b.save(tmp_path / "s.npz")
    a = Culture.load(tmp_path / "s.npz")
    assert a.t_ms == pytest.approx(500.0)
    assert a.firing_rate_hz() == pytest.approx(b.firing_rate_hz())
    a.run(300.0)
    a.save(tmp_path / "r.npz")
    c = make_culture(backend="standalone", path=tmp_path / "r.npz")
    assert isinstance(c, StandaloneCulture) and c.t_ms == pytest.approx(800.0)
    c.run(200.0)
    assert c.t_ms == pytest.approx(1000.0) and c.firing_rate_hz() > 0.1
    # The state (weights) travelled: STDP / homeostasis changed them from the start.
    w0 = Culture(CONFIG, seed=7)._b.weights()
    w = c._shadow._b.weights()
    assert w.shape == w0.shape and not np.array_equal(w, w0)


def test_closed_loop_session_on_the_fast_path(tmp_path):
    from agents.culture import make_culture_agent
    from dishbrain.session import play_session

    agent = make_culture_agent(seed=0, n_neurons=200, backend="standalone",
                               state_out=tmp_path / "c.npz")
    assert isinstance(agent.culture, StandaloneCulture)
    result = play_session(agent, log_path=tmp_path / "c.jsonl", minutes=0.1, seed=0,
                          progress=False, condition=agent.condition,
                          agent_config=agent.config_dict)
    assert result.steps == 600 and not result.stopped
    records = [json.loads(line) for line in result.log_path.read_text().splitlines()]
    assert records[0]["kind"] == "header" and records[-1]["kind"] == "end"
    assert records[0]["agent_config"]["backend"] == "standalone"
    assert "serve" in {r["kind"] for r in records}
    assert agent.culture.t_ms == pytest.approx(6000.0)
    assert Culture.load(tmp_path / "c.npz").t_ms == pytest.approx(6000.0)


def test_exception_in_tick_stops_keeps_state_and_propagates():
    c = StandaloneCulture(CONFIG, seed=2)

    def tick(t, counts):
        if t >= 500.0:
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        c.run(2000.0, tick=tick)
    assert c.t_ms == pytest.approx(500.0 + CONFIG.dt_ms)   # as the runtime's Network.stop()
    c.run(100.0)
    assert c.t_ms == pytest.approx(600.0 + CONFIG.dt_ms)


def test_spike_file_like_runtime(tmp_path):
    from dishbrain.culture import SPIKE_RECORD_DTYPE

    files = []
    for cls in (Culture, StandaloneCulture):
        path = tmp_path / f"{cls.__name__}.bin"
        c = cls(CONFIG, seed=4, spike_file=path)
        c.run(300.0)
        c.run(200.0)
        rec = np.fromfile(path, SPIKE_RECORD_DTYPE)
        assert len(rec) == int(c.firing_rate_hz() * 0.5 * CONFIG.n_neurons + 0.5)
        assert np.all(np.diff(rec["t_ms"]) >= 0) and rec["t_ms"].max() < 500.0
        files.append(rec)
    assert len(files[1]) == pytest.approx(len(files[0]), rel=0.2)
