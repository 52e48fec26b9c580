"""Bounds on what one session may ask for, shared by the CLI, the configs and the runner.

A session is at least a few ticks and at most a day of game time: far above the protocol's
20-minute sessions (Kagan et al. 2022), far below where step counts or rest periods overflow
or a run would go on for ever (issue 15: ``--minutes 1e308``, ``minutes = 1e12``).
"""

from __future__ import annotations

#: The shortest session, game minutes (60 ms: six 10 ms ticks).
MIN_MINUTES = 0.001
#: The longest session or rest recording, game minutes (one day).
MAX_MINUTES = 24 * 60.0

MINUTES_ALLOWED = f"a number in [{MIN_MINUTES:g}, {MAX_MINUTES:g}] (game minutes)"


def minutes_ok(value: object) -> bool:
    """Whether ``value`` is a session length in [MIN_MINUTES, MAX_MINUTES] (not a bool)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and MIN_MINUTES <= value <= MAX_MINUTES)
