"""Rally metrics (dishbrain/metrics.py): log reading and the Kagan et al. 2022 definitions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dishbrain.metrics import (
    EVENTS_FRAME_RATE_HZ,
    LearningCurve,
    RallyMetrics,
    Session,
    format_table,
    learning_curve,
    load_sessions,
    published_reference,
    rally_metrics,
    read_session,
    summarize,
    windows,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
PILOT_EVENTS = SHARED / "data" / "spikestream-pilot" / "events.txt"
REFERENCE_CSV = SHARED / "reference" / "kagan2022_fig5.csv"


def write_jsonl(path: Path, rallies, trailing_hits: int = 0, end_t: float | None = None,
                hit_gap_s: float = 1.0) -> Path:
    """A session log in our format; ``rallies`` is a list of (hits, miss time in s)."""
    lines = [{"kind": "header", "agent": "test", "seed": 0, "condition": "stimulus",
              "tick_ms": 10, "env_config": {}, "versions": {}, "started": "2025-01-01T00:00:00"}]
    step = 0
    for r, (hits, t_miss) in enumerate(rallies):
        t_serve = max(0.0, t_miss - hits * hit_gap_s - 0.5)
        lines.append({"kind": "serve", "t": t_serve, "step": step, "rally": r, "hits": 0})
        for h in range(hits):
            t = t_serve + (h + 1) * (t_miss - t_serve) / (hits + 1)
            lines.append({"kind": "hit", "t": t, "step": step, "rally": r, "hits": h + 1})
        lines.append({"kind": "miss", "t": t_miss, "step": step, "rally": r, "hits": hits})
    last_t = rallies[-1][1] if rallies else 0.0
    for h in range(trailing_hits):
        lines.append({"kind": "hit", "t": last_t + h + 1, "step": step, "rally": len(rallies),
                      "hits": h + 1})
    if end_t is not None:
        lines.append({"kind": "end", "t": end_t, "step": step, "rallies": len(rallies),
                      "hits": sum(h for h, _ in rallies), "misses": len(rallies)})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


# Six rallies, three in the first 5 min and three after it:
#   0-5 min:  0, 2, 5 hits      -> ARL 7/3, aces 1/3, long (>3) 1/3
#   5-20 min: 0, 0, 4 hits      -> ARL 4/3, aces 2/3, long (>3) 1/3
RALLIES = [(0, 30.0), (2, 100.0), (5, 250.0), (0, 320.0), (0, 600.0), (4, 1100.0)]


@pytest.fixture
def session(tmp_path) -> Session:
    return read_session(write_jsonl(tmp_path / "run.jsonl", RALLIES, end_t=1200.0))


def test_jsonl_session_fields(session):
    assert session.format == "jsonl"
    assert session.header["agent"] == "test"
    assert session.duration_s == 1200.0
    np.testing.assert_array_equal(session.rally_hits, [0, 2, 5, 0, 0, 4])
    np.testing.assert_array_equal(session.rally_end_s, [30, 100, 250, 320, 600, 1100])
    # Frozen, and the arrays cannot be changed behind its back.
    with pytest.raises(AttributeError):
        session.duration_s = 1.0
    with pytest.raises(ValueError):
        session.rally_hits[0] = 9


def test_whole_session_metrics(session):
    m = rally_metrics(session)
    assert (m.rallies, m.hits, m.aces, m.long) == (6, 11, 3, 2)
    assert m.arl == pytest.approx(11 / 6)
    assert m.aces_pct == pytest.approx(50.0)
    assert m.long_pct == pytest.approx(100 * 2 / 6)


def test_rally_cut_by_the_session_end(tmp_path):
    # Cut with hits: it counts, in the window that reaches the end.
    s = read_session(write_jsonl(tmp_path / "a.jsonl", RALLIES, trailing_hits=2, end_t=1200.0))
    np.testing.assert_array_equal(s.rally_hits, [0, 2, 5, 0, 0, 4, 2])
    assert windows(s)[1].rallies == 4
    # Without an end line (a crash) the unfinished rally is not counted.
    s = read_session(write_jsonl(tmp_path / "b.jsonl", RALLIES, trailing_hits=2))
    assert s.n_rallies == 6
    # A perfect player that never misses still has a rally length.
    s = read_session(write_jsonl(tmp_path / "c.jsonl", [], trailing_hits=7, end_t=1200.0))
    assert rally_metrics(s).arl == 7
    # Counted once: a window starting at the session's end does not count it again.
    assert rally_metrics(s, 0, 20).rallies == 1 and rally_metrics(s, 20, 25).rallies == 0


def test_published_windows(session):
    early, late = windows(session)
    assert (early.start_min, early.end_min, early.window) == (0.0, 5.0, "0-5")
    assert (early.rallies, early.hits) == (3, 7)
    assert early.arl == pytest.approx(7 / 3)
    assert early.aces_pct == pytest.approx(100 / 3)
    assert early.long_pct == pytest.approx(100 / 3)
    assert (late.rallies, late.hits, late.window) == (3, 4, "5-20")
    assert late.arl == pytest.approx(4 / 3)
    assert late.aces_pct == pytest.approx(200 / 3)
    assert late.long_pct == pytest.approx(100 / 3)


def test_long_threshold_parameter(session):
    # Rally lengths 0, 2, 5, 0, 0, 4.
    assert rally_metrics(session).long == 2                          # > 3
    assert rally_metrics(session, long_threshold=4).long == 1        # > 4
    assert rally_metrics(session, long_threshold=4, long_inclusive=True).long == 2  # >= 4
    assert rally_metrics(session, long_threshold=2, long_inclusive=True).long == 3  # >= 2
    m = rally_metrics(session, long_threshold=0)
    assert m.long_pct == pytest.approx(50.0) and m.long_threshold == 0
    with pytest.raises(ValueError, match="long_threshold"):
        rally_metrics(session, long_threshold=-1)


def test_window_boundaries_are_half_open(tmp_path):
    # Misses at exactly 0 s, 5:00, 20:00, and at 5:00 with float noise from summed 10 ms steps.
    noisy_300 = sum([0.01] * 30000)
    assert noisy_300 != 300.0
    s = read_session(write_jsonl(tmp_path / "b.jsonl",
                                 [(1, 0.0), (2, 299.99), (3, 300.0), (4, noisy_300), (5, 1200.0)]))
    early, late = windows(s)
    assert (early.rallies, early.hits) == (2, 3)       # 0 s and 299.99 s
    # 300 s twice, and 1200 s: the session ends at 20:00, so the last window is closed there.
    assert (late.rallies, late.hits) == (3, 12)
    assert (rally_metrics(s, 5, 19.99).rallies, rally_metrics(s, 5, 19.99).hits) == (2, 7)
    assert rally_metrics(s, 20).rallies == 0           # the 20:00 miss belongs to 5-20 only
    assert rally_metrics(s, 0, 5.0 / 60).rallies == 1  # [0, 5 s): only the miss at 0 s
    with pytest.raises(ValueError, match="end_min"):
        rally_metrics(s, 5, 5)


def test_empty_window_is_nan_not_an_error(session):
    m = rally_metrics(session, 19, 20)
    assert (m.rallies, m.hits, m.aces, m.long) == (0, 0, 0, 0)
    assert math.isnan(m.arl) and math.isnan(m.aces_pct) and math.isnan(m.long_pct)


def test_learning_curve_bins(tmp_path):
    rallies = [(1, 10.0), (3, 50.0), (0, 60.0), (2, 170.0), (0, 175.0), (6, 179.999)]
    s = read_session(write_jsonl(tmp_path / "c.jsonl", rallies, end_t=240.0))
    curve = learning_curve(s)  # 1-min bins over the 4-min session
    assert isinstance(curve, LearningCurve)
    starts, bins = curve       # unpacks as (bin_starts_min, bins)
    np.testing.assert_array_equal(starts, [0, 1, 2, 3])
    assert all(isinstance(b, RallyMetrics) for b in bins)
    np.testing.assert_array_equal(curve.rallies, [2, 1, 3, 0])
    np.testing.assert_allclose(curve.arl[:3], [2.0, 0.0, 8 / 3])
    assert math.isnan(curve.arl[3])
    np.testing.assert_allclose(curve.aces_pct[:3], [0.0, 100.0, 100 / 3])
    np.testing.assert_allclose(curve.long_pct[:3], [0.0, 0.0, 100 / 3])
    # Wider bins and an explicit span; the bins partition the rallies.
    starts, bins = learning_curve(s, bin_min=2.0, until_min=6.0)
    np.testing.assert_array_equal(starts, [0, 2, 4])
    assert [b.rallies for b in bins] == [3, 3, 0]
    assert len(learning_curve(s, bin_min=0.5).bins) == 8
    with pytest.raises(ValueError, match="bin_min"):
        learning_curve(s, bin_min=0)


def test_truncated_last_line_is_skipped(tmp_path):
    path = write_jsonl(tmp_path / "crash.jsonl", [(1, 5.0), (2, 20.0)])
    with path.open("a") as f:
        f.write('{"kind": "miss", "t": 31.0, "st')  # the crash cut this line short
    s = read_session(path)
    np.testing.assert_array_equal(s.rally_hits, [1, 2])
    assert s.duration_s == 20.0  # no end line: the last complete event
    # A log cut inside its header is an empty session, not an error.
    only_header = tmp_path / "dead.jsonl"
    only_header.write_text('{"kind": "header", "agent": "te')
    s = read_session(only_header)
    assert s.n_rallies == 0 and s.duration_s == 0.0
    assert math.isnan(rally_metrics(s).arl)


def test_bad_line_in_the_middle_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [(1, 5.0), (2, 20.0)])
    lines = path.read_text().splitlines()
    lines[2] = lines[2][:10]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"bad\.jsonl:3: not valid JSON"):
        read_session(path)


def test_unknown_and_malformed_formats(tmp_path):
    csv = tmp_path / "scores.csv"
    csv.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"scores\.csv: unknown session log format.*events\.txt"):
        read_session(csv)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="empty file"):
        read_session(empty)
    binary = tmp_path / "spikes.jsonl"
    binary.write_bytes(b"\xff\xfe\x00\x81" * 8)
    with pytest.raises(ValueError, match="not a text file"):
        read_session(binary)
    no_header = tmp_path / "noheader.jsonl"
    no_header.write_text('{"kind": "miss", "t": 1.0}\n{"kind": "miss", "t": 2.0}\n')
    with pytest.raises(ValueError, match="header"):
        read_session(no_header)
    no_time = tmp_path / "notime.jsonl"
    no_time.write_text('{"kind": "header"}\n{"kind": "miss"}\n{"kind": "end", "t": 3}\n')
    with pytest.raises(ValueError, match=r'notime\.jsonl:2: .*"t"'):
        read_session(no_time)
    with pytest.raises(ValueError, match="folder"):
        read_session(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_session(tmp_path / "missing.jsonl")


EVENTS_SNIPPET = """\
info: recording started: 2020-12-04 12:07:17 AEDT
info: recording chip id: 7048
info: time limit (seconds): 1200
1000000: game begin
1033200: ball bounce
1092200: ball return
1211000: ball missed
1211000: motor layout: 5
1405200: ball bounce
1465200: ball missed
1465200: motor layout: 2
7000000: ball return
7010000: ball bounce
7020000: ball return
7030000: ball return
7040000: ball return
7050000: ball missed
7050000: motor layout: 3
7060000: ball return
7070000: ball bou"""


def test_events_txt_snippet(tmp_path):
    folder = tmp_path / "pilot"
    folder.mkdir()
    path = folder / "events.txt"
    path.write_text(EVENTS_SNIPPET)  # last line truncated, no trailing newline
    s = read_session(path)
    assert s.format == "events.txt"
    assert s.label == "pilot/events.txt"
    assert s.header["recording chip id"] == "7048"
    assert s.header["recording started"] == "2020-12-04 12:07:17 AEDT"
    assert s.header["time limit (seconds)"] == "1200"
    np.testing.assert_array_equal(s.rally_hits, [1, 0, 4])
    fs = EVENTS_FRAME_RATE_HZ
    np.testing.assert_allclose(s.rally_end_s, np.array([211000, 465200, 6050000]) / fs)
    assert s.duration_s == pytest.approx(6060000 / fs)  # the last complete event
    assert [layout for _, layout in s.motor_layouts] == [5, 2, 3]
    assert s.motor_layouts[0][0] == pytest.approx(211000 / fs)
    early, late = windows(s)  # the third miss is at 302.5 s
    assert (early.rallies, early.hits, late.rallies, late.hits) == (2, 1, 1, 4)
    assert late.long_pct == 100.0


def test_events_txt_detected_by_content_and_errors(tmp_path):
    renamed = tmp_path / "session7048.log"
    renamed.write_text(EVENTS_SNIPPET + "\n")
    assert read_session(renamed).format == "events.txt"
    broken = tmp_path / "events.txt"
    broken.write_text("info: x: 1\n100: game begin\nnot an event\n200: ball missed\n")
    with pytest.raises(ValueError, match=r"events\.txt:3: expected '<frame>: <event>'"):
        read_session(broken)


def test_load_sessions_summarize_and_table(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", RALLIES, end_t=1200.0)
    (tmp_path / "rig" / "day1").mkdir(parents=True)
    (tmp_path / "rig" / "day1" / "events.txt").write_text(EVENTS_SNIPPET)
    (tmp_path / "notes.md").write_text("not a log")
    sessions = load_sessions(tmp_path)
    assert [s.format for s in sessions] == ["jsonl", "events.txt"]
    assert len(load_sessions(tmp_path / "a.jsonl")) == 1

    rows = summarize(tmp_path)
    assert [(r["source"], r["window"]) for r in rows] == [
        ("a.jsonl", "all"), ("a.jsonl", "0-5"), ("a.jsonl", "5-20"),
        ("day1/events.txt", "all"), ("day1/events.txt", "0-5"), ("day1/events.txt", "5-20"),
    ]
    assert rows[1]["arl"] == pytest.approx(7 / 3) and rows[2]["rallies"] == 3
    assert summarize(sessions[0], whole_session=False)[0]["window"] == "0-5"

    table = format_table(rows)
    lines = table.splitlines()
    assert lines[0].split() == [
        "source", "window", "rallies", "hits", "ARL", "aces", "%", "long", "%"]
    assert len(lines) == 2 + len(rows)
    assert len({len(line) for line in lines[:2]}) == 1   # heading and rule line up
    assert lines[3].split() == ["a.jsonl", "0-5", "3", "7", "2.33", "33.3", "33.3"]

    # A window without rallies prints "-" rather than "nan".
    empty = format_table(summarize(sessions[0], bounds_min=[(19, 20)], whole_session=False))
    assert "nan" not in empty and empty.splitlines()[-1].split()[-3:] == ["-", "-", "-"]

    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    with pytest.raises(ValueError, match="no session logs"):
        load_sessions(empty_dir)


def test_published_reference_reads_a_given_file(tmp_path):
    csv = tmp_path / "fig5.csv"
    csv.write_text(
        "# comment\nmetric,group,window,whisker_lo,box_lo,median,mean,box_hi,whisker_hi\n"
        "arl,MCC,0-5,0.2,0.5,0.7,0.77,0.9,1.4\n"
    )
    (rec,) = published_reference(csv)
    assert rec["metric"] == "arl" and rec["group"] == "MCC" and rec["window"] == "0-5"
    assert rec["mean"] == pytest.approx(0.77)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="columns"):
        published_reference(bad)


def test_published_reference_default_location(tmp_path, monkeypatch):
    import dishbrain.metrics as metrics

    # A repository checked out beside no shared/ folder: nothing to report against.
    repo = tmp_path / "repo"
    (repo / "dishbrain").mkdir(parents=True)
    monkeypatch.setattr(metrics, "__file__", str(repo / "dishbrain" / "metrics.py"))
    monkeypatch.chdir(repo)
    assert published_reference() is None
    # ../shared/reference/kagan2022_fig5.csv beside the repository root is found.
    ref = tmp_path / "shared" / "reference" / "kagan2022_fig5.csv"
    ref.parent.mkdir(parents=True)
    ref.write_text("metric,group,window,mean\nlong_pct,IS,5-20,8.19\n")
    assert published_reference() == [
        {"metric": "long_pct", "group": "IS", "window": "5-20", "mean": 8.19}]


def test_published_reference_real_file():
    if not REFERENCE_CSV.is_file():
        pytest.skip(f"{REFERENCE_CSV} absent (the shared reference is not part of the project)")
    records = published_reference(REFERENCE_CSV)
    assert len(records) == 18
    means = {(r["metric"], r["group"], r["window"]): r["mean"] for r in records}
    assert means[("arl", "MCC", "0-5")] == pytest.approx(0.768)
    assert means[("arl", "HCC", "5-20")] == pytest.approx(1.117)


def test_real_pilot_session():
    if not PILOT_EVENTS.is_file():
        pytest.skip(f"{PILOT_EVENTS} absent (the shared pilot data is not part of the project)")
    s = read_session(PILOT_EVENTS)
    assert s.format == "events.txt"
    assert s.header["recording chip id"] == "7048"
    assert 19 * 60 < s.duration_s <= 20 * 60
    assert set(layout for _, layout in s.motor_layouts) <= set(range(10))
    rows = summarize(s)
    print("\n" + format_table(rows))
    for m in [rally_metrics(s), *windows(s)]:
        assert m.rallies > 0
        assert 0 <= m.arl <= 10
        assert 0 <= m.aces_pct <= 100 and 0 <= m.long_pct <= 100
    assert sum(m.rallies for m in windows(s)) == rally_metrics(s).rallies
