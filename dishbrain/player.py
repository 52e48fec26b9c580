"""The player interface (`Agent`, `Stepper`, `SessionStopped`) and the registry that finds players.

A player acts on observations and may learn from transitions. `Agent.play` is the project's game
loop: `Stepper.step` (act -> env.step -> learn) until the session ends. Players with a clock of
their own (``owns_clock = True``: the Brian2 culture runs one long simulation; stable-baselines3
owns its training loop) override `play` and drive the same env, already wrapped in the session
log by `dishbrain.session.play_session`, so the log and the metrics are the same for every player.

Players are found by name through the ``dishbrain.players`` entry-point group (declared in a
package's ``pyproject.toml``; this project's own players are declared in ours), or by an import
spec ``package.module:factory`` naming any callable that takes keyword options and returns an
`Agent`. Nothing is imported until a player is asked for, so asking for one player never imports
another's dependencies (the RL players need torch; nothing else does).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import gymnasium as gym

#: The entry-point group that names players: ``name = "package.module:factory"``.
ENTRY_POINT_GROUP = "dishbrain.players"


class SessionStopped(Exception):
    """Raised (by a viewer or a signal handler) to end a session early and cleanly."""


class Stepper:
    """One step of the act -> env.step -> learn loop; holds the current observation."""

    def __init__(self, agent: Agent, env: gym.Env, seed: int | None = None):
        self.agent = agent
        self.env = env
        self.obs, self.info = env.reset(seed=seed)
        self.steps = 0

    def step(self) -> bool:
        """Play one step; False once the session is over (the env truncated or terminated)."""
        action = self.agent.act(self.obs)
        next_obs, reward, terminated, truncated, info = self.env.step(action)
        self.agent.learn(self.obs, action, reward, next_obs, terminated, truncated, info)
        self.obs, self.info = next_obs, info
        self.steps += 1
        return not (terminated or truncated)


class Agent:
    """A player of DishBrain Pong.

    Subclasses implement `act`; learning players implement `learn`. `name` is what logs and
    reports call the player.

    Two kinds of player share this interface:

    - ``owns_clock = False`` (the default; random, tracker, human, a player of your own): the
      session's loop drives the player. `play` calls `act(obs)` and then `learn(...)` on every
      step, and the action is a function of `obs`.
    - ``owns_clock = True``: the player's own clock drives the session, and `play` is where it
      runs. The culture runs one Brian2 simulation and calls `Stepper.step` from its tick
      callback, once per game step; its `act` ignores `obs` and decodes the spikes of the tick
      that just ended, because the observation reached the culture earlier, as stimulation:
      `learn` encodes `next_obs` and the culture responds during the next tick. The SB3 players
      (learning online) hand the env to stable-baselines3's ``model.learn``, which steps it
      itself. Play such a player through `play`; calling `act` on its own does not play it.
    """

    name: str = "agent"
    #: Whether `play` runs the player's own clock rather than the act -> step -> learn loop, so
    #: that `act` alone is not how it plays (see the class docstring).
    owns_clock: bool = False

    def reset(self, seed: int | None = None) -> None:
        """Prepare for a new session (seed any randomness of the player)."""

    def act(self, obs) -> Any:
        """The action (0 stay, 1 up, 2 down: `envs.pong`) for observation `obs`."""
        raise NotImplementedError

    def learn(self, obs, action, reward, next_obs, terminated, truncated, info) -> None:
        """Learn from one transition. Default: a player that does not learn."""

    def env_overrides(self) -> dict[str, Any]:
        """PongConfig fields this player's condition needs (e.g. no pause for No-feedback)."""
        return {}

    def play(self, env: gym.Env, n_steps: int, seed: int | None = None) -> int:
        """Play up to `n_steps` steps of `env`; returns the number of steps played."""
        stepper = Stepper(self, env, seed)
        while stepper.steps < n_steps and stepper.step():
            pass
        return stepper.steps

    def close(self) -> None:
        """Release resources (windows, simulations)."""


# -- the registry ------------------------------------------------------------------------------

def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def player_names() -> list[str]:
    """The names of the installed players (the ``dishbrain.players`` entry points), sorted."""
    return sorted(_entry_points())


def is_player_spec(spec: str) -> bool:
    """Whether `spec` has the ``package.module:factory`` form (rather than a registered name)."""
    return isinstance(spec, str) and ":" in spec


def check_player_name(spec: str) -> str:
    """`spec` if it is an installed player's name or has the ``package.module:factory`` form (not
    imported yet: `resolve_player` does that); ValueError with the one-line message otherwise."""
    if not isinstance(spec, str) or not (is_player_spec(spec) or spec in _entry_points()):
        raise ValueError(unknown_player_message(spec))
    return spec


def player_label(spec: str) -> str:
    """A file-name-safe label for a player: its name, or the spec with ':' as '.'."""
    return spec.replace(":", ".")


def unknown_player_message(spec: str) -> str:
    """The one-line error for a name that is no installed player."""
    return (f"unknown player {spec!r}; installed: {', '.join(player_names()) or '(none)'}; "
            "or name any factory as package.module:factory")


def resolve_player(spec: str) -> Callable[..., Agent]:
    """The factory named by `spec`: an installed player's name or ``package.module:factory``.

    Imports only that player's module. Raises ValueError with a one-line message when the name is
    unknown, the spec malformed, or its module or attribute cannot be imported.
    """
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"a player is a name or package.module:factory, got {spec!r}")
    if is_player_spec(spec):
        module_name, _, attr = spec.partition(":")
        if not module_name or not attr or ":" in attr:
            raise ValueError(f"player {spec!r}: expected package.module:factory")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"player {spec!r}: cannot import {module_name!r} "
                             f"({type(exc).__name__}: {exc})") from exc
        factory = module
        for part in attr.split("."):
            try:
                factory = getattr(factory, part)
            except AttributeError:
                raise ValueError(f"player {spec!r}: module {module_name!r} has no "
                                 f"{attr!r}") from None
    else:
        ep = _entry_points().get(spec)
        if ep is None:
            raise ValueError(unknown_player_message(spec))
        try:
            factory = ep.load()
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"player {spec!r} ({ep.value}) is not available here "
                             f"({type(exc).__name__}: {exc})") from exc
    if not callable(factory):
        raise ValueError(f"player {spec!r} is not callable")
    return factory


def _parameters(factory: Callable[..., Agent]) -> dict[str, inspect.Parameter]:
    return dict(inspect.signature(factory).parameters)


def player_options(spec: str) -> list[str] | None:
    """The keyword options the player's factory names, or None if it takes any (``**kwargs``)."""
    params = _parameters(resolve_player(spec))
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def player_accepts(spec: str, option: str) -> bool:
    """Whether the player's factory names `option` (a catch-all ``**kwargs`` does not count: the
    RL factories pass those on as hyperparameters)."""
    params = _parameters(resolve_player(spec))
    return option in params and params[option].kind in (inspect.Parameter.KEYWORD_ONLY,
                                                        inspect.Parameter.POSITIONAL_OR_KEYWORD)


def make_agent(name_or_spec: str, **options: Any) -> Agent:
    """Build the player `name_or_spec` (a name or ``package.module:factory``).

    Options the factory does not take are dropped (the runner passes ``seed`` and ``condition``
    to every player); a factory with ``**kwargs`` gets them all.
    """
    factory = resolve_player(name_or_spec)
    params = _parameters(factory)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        options = {k: v for k, v in options.items() if k in params}
    agent = factory(**options)
    if not isinstance(agent, Agent):
        raise ValueError(f"player {name_or_spec!r} returned {type(agent).__name__}, "
                        "not a dishbrain.player.Agent")
    return agent


__all__ = ["ENTRY_POINT_GROUP", "Agent", "SessionStopped", "Stepper", "check_player_name",
           "is_player_spec", "make_agent", "player_accepts", "player_label", "player_names",
           "player_options", "resolve_player", "unknown_player_message"]
