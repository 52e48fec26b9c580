"""dishbrain.visibility (issue 17, entry 25): the push's share of the motor co-activity, on
synthetic traces whose answer is known, and `dishbrain analyze --visibility`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dishbrain.cli import main
from dishbrain.logs import TraceWriter, read_trace, trace_dtype, trace_meta
from dishbrain.visibility import BANDS, format_visibility, trace_visibility, visibility_of_log
from envs.pong import ACTION_DOWN, ACTION_UP

UP, DOWN = [[0, 1], [2]], [[3], [4, 5]]   # electrode regions of the synthetic layout
N_ELECTRODES = 8


def synthetic(share: float, ticks: int = 60_000, block: int = 1000, base: float = 100.0,
              seed: int = 0):
    """A culture trace whose pushes come in blocks of `block` ticks (10 s, so that the traces'
    settling at each switch hardly counts); in the tick before each push the first up electrode
    records base (1 + share p) spikes and the first down one base (1 - share p), whole numbers
    (p = +1 up, -1 down): the push is `share` of the common level."""
    rng = np.random.default_rng(seed)
    rec = np.zeros(ticks, dtype=trace_dtype(N_ELECTRODES))
    push = np.repeat(rng.choice([1.0, -1.0], size=ticks // block + 1), block)[:ticks]
    rec["action"] = np.where(push > 0, ACTION_UP, ACTION_DOWN)
    rec["in_play"] = 1
    rec["ball_y"] = rng.uniform(0, 600, size=ticks)   # every band often
    counts = np.zeros((ticks, N_ELECTRODES))
    nxt = np.roll(push, -1)   # the counts of tick t are read by the decision at t + 1
    counts[:, UP[0][0]] = base * (1 + share * nxt)
    counts[:, DOWN[0][0]] = base * (1 - share * nxt)
    rec["counts"] = np.round(counts).astype(np.uint8)
    array = {"name": "synthetic", "positions_um": [[0, 0]] * N_ELECTRODES, "sensory": [6, 7],
             "motor_up": UP, "motor_down": DOWN}
    meta = trace_meta(tick_ms=10.0, env_config={"court_height": 600.0}, player="culture",
                      condition="frozen", array=array)
    return meta, rec


def test_a_push_that_is_a_known_share_of_the_counts_is_measured_as_that_share():
    for share in (0.1, 0.3):
        meta, rec = synthetic(share)
        r = trace_visibility(meta, rec, 100.0)
        assert r.visibility.shape == (BANDS,)
        # push / common = 2 share away from the blocks' edges (tau 100 ms << 10 s blocks).
        np.testing.assert_allclose(r.visibility, 2 * share, rtol=0.05)
        assert r.median == pytest.approx(2 * share, rel=0.05)


def test_counts_that_ignore_the_push_show_none_and_the_sign_follows_the_wiring():
    meta, rec = synthetic(0.0)
    assert abs(trace_visibility(meta, rec, 1000.0).median) < 0.01
    meta, rec = synthetic(0.2)
    swapped = dict(meta, array=dict(meta["array"], motor_up=DOWN, motor_down=UP))
    assert trace_visibility(swapped, rec, 100.0).median == pytest.approx(-0.4, rel=0.05)


def test_ticks_out_of_play_and_after_a_train_are_left_out():
    meta, rec = synthetic(0.2)
    rec["in_play"][: len(rec) // 2] = 0
    rec["feedback"][len(rec) // 2:: 50] = 1   # a train every 0.5 s: 100 ms after each is left out
    r = trace_visibility(meta, rec, 100.0)
    assert r.ticks.sum() == pytest.approx(len(rec) // 2 * 0.8, rel=0.01)
    # A band never visited has no number.
    rec["ball_y"] = 10.0
    r = trace_visibility(meta, rec, 100.0)
    assert np.isfinite(r.visibility[0]) and np.isnan(r.visibility[1:]).all()
    assert "-" in format_visibility([r])


def test_bad_input_names_what_is_wrong():
    meta, rec = synthetic(0.1, ticks=1000)
    with pytest.raises(ValueError, match="tau_ms"):
        trace_visibility(meta, rec, 0.0)
    plain = np.zeros(10, dtype=trace_dtype())   # a non-culture player's trace: no counts
    with pytest.raises(ValueError, match="culture"):
        trace_visibility(trace_meta(tick_ms=10.0, env_config={}, player="tracker",
                                    condition=None), plain, 100.0)


def _write_log(tmp_path, name, share):
    meta, rec = synthetic(share, ticks=20_000)
    log = tmp_path / f"{name}.jsonl"
    log.write_text(json.dumps({"kind": "header"}) + "\n")
    writer = TraceWriter(log, rec.dtype, meta)
    writer.append(rec)
    writer.close()
    assert read_trace(log)[1].shape == rec.shape
    return log


def test_analyze_visibility_prints_the_table_and_refuses_a_folder_without_traces(tmp_path,
                                                                                  capsys):
    a = _write_log(tmp_path, "a", 0.1)
    _write_log(tmp_path, "b", 0.3)
    (tmp_path / "untraced.jsonl").write_text("{}\n")
    assert main(["analyze", str(tmp_path), "--visibility", "--tau-ms", "100"]) == 0
    out = capsys.readouterr().out
    assert "a.jsonl | 100 |" in out and "b.jsonl | 100 |" in out
    assert "tau 100 ms: median visibility over sessions" in out and "2 sessions)" in out
    assert "untraced" not in out
    low, high = (visibility_of_log(tmp_path / f"{n}.jsonl", (100.0,))[0].median for n in "ab")
    assert low == pytest.approx(0.2, rel=0.05) and high == pytest.approx(0.6, rel=0.05)
    assert [r.tau_ms for r in visibility_of_log(a)] == [100.0, 1000.0]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["analyze", str(empty), "--visibility"]) == 2
    assert "no session log with a trace" in capsys.readouterr().err
    assert main(["analyze", str(a), "--visibility", "--tau-ms", "100,-5"]) == 2
    assert "--tau-ms" in capsys.readouterr().err
    assert main(["analyze", str(tmp_path / "untraced.jsonl"), "--visibility"]) == 2
    assert "no session log with a trace" in capsys.readouterr().err
