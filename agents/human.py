"""A human at the keyboard: arrow keys (or W/S) move the paddle in the pygame window."""

from __future__ import annotations

from dishbrain.player import Agent, SessionStopped
from envs.pong import ACTION_DOWN, ACTION_STAY, ACTION_UP


class HumanAgent(Agent):
    """Reads the keyboard each step. Needs a window: play with `render=True` (``--render``).

    Up/W moves the paddle up, Down/S down; Escape, Q or closing the window ends the session.
    """

    name = "human"
    needs_window = True

    def act(self, obs) -> int:
        from envs.rendering import import_pygame

        pygame = import_pygame()
        if not pygame.display.get_init() or pygame.display.get_surface() is None:
            raise RuntimeError("the human player needs a window: run with --render")
        for event in pygame.event.get((pygame.QUIT, pygame.KEYDOWN)):
            if event.type == pygame.QUIT or event.key in (pygame.K_ESCAPE, pygame.K_q):
                raise SessionStopped("closed by the player")
        keys = pygame.key.get_pressed()
        if keys[pygame.K_UP] or keys[pygame.K_w]:
            return ACTION_UP
        if keys[pygame.K_DOWN] or keys[pygame.K_s]:
            return ACTION_DOWN
        return ACTION_STAY
