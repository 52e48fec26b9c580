"""A player for tests/test_sweep.py, named as ``sweep_players:make_crash_once``: the first time it
is built (no file at ``marker`` yet) it kills its own process, as an out-of-memory kill or a lost
node would; afterwards it is the random paddle."""

from __future__ import annotations

import os
import signal

from agents.simple import RandomAgent


def make_crash_once(marker: str, seed: int = 0) -> RandomAgent:
    # Created exclusively (O_EXCL), so that of two sessions starting at once only one dies: a
    # check-then-write let both see no marker and both kill themselves (seen once in CI).
    try:
        with open(marker, "x", encoding="utf-8") as f:
            f.write(f"killed pid {os.getpid()}\n")
    except FileExistsError:
        return RandomAgent(seed=seed)
    os.kill(os.getpid(), signal.SIGKILL)
    return RandomAgent(seed=seed)   # not reached
