"""The culture's sensory input as an observation, and the names of the RL players' input designs.

Khajehnejad et al. 2025 ("Biological neurons compete with deep reinforcement learning in sample
efficiency in a simulated gameworld", Cyborg and Bionic Systems 6:0336, arXiv 2405.16946) gave
DQN, A2C and PPO the same Pong game as the cultures under three input designs. Two are views of
the game and live with it (``envs.wrappers``: ``ImageObservation``, ``PositionsObservation``); the
third, ``StimulationObservation``, carries only what the culture receives: the 8-electrode pattern
of the culture's sensory encoder (``dishbrain.encoding``), so it lives here, beside that encoder.
``INPUT_DESIGNS`` maps the names the players take ("image", "positions", "stim") to the wrappers.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dishbrain.encoding import DishBrainEncoder
from envs.wrappers import ImageObservation, PositionsObservation, check_pong_obs, pong_config_of


class StimulationObservation(gym.ObservationWrapper, gym.utils.RecordConstructorArgs):
    """The culture's sensory input: the rate (normalised to [0, 1]) of each of the 8 electrodes.

    ``dishbrain.encoding.DishBrainEncoder().vector(obs)``: the ball's height selects one of 8
    electrodes (place code), its distance from the paddle sets that electrode's rate, 4 Hz at
    the far wall to 40 Hz at the paddle (rate code); all 0 while no ball is in play
    (Kagan et al. 2022; PROTOCOL.md).
    """

    N_ELECTRODES = 8

    def __init__(self, env: gym.Env, encoder: DishBrainEncoder | None = None):
        gym.utils.RecordConstructorArgs.__init__(self, encoder=encoder)
        gym.ObservationWrapper.__init__(self, env)
        pong_config_of(env)
        self.encoder = DishBrainEncoder() if encoder is None else encoder
        self.observation_space = spaces.Box(0.0, 1.0, (self.N_ELECTRODES,), dtype=np.float32)

    def observation(self, obs) -> np.ndarray:
        vector = np.asarray(self.encoder.vector(check_pong_obs(obs)), dtype=np.float32)
        if vector.shape != (self.N_ELECTRODES,):
            raise ValueError(f"the encoder's vector must have shape ({self.N_ELECTRODES},), "
                             f"got {vector.shape}")
        return vector


#: input-design name -> wrapper class; the names are the RL players' ``obs`` option.
INPUT_DESIGNS: dict[str, type[gym.ObservationWrapper]] = {
    "image": ImageObservation,
    "positions": PositionsObservation,
    "stim": StimulationObservation,
}


def wrap_input_design(env: gym.Env, design: str, **options) -> gym.ObservationWrapper:
    """Wrap ``env`` (DishBrain/Pong-v0) in the input design called ``design``."""
    if design not in INPUT_DESIGNS:
        raise ValueError(f"unknown input design {design!r}; allowed: {', '.join(INPUT_DESIGNS)}")
    return INPUT_DESIGNS[design](env, **options)
