"""Gymnasium environments of dishbrain, registered on import.

>>> import gymnasium as gym, envs
>>> env = gym.make("DishBrain/Pong-v0")
"""

from gymnasium.envs.registration import register, registry

from envs.pong import PongConfig, PongEnv

#: 20 minutes of 10 ms steps: one DishBrain session.
SESSION_STEPS = 120_000

if "DishBrain/Pong-v0" not in registry:
    register(
        id="DishBrain/Pong-v0",
        entry_point="envs.pong:PongEnv",
        max_episode_steps=SESSION_STEPS,
    )

__all__ = ["PongConfig", "PongEnv", "SESSION_STEPS"]
