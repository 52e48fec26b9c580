"""The RL input designs (envs/wrappers.py, dishbrain/observations.py): valid Gymnasium envs that
carry the right state."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs  # noqa: F401  (registers DishBrain/Pong-v0)
from dishbrain.observations import INPUT_DESIGNS, StimulationObservation, wrap_input_design
from envs.pong import OBS_BALL_X, OBS_BALL_Y, OBS_IN_PLAY, OBS_PADDLE_Y, PongEnv
from envs.wrappers import ImageObservation, PositionsObservation


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
@pytest.mark.parametrize("design", sorted(INPUT_DESIGNS))
def test_each_design_passes_check_env(design):
    env = wrap_input_design(PongEnv(), design)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    for action in (0, 1, 2) * 50:
        obs, *_ = env.step(action)
        assert env.observation_space.contains(obs)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
@pytest.mark.parametrize("design", sorted(INPUT_DESIGNS))
def test_each_design_is_recreated_from_its_spec(design):
    # check_env rebuilds a registered env from its spec, wrappers and their arguments included:
    # that needs each wrapper to record its constructor arguments (RecordConstructorArgs).
    options = {"positions": {"velocity": True}, "image": {"frames": 2}}.get(design, {})
    env = wrap_input_design(gym.make("DishBrain/Pong-v0"), design, **options)
    check_env(env, skip_render_check=True)
    again = gym.make(env.spec)
    assert again.observation_space == env.observation_space
    assert env.spec.additional_wrappers[-1].kwargs == {
        "image": {"size": 40, "frames": 2, "lag_steps": 10, "ball_px": 2},
        "positions": {"velocity": True}, "stim": {"encoder": None}}[design]


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
def test_check_env_on_the_registered_env_with_its_render_check():
    check_env(PositionsObservation(gym.make("DishBrain/Pong-v0")))


def test_envs_does_not_import_dishbrain():
    code = ("import sys, envs, envs.wrappers, envs.pong, envs.rendering\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('dishbrain', 'agents')]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_positions_are_the_ball_and_paddle():
    env = PositionsObservation(PongEnv())
    obs, _ = env.reset(seed=0)
    raw = env.unwrapped._obs()
    assert obs.dtype == np.float32 and obs.shape == (3,)
    np.testing.assert_allclose(obs, raw[[OBS_BALL_X, OBS_BALL_Y, OBS_PADDLE_Y]])
    with_velocity = PositionsObservation(PongEnv(), velocity=True)
    obs, _ = with_velocity.reset(seed=0)
    assert obs.shape == (5,) and obs[3] == 1.0  # served towards the far wall at full speed


def test_image_draws_paddle_and_ball():
    env = ImageObservation(PongEnv())
    obs, _ = env.reset(seed=0)
    assert obs.shape == (1, 40, 40) and obs.dtype == np.uint8
    assert obs[0, :, 0].sum() // 255 in (17, 18)  # the 250-unit paddle, 15 units per pixel
    assert obs[0, :, 19:21].any()  # the ball at the centre
    raw = env.unwrapped._obs()
    raw[OBS_IN_PLAY] = 0.0
    assert env.draw(raw)[:, 1:].sum() == 0  # no ball during the pause after a miss


def test_second_image_frame_lags():
    env = ImageObservation(PongEnv(), frames=2, lag_steps=10)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (2, 40, 40)
    np.testing.assert_array_equal(obs[0], obs[1])  # no history yet
    frames = [obs[0]]
    for _ in range(30):  # the ball moves ~2 units per step: 30 steps = 4 px
        obs, *_ = env.step(0)
        frames.append(obs[0])
    assert not np.array_equal(obs[0], obs[1])
    np.testing.assert_array_equal(obs[1], frames[-11])


def test_stimulation_is_the_encoders_vector():
    from dishbrain.encoding import DishBrainEncoder

    env = StimulationObservation(PongEnv())
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, DishBrainEncoder().vector(env.unwrapped._obs()))
    assert obs.shape == (8,) and np.count_nonzero(obs) == 1


def test_wrappers_refuse_other_envs_and_bad_options():
    with pytest.raises(TypeError, match="DishBrain/Pong-v0"):
        PositionsObservation(gym.make("CartPole-v1"))
    with pytest.raises(ValueError, match="size"):
        ImageObservation(PongEnv(), size=20)
    with pytest.raises(ValueError, match="allowed"):
        wrap_input_design(PongEnv(), "pixels")


def test_registered_env_works_wrapped():
    env = wrap_input_design(gym.make("DishBrain/Pong-v0", max_episode_steps=5), "positions")
    env.reset(seed=1)
    truncated = False
    for _ in range(5):
        *_, truncated, _ = env.step(0)
    assert truncated
