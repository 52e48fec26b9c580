"""DishBrain Pong: the game Cortical Labs' cultures played, as a Gymnasium environment.

The rules follow Cortical Labs' game engine as used in Kagan et al. 2022 (Neuron 110:3952) and the
recorded pilot session in SpikeStream (see ``shared/PROTOCOL.md``): a 600 x 600 court, a 250-unit
paddle on the left, a point ball served from the centre towards an always-returning far wall, a
random vertical velocity on each serve, friction paddle dynamics and 10 ms game steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.config import Config, check_bool, check_number

# Indices into the observation vector.
OBS_BALL_X, OBS_BALL_Y, OBS_BALL_VX, OBS_BALL_VY, OBS_PADDLE_Y, OBS_IN_PLAY = range(6)
OBS_SIZE = 6

ACTION_STAY, ACTION_UP, ACTION_DOWN = 0, 1, 2
ACTION_NAMES = ("stay", "up", "down")

EVENTS = ("none", "serve", "hit", "miss")


@dataclass(frozen=True)
class PongConfig(Config):
    """Every rule of the game, validated on construction.

    Defaults are Cortical Labs' engine (PROTOCOL.md, [C]): court, paddle, friction and tick are
    read from the engine; ``ball_speed_x`` makes the ball cross the court in 2.95 s, as in the
    recorded pilot session; ``miss_pause_ms`` is the 4 s of unpredictable feedback.
    """

    court_width: float = 600.0
    court_height: float = 600.0
    paddle_width: float = 10.0
    paddle_height: float = 250.0
    # Paddle dynamics: v <- v * (1 - friction) + movement * paddle_accel; y += v (units per step).
    paddle_friction: float = 0.1
    paddle_accel: float = 0.6
    # Horizontal ball speed (units/s): 600 units in 2.95 s (pilot session).
    ball_speed_x: float = 600.0 / 2.95
    # The vertical velocity of a serve is drawn uniformly from [-ball_vy_max, ball_vy_max] units/s.
    ball_vy_max: float = 200.0
    tick_ms: float = 10.0
    # After a miss: no ball in play for this long, then a re-serve (Stimulus and Silent conditions).
    miss_pause_ms: float = 4000.0
    # False: the ball bounces off the back wall after a miss and play continues (No-feedback).
    serve_after_miss: bool = True

    def __post_init__(self) -> None:
        for name in ("court_width", "court_height", "paddle_width", "paddle_height",
                     "ball_speed_x", "tick_ms"):
            check_number(self, name, getattr(self, name), lo=0, lo_open=True)
        for name in ("paddle_accel", "ball_vy_max", "miss_pause_ms"):
            check_number(self, name, getattr(self, name), lo=0)
        check_number(self, "paddle_friction", self.paddle_friction, 0, 1)
        if self.paddle_height > self.court_height:
            raise ValueError(
                f"PongConfig.paddle_height must be <= court_height ({self.court_height}), "
                f"got {self.paddle_height!r}")
        if self.paddle_width >= self.court_width:
            raise ValueError(
                f"PongConfig.paddle_width must be < court_width ({self.court_width}), "
                f"got {self.paddle_width!r}")
        check_bool(self, "serve_after_miss", self.serve_after_miss)

    @property
    def dt_s(self) -> float:
        return self.tick_ms / 1000.0


class PongEnv(gym.Env):
    """
    ## Description
    The Pong game of DishBrain (Kagan et al. 2022). The player controls a paddle on the left edge
    of a 600 x 600 court (y grows downward); a point ball is served from the centre towards the
    far (right) wall, which always returns it. A hit sends the ball back; a miss ends the rally,
    and after a pause (the time the culture's feedback takes) the ball is served again. The game
    never ends on its own: a session is a fixed span of game time (20 min by default).

    ## Action Space
    `Discrete(3)`: 0 stay, 1 up (towards y = 0), 2 down. Each step the paddle velocity follows
    `v <- v * (1 - paddle_friction) + movement * paddle_accel`, with movement -1 / 0 / +1.

    ## Observation Space
    `Box(6,)` float32: ball x / width, ball y / height, ball vx / ball_speed_x,
    ball vy / ball_vy_max (0 when ball_vy_max is 0), paddle centre y / height, and 1.0 while a
    ball is in play (0.0 during the pause after a miss; the ball then rests at the centre).

    ## Rewards
    +1 on a hit, -1 on a miss, 0 otherwise. (The culture never sees this: it gets stimulation.)

    ## Starting State
    Paddle centred and still; the ball served from (300, 300) towards the far wall with a
    vertical velocity drawn uniformly from [-ball_vy_max, ball_vy_max].

    ## Episode End
    Never terminated (a miss does not end the game). Truncated at `max_episode_steps`
    (120,000 steps of 10 ms = 20 minutes by default).

    ## Arguments
    `gymnasium.make("DishBrain/Pong-v0", render_mode=None, config=PongConfig(), **fields)`: any
    `PongConfig` field may be passed by name, e.g. `miss_pause_ms=0`.

    `info` after each step: `event` ("serve", "hit", "miss" or "none"), `rally_hits`, `rallies`,
    `hits`, `misses`, `game_time_s`, `ball_x`, `ball_y`, `paddle_y`, `in_play`.

    ## Version History
    * v0: initial version, Cortical Labs' engine rules.
    """

    # One frame per 10 ms step: "human" mode plays in real time (render() ticks at 1000 / tick_ms).
    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": 100}

    def __init__(self, render_mode: str | None = None, config: PongConfig | None = None,
                 **fields: Any):
        if config is None:
            config = PongConfig.from_dict(fields)
        elif fields:
            config = config.replace(**fields)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode must be one of {self.metadata['render_modes']} or None, "
                f"got {render_mode!r}")
        self.config = config
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(3)
        low = np.array([0.0, 0.0, -1.0, -1.0, 0.0, 0.0], dtype=np.float32)
        high = np.ones(OBS_SIZE, dtype=np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

        c = config
        self._dt = c.dt_s
        self._half_paddle = c.paddle_height / 2.0
        self._pause_steps = int(round(c.miss_pause_ms / c.tick_ms))
        self._renderer = None
        self._reset_state()

    # -- state -------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        c = self.config
        self.ball_x = c.court_width / 2.0
        self.ball_y = c.court_height / 2.0
        self.ball_vx = 0.0
        self.ball_vy = 0.0
        self.paddle_y = c.court_height / 2.0
        self.paddle_v = 0.0
        self.in_play = False
        self.pause_left = 0
        self.rally_hits = 0
        self.rallies = 0
        self.hits = 0
        self.misses = 0
        self.steps = 0
        self.last_event = "none"

    def _serve(self) -> None:
        c = self.config
        self.ball_x = c.court_width / 2.0
        self.ball_y = c.court_height / 2.0
        self.ball_vx = c.ball_speed_x  # towards the far wall
        self.ball_vy = float(self.np_random.uniform(-c.ball_vy_max, c.ball_vy_max))
        self.in_play = True
        self.rally_hits = 0

    def _obs(self) -> np.ndarray:
        c = self.config
        vy_scale = c.ball_vy_max if c.ball_vy_max > 0 else 1.0
        return np.array([
            self.ball_x / c.court_width,
            self.ball_y / c.court_height,
            self.ball_vx / c.ball_speed_x,
            self.ball_vy / vy_scale,
            self.paddle_y / c.court_height,
            1.0 if self.in_play else 0.0,
        ], dtype=np.float32)

    def _info(self) -> dict[str, Any]:
        return {
            "event": self.last_event,
            "rally_hits": self.rally_hits,
            "rallies": self.rallies,
            "hits": self.hits,
            "misses": self.misses,
            "game_time_s": self.steps * self._dt,
            "ball_x": self.ball_x,
            "ball_y": self.ball_y,
            "paddle_y": self.paddle_y,
            "in_play": self.in_play,
        }

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_state()
        self._serve()
        self.last_event = "serve"
        if self.render_mode == "human":
            self.render()
        return self._obs(), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 (stay), 1 (up) or 2 (down), got {action!r}")
        c = self.config
        dt = self._dt
        action = int(action)
        movement = -1.0 if action == ACTION_UP else (1.0 if action == ACTION_DOWN else 0.0)

        # Paddle: friction, then the push, then clamp to the court (velocity zeroed at the rails).
        self.paddle_v = self.paddle_v * (1.0 - c.paddle_friction) + movement * c.paddle_accel
        self.paddle_y += self.paddle_v
        lo, hi = self._half_paddle, c.court_height - self._half_paddle
        if self.paddle_y < lo:
            self.paddle_y, self.paddle_v = lo, 0.0
        elif self.paddle_y > hi:
            self.paddle_y, self.paddle_v = hi, 0.0

        event = "none"
        reward = 0.0
        if self.in_play:
            x_prev = self.ball_x
            self.ball_x += self.ball_vx * dt
            self.ball_y += self.ball_vy * dt
            # Top and bottom walls reflect.
            if self.ball_y < 0.0:
                self.ball_y, self.ball_vy = -self.ball_y, -self.ball_vy
            elif self.ball_y > c.court_height:
                self.ball_y, self.ball_vy = 2 * c.court_height - self.ball_y, -self.ball_vy
            # The far wall always returns the ball (a perfect opponent).
            if self.ball_x >= c.court_width:
                self.ball_x, self.ball_vx = 2 * c.court_width - self.ball_x, -self.ball_vx
            # The paddle face at x = paddle_width: a hit if the ball crosses it within the span.
            if self.ball_vx < 0 and x_prev > c.paddle_width >= self.ball_x:
                if abs(self.ball_y - self.paddle_y) <= self._half_paddle:
                    self.ball_x = 2 * c.paddle_width - self.ball_x
                    self.ball_vx = -self.ball_vx
                    self.rally_hits += 1
                    self.hits += 1
                    event, reward = "hit", 1.0
            # Past the paddle to the back wall: a miss ends the rally.
            if event == "none" and self.ball_vx < 0 and self.ball_x <= 0.0:
                self.misses += 1
                self.rallies += 1
                event, reward = "miss", -1.0
                if c.serve_after_miss:
                    self.in_play = False
                    self.pause_left = self._pause_steps
                    self.ball_x, self.ball_y = c.court_width / 2.0, c.court_height / 2.0
                    self.ball_vx = self.ball_vy = 0.0
                else:  # No-feedback: the ball bounces off the back wall, a new rally begins
                    self.ball_x, self.ball_vx = -self.ball_x, -self.ball_vx
                    self.rally_hits = 0
        else:
            if self.pause_left > 0:
                self.pause_left -= 1
            if self.pause_left <= 0:
                self._serve()
                event = "serve"

        self.steps += 1
        self.last_event = event
        if self.render_mode == "human":
            self.render()
        return self._obs(), reward, False, False, self._info()

    # -- rendering -----------------------------------------------------------------------------
    def render(self):
        if self.render_mode is None:
            gym.logger.warn(
                "render() called without a render_mode; pass render_mode='rgb_array' or 'human' "
                "to gymnasium.make('DishBrain/Pong-v0', ...)")
            return None
        if self._renderer is None:
            from envs.rendering import CourtRenderer
            self._renderer = CourtRenderer(self.config, self.render_mode,
                                           fps=1000.0 / self.config.tick_ms)
        return self._renderer.render(self)

    def close(self):
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
