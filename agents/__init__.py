"""Players of DishBrain Pong, sharing one interface (`agents.base.Agent`)."""

from agents.base import Agent, SessionStopped, Stepper
from agents.registry import make_agent, player_names

__all__ = ["Agent", "SessionStopped", "Stepper", "make_agent", "player_names"]
