"""The lab notebook's probe script (experiments/notebook/mapping.py) on a small saved culture."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from dishbrain.culture import Culture, CultureConfig
from dishbrain.mea import MEAConfig

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "notebook" / "mapping.py"


@pytest.fixture(scope="module")
def mapping():
    spec = importlib.util.spec_from_file_location("notebook_mapping", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(mapping, monkeypatch, *argv):
    monkeypatch.setattr(sys, "argv", ["mapping.py", *argv])
    mapping.main()


@pytest.mark.parametrize("how", ["direct", "direct-anti"])
def test_rewire_sets_the_direct_sensory_motor_weights(how, mapping, monkeypatch, tmp_path):
    from dishbrain.mea import MEA
    config = CultureConfig(n_neurons=400)
    src, dst = tmp_path / "c.npz", tmp_path / "r.npz"
    Culture(config, MEA(MEAConfig(motor_gap_cols=1)), seed=4).save(src)
    _run(mapping, monkeypatch, "rewire", str(src), str(dst), "--how", how)
    with np.load(dst) as f:
        z = {k: f[k] for k in f.files}
    mea = mapping._mea_of(z)
    assert mea.config.motor_gap_cols == 1                     # the saved culture's own MEA
    pre, post, w_start, w = mapping._ee_arrays(z)
    with np.load(src) as f:
        w_before = f["state::culture_synapses_ee::w"]
    sens, up, down = mapping._groups(mea, z["structure::positions_um"],
                                     z["structure::is_excitatory"], "dishbrain")
    touched = np.zeros(len(w), bool)
    for k, s in enumerate(sens):
        right, wrong = (up, down) if (k < 4) == (how == "direct") else (down, up)
        assert np.all(w[s[pre] & right[post]] == config.g_ee_max_per_ms)
        assert np.all(w[s[pre] & wrong[post]] == 0.0)
        touched |= s[pre] & (up | down)[post]
    assert touched.any()
    np.testing.assert_array_equal(w[~touched], w_before[~touched])   # nothing else changed


def test_mapping_table_reports_pushes_per_band(mapping, capsys):
    from envs.pong import ACTION_DOWN, ACTION_UP
    n = 400
    trace = np.zeros(n, dtype=[("ball_y", "<f4"), ("paddle_y", "<f4"), ("in_play", "u1"),
                               ("action", "u1")])
    trace["in_play"] = 1
    trace["ball_y"] = np.tile(np.linspace(10, 590, 8), n // 8)       # every band in turn
    top = trace["ball_y"] < 300
    trace["action"] = np.where(top, ACTION_UP, ACTION_DOWN)           # a perfect topographic map
    mapping.mapping_table(trace, 600.0)
    out = capsys.readouterr().out
    assert out.count("+2.000") == 4                                   # top - bottom, every quarter
    assert "+1.00 +1.00 +1.00 +1.00 -1.00 -1.00 -1.00 -1.00" in out


def _fake_agent(stops=None, calls=None):
    import types

    from dishbrain.feedback import FeedbackConfig, FreeEnergyFeedback

    culture = types.SimpleNamespace(
        t_ms=0.0, mea=types.SimpleNamespace(sensory=list(range(8))),
        stimulate=lambda targets, *a, **k: calls.append(list(targets))
        if calls is not None else None)
    encoder = types.SimpleNamespace(slot=2, stop=lambda c: stops.append(culture.t_ms)
                                    if stops is not None else None)
    agent = types.SimpleNamespace(culture=culture, feedback=FreeEnergyFeedback(FeedbackConfig()),
                                  encoder=encoder)
    agent.learn = types.MethodType(lambda self, *a: None, agent)
    return agent


def _obs(in_play=1.0, ball_y=0.2, paddle_y=0.6, ball_x=0.3):
    from envs.pong import OBS_BALL_X, OBS_BALL_Y, OBS_IN_PLAY, OBS_PADDLE_Y
    obs = np.zeros(8, dtype=np.float32)
    obs[OBS_BALL_Y], obs[OBS_PADDLE_Y], obs[OBS_IN_PLAY], obs[OBS_BALL_X] = (ball_y, paddle_y,
                                                                            in_play, ball_x)
    return obs


@pytest.mark.parametrize("away", [False, True])
def test_shaping_train_follows_pushes_towards_or_with_away_pushes_away(mapping, away):
    """add_shaping: the hit's train on the ball's band after a push towards the approaching
    ball (entries 11-15), or, with away (entry 17), after a push away from it."""
    from envs.pong import ACTION_DOWN, ACTION_UP

    calls = []
    agent = _fake_agent(calls=calls)
    culture = agent.culture
    state = mapping.add_shaping(agent, 1000.0, band=True, away=away)
    obs = _obs()   # ball above the paddle, approaching, in play
    agent.learn(obs, ACTION_UP, 0.0, obs, False, False, {})      # towards the ball (above)
    culture.t_ms = 2000.0
    agent.learn(obs, ACTION_DOWN, 0.0, obs, False, False, {})    # away from it
    assert state["count"] == 1 and calls == [[2]]                # one train, on the ball's band
    assert agent.feedback.last_feedback == ("predictable", 2000.0 if away else 0.0)


def test_yoked_avoidance_removes_the_train_on_the_sources_eligible_ticks(mapping, tmp_path):
    """Entry 24b: the yoke removes the train on its own k-th eligible tick (ball in play, no
    feedback) when the source removed it on its k-th, whatever the yoked culture pushes."""
    from envs.pong import ACTION_DOWN, ACTION_UP
    stops = []
    source = _fake_agent(stops=stops)
    state = mapping.add_avoidance(source, inverted=True)
    pushes = [ACTION_UP, ACTION_DOWN, ACTION_DOWN, ACTION_UP, ACTION_DOWN]   # ball above: up
    for k, action in enumerate(pushes):
        source.culture.t_ms = 10.0 * k
        source.learn(_obs(), action, 0.0, _obs(), False, False, {})
    assert state["eligible"] == [False, True, True, False, True]   # away pushes lose the train
    assert state["log"] == [1, 2, 4] and len(stops) == 3
    path = tmp_path / "s.removed-eligible.npy"
    np.save(path, np.asarray(state["eligible"], dtype=bool))

    yoked = _fake_agent(stops=[])
    ystate = mapping.add_avoidance(yoked, yoked=str(path), yoke_by="eligible")
    seq = [(1.0, ACTION_DOWN), (0.0, ACTION_DOWN), (1.0, ACTION_DOWN), (1.0, ACTION_UP),
           (1.0, ACTION_UP), (1.0, ACTION_UP), (1.0, ACTION_UP)]   # a tick out of play at 1
    for k, (in_play, action) in enumerate(seq):
        yoked.culture.t_ms = 10.0 * k
        yoked.learn(_obs(), action, 0.0, _obs(in_play=in_play), False, False, {})
    # eligible ordinals 0..5 on ticks 0, 2, 3, 4, 5, 6; the source's pattern repeats after 5
    assert ystate["eligible"] == [False, True, True, False, True, False]
    assert ystate["log"] == [2, 3, 5]


def test_yoked_shaping_starts_the_sources_trains_in_order(mapping, tmp_path):
    """Entry 24d: the yoke starts, on its k-th eligible tick, the train the source started on
    its k-th (1 the hit's, 2 the miss's), not the one its own pushes would start."""
    from envs.pong import ACTION_DOWN, ACTION_UP
    source = _fake_agent(calls=[])
    state = mapping.add_shaping(source, 500.0, lf_ms=200.0)
    pushes = [ACTION_UP, ACTION_UP, ACTION_DOWN, ACTION_DOWN]     # ball above: up is towards
    for k, action in enumerate(pushes):
        source.culture.t_ms = 300.0 * k                          # 0, 300 (too soon), 600, 900
        source.learn(_obs(), action, 0.0, _obs(), False, False, {})
    assert state["eligible"] == [1, 0, 2, 0] and state["count"] == 1 and state["lf_count"] == 1
    path = tmp_path / "s.shaping-eligible.npy"
    np.save(path, np.asarray(state["eligible"], dtype=np.int8))

    ycalls = []
    yoked = _fake_agent(calls=ycalls)
    ystate = mapping.add_shaping(yoked, 500.0, lf_ms=200.0, yoked=str(path))
    for k, action in enumerate([ACTION_DOWN, ACTION_DOWN, ACTION_UP, ACTION_UP]):
        yoked.culture.t_ms = 1000.0 * k                          # every tick past the interval
        yoked.learn(_obs(), action, 0.0, _obs(), False, False, {})
    assert ystate["eligible"] == [1, 0, 2, 0]
    assert ystate["count"] == 1 and ystate["lf_count"] == 1
    assert ycalls[0] == list(range(8))                          # the hit's train: all 8


def _saved_culture(mapping, tmp_path):
    """A small culture saved at tmp_path/c.npz: (path, its arrays, its E->E (pre, post, weight),
    its (sensory masks per band, up mask, down mask) on the dishbrain layout)."""
    src = tmp_path / "c.npz"
    Culture(CultureConfig(n_neurons=400), seed=4).save(src)
    with np.load(src) as f:
        z = {k: f[k] for k in f.files}
    pre, post, _, w = mapping._ee_arrays(z)
    groups = mapping._groups(mapping._mea_of(z), z["structure::positions_um"],
                             z["structure::is_excitatory"], "dishbrain")
    return src, z, (pre, post, w), groups


def test_direct_index_reads_a_move_towards_tracking_and_its_mirror(mapping, monkeypatch,
                                                                   tmp_path, capsys):
    """Entry 26l's index: > 0 when the top bands' direct synapses gained onto up (and the bottom
    bands' onto down) relative to the start, < 0 for the mirror image, 0 when untouched."""
    src, z, (pre, post, w), (sens, up, down) = _saved_culture(mapping, tmp_path)

    def saved(name, toward):
        w1 = w.copy()
        for k, s in enumerate(sens):
            right, wrong = (up, down) if (k < 4) == toward else (down, up)
            w1[s[pre] & right[post]] *= 1.5
            w1[s[pre] & wrong[post]] *= 0.5
        path = tmp_path / f"{name}-seed4-stimulus.npz"
        np.savez(path, **{**z, "state::culture_synapses_ee::w": w1})
        return path

    toward, per_band = mapping.direct_index(saved("rule", True))
    finite = per_band[np.isfinite(per_band)]
    assert finite.size >= 4
    np.testing.assert_allclose(np.abs(finite), np.log(3.0), rtol=1e-9)
    assert toward == pytest.approx(2 * np.log(3.0))
    against, _ = mapping.direct_index(saved("yoke", False))
    assert against == pytest.approx(-toward)
    assert mapping.direct_index(src)[0] == pytest.approx(0.0, abs=1e-12)
    _run(mapping, monkeypatch, "direct", "--rule", str(tmp_path / "rule"), "--yoked",
         str(tmp_path / "yoke"), "--seeds", "4")
    out = capsys.readouterr().out
    assert f"mean rule - yoked {4 * np.log(3.0):+.3f}, positive on 1 of 1" in out


def test_shake_reports_weight_displacement_map_changes_and_misses(mapping, monkeypatch,
                                                                  tmp_path, capsys):
    """Entry 28's table: the direct weights' rms displacement over bands (0 for an untouched
    culture, log 3 when every band's up/down ratio moved 3x), the behavioural map's mean |change|
    between quarters (from the trace) and the misses (from the log)."""
    import json

    from dishbrain.logs import TraceWriter, trace_dtype, trace_meta
    from envs.pong import ACTION_DOWN, ACTION_UP

    src, z, (pre, post, w), (sens, up, down) = _saved_culture(mapping, tmp_path)

    def session(condition, shaken, maps, misses):
        stem = tmp_path / f"s-seed4-{condition}"
        w1 = w.copy()
        if shaken:                      # every band's up/down ratio 3x, alternating direction
            for k, s in enumerate(sens):
                a, b = (up, down) if k % 2 == 0 else (down, up)
                w1[s[pre] & a[post]] *= 1.5
                w1[s[pre] & b[post]] *= 0.5
        np.savez(f"{stem}.npz", **{**z, "state::culture_synapses_ee::w": w1})
        n = 8000
        rec = np.zeros(n, dtype=trace_dtype(8))
        rec["in_play"] = 1
        rec["ball_y"] = np.tile([50.0, 550.0], n // 2)             # top band, bottom band
        for q, m in enumerate(maps):    # top - bottom = m: mean push m / 2 on top, -m / 2 below
            sl = slice(q * n // 4, (q + 1) * n // 4)
            k = n // 4 // 2             # ticks of each band in the quarter
            n_up = round(k * (1 + m / 2) / 2)
            top = np.where(np.arange(k) < n_up, ACTION_UP, ACTION_DOWN)
            acts = np.empty(n // 4, dtype=rec["action"].dtype)
            acts[0::2], acts[1::2] = top, np.where(top == ACTION_UP, ACTION_DOWN, ACTION_UP)
            rec["action"][sl] = acts
        lines = [{"kind": "header"}, {"kind": "serve", "t": 0.0, "step": 0, "rally": 0,
                                      "hits": 0}]
        lines += [{"kind": "miss", "t": 1.0 + i, "step": 100 * (i + 1), "rally": i, "hits": 0}
                  for i in range(misses)]
        Path(f"{stem}.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
        writer = TraceWriter(f"{stem}.jsonl", rec.dtype, trace_meta(
            tick_ms=10.0, env_config={"court_height": 600.0}, player="culture",
            condition=condition, array={"name": "x", "positions_um": [[0, 0]] * 8,
                                        "sensory": [0], "motor_up": [[1]],
                                        "motor_down": [[2]]}))
        writer.append(rec)
        writer.close()

    session("stimulus", True, [0.0, 0.5, 0.0, 0.5], 7)
    session("frozen", False, [0.2, 0.2, 0.2, 0.2], 3)
    row = mapping.shake_row(str(tmp_path / "s-seed4-stimulus"))
    assert row["rms"] == pytest.approx(np.log(3.0))
    np.testing.assert_allclose(row["quarters"], [0.0, 0.5, 0.0, 0.5], atol=1e-9)
    assert row["change"] == pytest.approx(0.5) and row["misses"] == 7
    frozen = mapping.shake_row(str(tmp_path / "s-seed4-frozen"))
    assert frozen["rms"] == pytest.approx(0.0, abs=1e-12) and frozen["change"] == pytest.approx(0)
    _run(mapping, monkeypatch, "shake", str(tmp_path / "s"), "--seeds", "4",
         "--conditions", "stimulus", "frozen")
    out = capsys.readouterr().out
    assert f"| 4 | {np.log(3.0):.3f} / 0.500 / 7 | 0.000 / 0.000 / 3 |" in out
    assert f"stimulus - frozen, rms: {np.log(3.0):+.3f} (higher on 1 of 1" in out


def test_trigger_counts_episodes_on_trains_and_aligns_the_spike_clock(mapping, tmp_path, capsys):
    """Entry 32's pre-gate: a trigger episode starts where a motor neuron's fast trace first
    reaches theta; its share on trains and the trains' reach come out as built, with the spike
    file's clock two ticks off the trace's and recovered."""
    from dishbrain.culture import SPIKE_RECORD_DTYPE
    from dishbrain.logs import FEEDBACK_CODES, TraceWriter, trace_dtype, trace_meta

    src, z, _, (_, up, down) = _saved_culture(mapping, tmp_path)
    stem = tmp_path / "t-seed4-frozen"
    Path(f"{stem}.npz").write_bytes(src.read_bytes())
    motor = np.flatnonzero(up | down)
    assert motor.size >= 12
    n, tick, lag = 3000, 10.0, 2
    train_ticks = np.arange(100, 2100, 200)
    spikes = []
    for j, k in enumerate(train_ticks):          # 3 motor neurons fire 4 spikes 5 ms apart
        for m in motor[3 * (j % 3): 3 * (j % 3) + 3]:
            spikes += [(k * tick + 20.0 + 5.0 * s, m) for s in range(4)]
        for m in motor[9:12]:                    # a burst 1 s later: 2 spikes each, below 3
            spikes += [((k + 100) * tick + 20.0 + 5.0 * s, m) for s in range(2)]
    spikes += [(2500 * tick + 5.0 * s, motor[0]) for s in range(4)]   # one off-train episode
    rec = np.array(sorted(spikes), dtype=SPIKE_RECORD_DTYPE)
    trace = np.zeros(n, dtype=trace_dtype(3))
    trace["in_play"] = 1
    trace["feedback"][train_ticks] = FEEDBACK_CODES["predictable"]
    np.add.at(trace["counts"][:, 1], (rec["t_ms"] // tick).astype(int), 1)
    rec["t_ms"] += lag * tick                    # the culture's clock two ticks ahead
    rec.tofile(f"{stem}.spikes.bin")
    Path(f"{stem}.jsonl").write_text('{"kind": "header"}\n')
    writer = TraceWriter(f"{stem}.jsonl", trace.dtype, trace_meta(
        tick_ms=tick, env_config={"court_height": 600.0}, player="culture", condition="frozen",
        array={"name": "x", "positions_um": [[0, 0]] * 3, "sensory": [0], "motor_up": [[1]],
               "motor_down": [[2]]}))
    writer.append(trace)
    writer.close()

    r = mapping.trigger_table(str(stem), [1.0, 3.0, 5.0], 100.0, 200.0, "dishbrain")
    assert r["lag_ticks"] == lag and r["trains"] == train_ticks.size
    one, three, five = r["rows"]
    # theta 1: each spike whose trace had decayed below 1 (5 ms on: 0.95), so the first two of
    # every neuron's spikes in a train or a burst
    assert one["episodes"] == 2 * (30 + 30 + 1)
    assert one["selectivity"] == pytest.approx(60 / 122)
    assert three["episodes"] == 31 and three["selectivity"] == pytest.approx(30 / 31)
    assert three["reach"] == pytest.approx(3 / motor.size)
    assert five["episodes"] == 0 and five["selectivity"] == 0.0
    minutes = n * tick / 60000.0
    assert three["off_per_neuron_min"] == pytest.approx(1 / motor.size / minutes)
