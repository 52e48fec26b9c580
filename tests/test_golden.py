"""Golden sessions: the same seeds play the same sessions, event for event and tick for tick.

`tests/golden/sessions.json` was recorded from commit 5438a93 (before the house was rebuilt,
issue 12) with `dishbrain play ... --out DIR` for each case below. A refactor that changes what a
player does, what the culture simulates on either backend, or what the log and trace writers
record fails here. Volatile fields are left out of the comparison: the header's versions and
start time, the end line's wall time; of the header only what defines the session is compared
(new config fields may be added to `agent_config` without changing a session).

The compiled backend's floating-point order depends on the compiler and CPU; the golden file was
recorded on this project's machine class (gcc 12, x86_64), where CI runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

GOLDEN = json.loads((Path(__file__).parent / "golden" / "sessions.json").read_text())
HEADER_KEYS = ("kind", "agent", "seed", "condition", "tick_ms", "steps_planned", "env_config")


def _comparable(lines: list[dict]) -> list[dict]:
    out = []
    for record in lines:
        if record["kind"] == "header":
            record = {k: record.get(k) for k in HEADER_KEYS}
        elif record["kind"] == "end":
            record = {k: v for k, v in record.items() if k != "wall_s"}
        out.append(record)
    return out


def _read_log(path: Path) -> list[dict]:
    from dishbrain.logs import read_jsonl

    return list(read_jsonl(path))


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_golden_session(case, tmp_path):
    golden = GOLDEN[case]
    if case.endswith("standalone"):
        from dishbrain.culture.standalone import standalone_available

        available, why = standalone_available()
        if not available:
            pytest.skip(why)
    env = dict(os.environ, SDL_VIDEODRIVER="dummy", SDL_AUDIODRIVER="dummy")
    cmd = [sys.executable, "-m", "dishbrain.cli", *golden["argv"], "--out", str(tmp_path),
           "--quiet"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    logs = [p for p in tmp_path.iterdir() if p.name.startswith(golden["log"].split(".")[0])
            and ".trace" not in p.name]
    assert len(logs) == 1, sorted(p.name for p in tmp_path.iterdir())
    assert _comparable(_read_log(logs[0])) == _comparable(golden["lines"])
    if "trace" in golden:
        from dishbrain.logs import read_trace

        meta, ticks = read_trace(logs[0])
        want = golden["trace"]
        assert [str(ticks.dtype), list(ticks.shape)] == [want["dtype"], want["shape"]]
        digest = hashlib.sha256(np.ascontiguousarray(ticks).tobytes()).hexdigest()
        assert digest == want["sha256"]
        assert meta == golden["trace_meta"]
