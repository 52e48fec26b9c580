"""Player names -> constructors, for the CLI and the experiment runner.

Entries are import strings so that asking for one player never imports another's dependencies
(the RL players need torch; nothing else does). Adding a player is one line here.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from agents.base import Agent

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


def player_names() -> list[str]:
    return list(PLAYERS)


def make_agent(name: str, **options: Any) -> Agent:
    """Build the player called `name`; options the constructor does not take are dropped."""
    if name not in PLAYERS:
        raise ValueError(f"unknown agent {name!r}; allowed: {', '.join(PLAYERS)}")
    module_name, attr = PLAYERS[name].split(":")
    factory = getattr(importlib.import_module(module_name), attr)
    params = inspect.signature(factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        options = {k: v for k, v in options.items() if k in params}
    return factory(**options)
