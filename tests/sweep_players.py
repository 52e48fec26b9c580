"""A player for tests/test_sweep.py, named as ``sweep_players:make_crash_once``: the first time it
is built (no file at ``marker`` yet) it kills its own process, as an out-of-memory kill or a lost
node would; afterwards it is the random paddle."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from agents.simple import RandomAgent


def make_crash_once(marker: str, seed: int = 0) -> RandomAgent:
    path = Path(marker)
    if not path.exists():
        path.write_text(f"killed pid {os.getpid()}\n", encoding="utf-8")
        os.kill(os.getpid(), signal.SIGKILL)
    return RandomAgent(seed=seed)
