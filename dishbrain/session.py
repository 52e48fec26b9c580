"""Playing one session: the runner, with its session log written as events happen (the
writer and the format are in ``dishbrain/logs.py``: ``SessionLog``).
"""

from __future__ import annotations

import dataclasses
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from dishbrain.logs import SessionLog
from dishbrain.player import Agent, SessionStopped
from envs.pong import PongConfig


def package_versions() -> dict[str, str]:
    """Versions of the packages a result depends on (recorded in every log header)."""
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for name in ("dishbrain", "numpy", "brian2", "gymnasium", "scipy", "stable-baselines3",
                 "torch"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


class Progress(gym.Wrapper):
    """A tqdm bar in game minutes, updated every `every` steps (cheap)."""

    def __init__(self, env: gym.Env, n_steps: int, desc: str, every: int = 1000,
                 position: int | None = None):
        super().__init__(env)
        from tqdm.auto import tqdm

        self._every = every
        self._count = 0
        tick_s = env.unwrapped.config.dt_s
        self._bar = tqdm(total=round(n_steps * tick_s / 60.0, 2), desc=desc, unit="game min",
                         position=position, leave=position is None,
                         bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} game min "
                                    "[{elapsed}<{remaining}]")
        self._step_min = tick_s / 60.0

    def step(self, action):
        out = self.env.step(action)
        self._count += 1
        if self._count % self._every == 0:
            # to the minute played, never past the total (summed increments overshoot it)
            done = min(self._count * self._step_min, self._bar.total)
            self._bar.update(done - self._bar.n)
        return out

    def close(self):
        self._bar.close()
        super().close()


@dataclass(frozen=True)
class SessionResult:
    log_path: Path
    steps: int
    wall_s: float
    stopped: bool
    interrupted: bool = False  # stopped by Ctrl-C (SIGINT), not by the player or a viewer

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.wall_s if self.wall_s > 0 else float("inf")


def session_steps(minutes: float, tick_ms: float) -> int:
    """Steps of a session of ``minutes`` (in [MIN_MINUTES, MAX_MINUTES], at least one tick)."""
    from dishbrain.limits import MINUTES_ALLOWED, minutes_ok

    if not minutes_ok(minutes):
        raise ValueError(f"minutes must be {MINUTES_ALLOWED}, got {minutes!r}")
    steps = int(round(minutes * 60_000.0 / tick_ms))
    if steps < 1:
        raise ValueError(f"minutes={minutes!r} is shorter than one {tick_ms:g} ms tick")
    return steps


def make_env(config: PongConfig, n_steps: int, render_mode: str | None = None) -> gym.Env:
    """The registered DishBrain/Pong-v0 with a session length of `n_steps`."""
    import envs  # noqa: F401  (registers the env)

    return gym.make("DishBrain/Pong-v0", render_mode=render_mode, config=config,
                    max_episode_steps=n_steps)


def play_session(agent: Agent, *, log_path: str | Path, minutes: float = 20.0, seed: int = 0,
                 env_config: PongConfig | None = None, condition: str | None = None,
                 render_mode: str | None = None, progress: bool | int = True,
                 wrappers: Iterable[Callable[[gym.Env], gym.Env]] = (),
                 agent_config: dict[str, Any] | None = None) -> SessionResult:
    """Play one session of `minutes` game time with `agent`, logging events to `log_path`.

    The player's condition may change the game (`agent.env_overrides()`, e.g. No-feedback has no
    pause after a miss). `progress` is True for a bar, False for none, or an int bar position
    (parallel runs). Ctrl-C or a viewer's quit ends the session cleanly, the log intact.
    """
    config = env_config or PongConfig()
    overrides = agent.env_overrides()
    if overrides:
        config = config.replace(**overrides)
    n_steps = session_steps(minutes, config.tick_ms)
    env = make_env(config, n_steps, render_mode)
    for wrap in wrappers:
        env = wrap(env)
    header = {"agent": agent.name, "seed": seed, "condition": condition,
              "tick_ms": config.tick_ms, "steps_planned": n_steps,
              "env_config": dataclasses.asdict(config), "agent_config": agent_config or {},
              "versions": package_versions()}
    log = SessionLog(env, log_path, header)
    env = log
    if progress is not False:
        position = None if progress is True else int(progress)
        env = Progress(env, n_steps, desc=f"{agent.name} seed {seed}", position=position)
    agent.reset(seed=seed)
    start = time.perf_counter()
    stopped = interrupted = False
    steps = 0
    try:
        steps = agent.play(env, n_steps, seed=seed)
    except (SessionStopped, KeyboardInterrupt) as exc:
        stopped = True
        interrupted = isinstance(exc, KeyboardInterrupt)
        steps = log.steps
    except BaseException:
        env.close()  # no end line: the log shows the session did not finish
        raise
    wall = time.perf_counter() - start
    log.finish(wall, stopped=stopped)
    env.close()
    return SessionResult(Path(log_path), steps, wall, stopped, interrupted)
