"""The log formats (dishbrain/logs.py): session logs plain and compressed, traces, events.txt."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dishbrain import logs
from dishbrain.metrics import load_sessions, read_session

LINES = [
    {"kind": "header", "agent": "test", "seed": 0, "tick_ms": 10},
    {"kind": "serve", "t": 0.0, "step": 0, "rally": 0, "hits": 0},
    {"kind": "hit", "t": 1.5, "step": 150, "rally": 0, "hits": 1},
    {"kind": "miss", "t": 3.0, "step": 300, "rally": 0, "hits": 1},
    {"kind": "end", "t": 4.0, "step": 400, "rallies": 1, "hits": 1, "misses": 1,
     "wall_s": 0.1, "stopped": False},
]


def write_log(path: Path, records=LINES, tail: str = "") -> Path:
    text = "".join(json.dumps(r) + "\n" for r in records) + tail
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def test_plain_and_compressed_logs_read_the_same(tmp_path):
    plain = write_log(tmp_path / "a.jsonl")
    packed = tmp_path / "b.jsonl.gz"
    with open(plain, "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert list(logs.read_jsonl(plain)) == list(logs.read_jsonl(packed)) == LINES
    # A .jsonl path that is on disk only compressed is read from its .gz.
    assert list(logs.read_jsonl(tmp_path / "b.jsonl")) == LINES
    assert logs.resolve_log(tmp_path / "b.jsonl") == packed
    assert logs.resolve_log(tmp_path / "a.jsonl.gz") == plain
    assert logs.resolve_log(tmp_path / "none.jsonl") == tmp_path / "none.jsonl"
    a, b = read_session(plain), read_session(tmp_path / "b.jsonl")
    assert b.source == packed and b.format == "jsonl"
    assert (a.duration_s, list(a.rally_hits)) == (b.duration_s, list(b.rally_hits)) == (4.0, [1])
    assert [s.source.name for s in load_sessions(tmp_path)] == ["a.jsonl", "b.jsonl.gz"]
    assert logs.is_session_log(packed) and not logs.is_session_log(tmp_path / "x.gz")
    assert logs.log_stem(packed) == "b"


def test_cut_last_line_and_bad_lines(tmp_path):
    cut = write_log(tmp_path / "c.jsonl.gz", LINES[:3], tail='{"kind": "mi')
    assert [r["kind"] for r in logs.read_jsonl(cut)] == ["header", "serve", "hit"]
    log = logs.read_session_log(cut)
    assert log.events == [("serve", 0.0), ("hit", 1.5)] and log.end is None
    assert not log.finished
    # A gzip stream cut short (a damaged copy) gives what can be decompressed.
    full = gzip.compress("".join(json.dumps(r) + "\n" for r in LINES).encode())
    (tmp_path / "d.jsonl.gz").write_bytes(full[:-12])
    assert [r["kind"] for r in logs.read_jsonl(tmp_path / "d.jsonl.gz")][:4] == \
        ["header", "serve", "hit", "miss"]
    bad = tmp_path / "e.jsonl"
    bad.write_text('{"kind": "header"}\n[1, 2]\n{"kind": "end", "t": 1}\n')
    with pytest.raises(ValueError, match=r"e\.jsonl:2: expected a JSON object"):
        list(logs.read_jsonl(bad))


def test_log_finished(tmp_path):
    assert logs.log_finished(write_log(tmp_path / "f.jsonl"))
    assert logs.log_finished(write_log(tmp_path / "g.jsonl.gz"))
    assert logs.log_finished(tmp_path / "g.jsonl")  # the name the runner plans, compressed
    stopped = [*LINES[:-1], {**LINES[-1], "stopped": True}]
    assert not logs.log_finished(write_log(tmp_path / "h.jsonl.gz", stopped))
    assert not logs.log_finished(write_log(tmp_path / "i.jsonl", LINES[:-1]))
    assert not logs.log_finished(tmp_path / "missing.jsonl")
    (tmp_path / "j.jsonl.gz").write_bytes(b"\x1f\x8b not gzip")
    assert not logs.log_finished(tmp_path / "j.jsonl.gz")


def test_trace_writer_keeps_a_loadable_npy(tmp_path):
    dtype = logs.trace_dtype(4)
    meta = logs.trace_meta(tick_ms=10.0, env_config={}, player="p", condition=None)
    writer = logs.TraceWriter(tmp_path / "s.jsonl", dtype, meta)
    assert writer.path.name == "s.trace.npy"
    size0 = writer.path.stat().st_size
    assert len(np.load(writer.path)) == 0
    chunks = []
    for k in range(3):
        chunk = np.zeros(100 + k, dtype=dtype)
        chunk["ball_x"] = np.arange(len(chunk)) + 1000 * k
        chunk["counts"][:, k] = 7
        writer.append(chunk)
        chunks.append(chunk)
        loaded = np.load(writer.path)  # loads after every append: the header counts the ticks
        assert np.array_equal(loaded, np.concatenate(chunks))
    writer.close()
    # The header was rewritten in place: the file is the header and the records, nothing more.
    assert writer.path.stat().st_size == size0 + sum(c.nbytes for c in chunks)
    got_meta, records = logs.read_trace(tmp_path / "s.jsonl.gz")  # the log's name, compressed
    assert got_meta == meta and isinstance(records, np.memmap) and len(records) == 303


def test_events_txt_and_spikes(tmp_path):
    path = tmp_path / "events.txt"
    path.write_text("info: recording chip id: 7048\n100: game begin\n20100: ball return\n"
                    "40100: ball missed\n40100: motor layout: 4\n40200: ball bou")
    rec = logs.read_events_txt(path)
    assert rec.header == {"recording chip id": "7048"} and rec.begin_frame == 100
    assert [e for _, e in rec.events] == ["game begin", "ball return", "ball missed",
                                          "motor layout: 4"]
    assert rec.seconds(40100) == 40000 / logs.EVENTS_FRAME_RATE_HZ
    assert logs.motor_layout_of("motor layout: 4") == 4 and logs.motor_layout_of("x") is None
    spikes = np.zeros(5, dtype=logs.SPIKE_RECORD)
    spikes["frame"] = np.arange(5) * 200
    spikes.tofile(tmp_path / "spikes.bin")
    mapped = logs.open_spikes(tmp_path / "spikes.bin")
    assert list(mapped["frame"]) == [0, 200, 400, 600, 800]
    assert logs.open_spikes(tmp_path / "none.bin") is None
