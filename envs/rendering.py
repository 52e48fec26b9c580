"""Drawing the Pong court with pygame, in the style of Gymnasium's classic_control renderers.

pygame is imported lazily so that the game runs without it; `draw_court` is shared by the env's
own render modes and by dishbrain's live viewer.
"""

from __future__ import annotations

import numpy as np

BACKGROUND = (12, 14, 20)
LINES = (70, 80, 100)
PADDLE = (90, 200, 255)
BALL = (255, 230, 120)
TEXT = (200, 205, 215)

COURT_PIXELS = 400


def import_pygame():
    try:
        import pygame
    except ImportError as exc:  # pragma: no cover - pygame-ce is a core dependency
        raise ImportError(
            "pygame is not installed; run `pip install pygame-ce` to render DishBrain Pong"
        ) from exc
    return pygame


def draw_court(surface, rect, config, ball_xy: tuple[float, float] | None,
               paddle_y: float) -> None:
    """Draw the court, the paddle and (if in play) the ball into `rect` of `surface`.

    `rect` is (left, top, width, height) in pixels; game coordinates are scaled to fit.
    """
    pygame = import_pygame()
    left, top, width, height = rect
    sx, sy = width / config.court_width, height / config.court_height
    pygame.draw.rect(surface, BACKGROUND, rect)
    pygame.draw.rect(surface, LINES, rect, width=2)
    # The far wall is the perfect opponent: draw it as a full-height bar.
    pygame.draw.rect(surface, LINES, (left + width - 4, top, 4, height))
    # Dashed centre line.
    for y in range(0, int(height), 16):
        pygame.draw.line(surface, LINES, (left + width // 2, top + y),
                         (left + width // 2, top + min(y + 8, height)), 1)
    ph = config.paddle_height * sy
    pw = max(3.0, config.paddle_width * sx)
    pygame.draw.rect(surface, PADDLE,
                     (left, top + paddle_y * sy - ph / 2, pw, ph), border_radius=2)
    if ball_xy is not None:
        bx, by = ball_xy
        pygame.draw.circle(surface, BALL, (int(left + bx * sx), int(top + by * sy)), 5)


class CourtRenderer:
    """Renders a PongEnv: a window in "human" mode, an off-screen surface in "rgb_array"."""

    def __init__(self, config, render_mode: str, fps: int = 50, size: int = COURT_PIXELS):
        self.config = config
        self.render_mode = render_mode
        self.fps = fps
        self.size = size
        self.window = None
        self.clock = None
        self.font = None

    def render(self, env) -> np.ndarray | None:
        pygame = import_pygame()
        if self.window is None:
            if self.render_mode == "human":
                pygame.display.init()
                pygame.display.set_caption("DishBrain Pong")
                self.window = pygame.display.set_mode((self.size, self.size))
            else:
                self.window = pygame.Surface((self.size, self.size))
            self.clock = pygame.time.Clock()
            pygame.font.init()
            self.font = pygame.font.Font(None, 22)
        ball = (env.ball_x, env.ball_y) if env.in_play else None
        draw_court(self.window, (0, 0, self.size, self.size), self.config, ball, env.paddle_y)
        label = (f"t {env.steps * env.config.dt_s:6.1f} s   rally {env.rally_hits}   "
                 f"hits {env.hits}   misses {env.misses}")
        self.window.blit(self.font.render(label, True, TEXT), (10, 8))
        if self.render_mode == "human":
            pygame.event.pump()
            pygame.display.flip()
            self.clock.tick(self.fps)
            return None
        return np.transpose(np.asarray(pygame.surfarray.pixels3d(self.window)),
                            axes=(1, 0, 2)).copy()

    def close(self) -> None:
        if self.window is not None:
            pygame = import_pygame()
            if self.render_mode == "human":
                pygame.display.quit()
            self.window = None

