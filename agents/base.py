"""The one small interface every player implements, and the one loop that plays a session.

A player acts on observations and may learn from transitions. `Agent.play` is the only game loop
in the project: players with a clock of their own (the Brian2 culture runs one long simulation;
stable-baselines3 owns its training loop) override `play` but run the same per-step body,
`Stepper.step`, so the env, its wrappers and the session log are the same for every player.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym


class SessionStopped(Exception):
    """Raised (by a viewer or a signal handler) to end a session early and cleanly."""


class Stepper:
    """One step of the act -> env.step -> learn loop; holds the current observation."""

    def __init__(self, agent: "Agent", env: gym.Env, seed: int | None = None):
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
    """

    name: str = "agent"

    def reset(self, seed: int | None = None) -> None:
        """Prepare for a new session (seed any randomness of the player)."""

    def act(self, obs) -> Any:
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
