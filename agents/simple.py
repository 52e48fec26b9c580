"""Reference players: the floor (static), chance (random) and the ceiling (a scripted tracker)."""

from __future__ import annotations

import numpy as np

from dishbrain.player import Agent
from envs.pong import ACTION_DOWN, ACTION_STAY, ACTION_UP, OBS_BALL_Y, OBS_IN_PLAY, OBS_PADDLE_Y


class RandomAgent(Agent):
    """Uniformly random actions: the chance level (cf. the paper's in-silico control)."""

    name = "random"

    def __init__(self, seed: int | None = None):
        self.rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)

    def act(self, obs) -> int:
        return int(self.rng.integers(3))


class StaticAgent(Agent):
    """Never moves: the paddle stays centred (the floor)."""

    name = "static"

    def act(self, obs) -> int:
        return ACTION_STAY


class TrackerAgent(Agent):
    """Moves the paddle's centre towards the ball's height (the ceiling).

    `dead_band` is the distance (as a fraction of the court height) within which it stays put;
    without a ball in play it returns to the centre.
    """

    name = "tracker"

    def __init__(self, dead_band: float = 0.02):
        if not 0 <= dead_band < 0.5:
            raise ValueError(f"TrackerAgent.dead_band must be in [0, 0.5), got {dead_band!r}")
        self.dead_band = dead_band

    def act(self, obs) -> int:
        target = obs[OBS_BALL_Y] if obs[OBS_IN_PLAY] > 0.5 else 0.5
        error = target - obs[OBS_PADDLE_Y]
        if error > self.dead_band:
            return ACTION_DOWN
        if error < -self.dead_band:
            return ACTION_UP
        return ACTION_STAY
