"""The game-side input designs of the deep-RL comparison, as Gymnasium observation wrappers.

Khajehnejad et al. 2025 ("Biological neurons compete with deep reinforcement learning in sample
efficiency in a simulated gameworld", Cyborg and Bionic Systems 6:0336, arXiv 2405.16946) gave
DQN, A2C and PPO the same Pong game as the cultures under three input designs, from the richest
to the one that carries only what the culture receives:

- ``ImageObservation``: the game image, drawn directly from the state (no renderer);
- ``PositionsObservation``: the ball's and the paddle's positions;

The third design, the 8-element vector of the culture's sensory stimulation, is the culture's
encoder applied to the observation, so it lives beside that encoder:
``dishbrain.observations.StimulationObservation``; ``dishbrain.observations.INPUT_DESIGNS`` names
all three ("image", "positions", "stim") for the players.

Each wrapper is a pure function of ``DishBrain/Pong-v0``'s observation (plus, for a multi-frame
image, a short history of it), so a player can apply the same transform to observations it is handed
outside the wrapper (``agents.rl.SB3Agent.act``). Each records its constructor arguments
(``gymnasium.utils.RecordConstructorArgs``), so a wrapped env can be recreated from its spec and
passes ``gymnasium.utils.env_checker.check_env``.

Motion: one frame of positions cannot tell a ball coming from one going away, and a feed-forward
network has no memory to work it out (the culture, a recurrent network, integrates its input over
time). This game does not need it, though: the paddle (up to 6 units per step) outruns the ball's
vertical motion (at most 2 units per step), so following the ball's height wins every rally
(``agents.simple.TrackerAgent``). The defaults are therefore the single-time designs of the
paper; ``PositionsObservation(velocity=True)`` and ``ImageObservation(frames=2)`` add the motion
for experiments. The stimulation vector is exactly what the culture receives.
"""

from __future__ import annotations

from collections import deque

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.config import check_int
from envs.pong import (
    OBS_BALL_VX,
    OBS_BALL_VY,
    OBS_BALL_X,
    OBS_BALL_Y,
    OBS_IN_PLAY,
    OBS_PADDLE_Y,
    OBS_SIZE,
    PongConfig,
)


def pong_config_of(env: gym.Env) -> PongConfig:
    """The PongConfig of the DishBrain/Pong-v0 under `env`; TypeError for any other env."""
    config = getattr(env.unwrapped, "config", None)
    if not isinstance(config, PongConfig):
        raise TypeError(
            f"the input-design wrappers wrap DishBrain/Pong-v0, got {type(env.unwrapped).__name__}")
    return config


def check_pong_obs(obs: np.ndarray) -> np.ndarray:
    """`obs` as a float32 DishBrain/Pong-v0 observation; ValueError for any other shape."""
    obs = np.asarray(obs, dtype=np.float32)
    if obs.shape != (OBS_SIZE,):
        raise ValueError(f"expected a DishBrain/Pong-v0 observation of shape ({OBS_SIZE},), "
                         f"got shape {obs.shape}")
    return obs


class ImageObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """The game image: ``frames`` grey-scale frames of ``size`` x ``size`` pixels, uint8.

    Drawn in numpy from the observation (paddle and ball at 255 on 0; no ball during the pause
    after a miss), channel-first, the shape stable-baselines3's ``CnnPolicy`` takes as an image.
    Channel 0 is the current frame, channel ``k`` the frame ``k * lag_steps`` steps earlier.

    Sizes: 40 px is the smallest round size above NatureCNN's minimum of 36 px (8x8/4, 4x4/2,
    3x3/1 convolutions); one pixel is 15 court units, the paddle 17-18 pixels tall, the ball
    ``ball_px`` square. Default one frame (the paper's design). With ``frames=2`` the second
    frame lags by ``lag_steps`` = 10 steps: the ball moves ~2 units per 10 ms step, so
    consecutive frames are nearly identical, while 100 ms (~1.4 px of travel) shows the direction.
    """

    def __init__(self, env: gym.Env, size: int = 40, frames: int = 1, lag_steps: int = 10,
                 ball_px: int = 2):
        gym.utils.RecordConstructorArgs.__init__(self, size=size, frames=frames,
                                                 lag_steps=lag_steps, ball_px=ball_px)
        gym.ObservationWrapper.__init__(self, env)
        check_int(self, "size", size, lo=36)  # NatureCNN's smallest input (class docstring)
        check_int(self, "frames", frames, lo=1)
        check_int(self, "lag_steps", lag_steps, lo=1)
        check_int(self, "ball_px", ball_px, lo=1, hi=size)
        c = pong_config_of(env)
        self.size, self.frames, self.lag_steps, self.ball_px = size, frames, lag_steps, ball_px
        self._paddle_half = c.paddle_height / c.court_height / 2.0  # fraction of the court
        self._paddle_cols = max(1, int(round(c.paddle_width / c.court_width * size)))
        self.observation_space = spaces.Box(0, 255, (frames, size, size), dtype=np.uint8)
        self._history: deque[np.ndarray] = deque(maxlen=(frames - 1) * lag_steps + 1)

    def draw(self, obs) -> np.ndarray:
        """One frame (size x size uint8) of a Pong observation."""
        obs = check_pong_obs(obs)
        n = self.size
        frame = np.zeros((n, n), dtype=np.uint8)
        top = int(np.clip(np.floor((obs[OBS_PADDLE_Y] - self._paddle_half) * n), 0, n - 1))
        bottom = int(np.clip(np.ceil((obs[OBS_PADDLE_Y] + self._paddle_half) * n), top + 1, n))
        frame[top:bottom, :self._paddle_cols] = 255
        if obs[OBS_IN_PLAY] > 0.5:
            b = self.ball_px
            row = int(np.clip(round(obs[OBS_BALL_Y] * n - b / 2), 0, n - b))
            col = int(np.clip(round(obs[OBS_BALL_X] * n - b / 2), 0, n - b))
            frame[row:row + b, col:col + b] = 255
        return frame

    def clear(self) -> None:
        """Forget the frame history (a new session)."""
        self._history.clear()

    def observation(self, obs) -> np.ndarray:
        frame = self.draw(obs)
        if not self._history:  # the first frame of a session stands in for the earlier ones
            self._history.extend([frame] * self._history.maxlen)
        else:
            self._history.append(frame)
        # _history[-1] is now; _history[-1 - k * lag] is k * lag steps ago.
        return np.stack([self._history[-1 - k * self.lag_steps] for k in range(self.frames)])

    def reset(self, **kwargs):
        self.clear()
        return super().reset(**kwargs)


class PositionsObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """Ball x, ball y and paddle y (fractions of the court), optionally the ball's velocity.

    float32: ``[ball_x, ball_y, paddle_y]`` in [0, 1], the paper's design (ball and paddle
    positions, as described for Khajehnejad et al. [P]); with ``velocity=True`` also
    ``[ball_vx, ball_vy]`` in [-1, 1] (fractions of the serve speeds; 0 while no ball is in play).
    """

    _POSITIONS = [OBS_BALL_X, OBS_BALL_Y, OBS_PADDLE_Y]
    _VELOCITY = [OBS_BALL_VX, OBS_BALL_VY]

    def __init__(self, env: gym.Env, velocity: bool = False):
        gym.utils.RecordConstructorArgs.__init__(self, velocity=velocity)
        gym.ObservationWrapper.__init__(self, env)
        pong_config_of(env)
        self.velocity = bool(velocity)
        self._index = self._POSITIONS + (self._VELOCITY if self.velocity else [])
        low = np.array([0.0] * 3 + [-1.0] * (len(self._index) - 3), dtype=np.float32)
        self.observation_space = spaces.Box(low, np.ones_like(low), dtype=np.float32)

    def observation(self, obs) -> np.ndarray:
        return check_pong_obs(obs)[self._index].copy()
