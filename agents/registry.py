"""Player names -> constructors, for the CLI and the experiment runner.

Entries are import strings so that asking for one player never imports another's dependencies
(the RL players need torch; nothing else does). Adding a player is one line here.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from dishbrain.player import Agent, player_names  # noqa: F401  (moved; re-exported for now)

#: name -> "module:callable"; the callable takes keyword options (seed=..., ...) and returns an Agent.
PLAYERS: dict[str, str] = {
    "random": "agents.simple:RandomAgent",
    "static": "agents.simple:StaticAgent",
    "tracker": "agents.simple:TrackerAgent",
    "human": "agents.human:HumanAgent",
    "culture": "agents.culture:make_culture_agent",
    "dqn": "agents.rl:make_dqn",
    "a2c": "agents.rl:make_a2c",
    "ppo": "agents.rl:make_ppo",
}


def make_agent(name: str, **options: Any) -> Agent:
    """Moved to `dishbrain.player.make_agent` (this module goes once importers are converted)."""
    if name in PLAYERS and name not in player_names():  # a test's monkeypatched entry
        name = PLAYERS[name]
    from dishbrain.player import make_agent as _make

    return _make(name, **options)
