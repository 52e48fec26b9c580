"""The DishBrain Pong environment: rules, config validation, Gymnasium/SB3 compliance, rendering."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import envs
from envs.pong import (
    ACTION_DOWN,
    ACTION_STAY,
    ACTION_UP,
    OBS_IN_PLAY,
    OBS_PADDLE_Y,
    PongConfig,
    PongEnv,
)


def test_registered_with_a_20_minute_session():
    env = gym.make("DishBrain/Pong-v0")
    assert env.spec.max_episode_steps == envs.SESSION_STEPS == 120_000
    assert isinstance(env.unwrapped, PongEnv)


def test_gymnasium_check_env():
    check_env(gym.make("DishBrain/Pong-v0", render_mode="rgb_array").unwrapped)


def test_sb3_check_env():
    sb3_checker = pytest.importorskip("stable_baselines3.common.env_checker")
    sb3_checker.check_env(PongEnv(), warn=True)


@pytest.mark.parametrize("field, value", [
    ("court_width", -600), ("paddle_height", 700), ("tick_ms", 0), ("paddle_friction", 1.5),
    ("miss_pause_ms", -1), ("ball_speed_x", float("nan")), ("paddle_width", 600),
])
def test_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        PongConfig(**{field: value})


def test_unknown_field_is_rejected():
    with pytest.raises(ValueError, match="unknown PongConfig field"):
        PongEnv(paddle_size=3)


def test_ball_crosses_the_court_in_about_3_seconds():
    env = PongEnv(ball_vy_max=0.0)
    env.reset(seed=0)
    steps = 0
    while env.ball_vx > 0:  # served towards the far wall from the centre
        env.step(ACTION_STAY)
        steps += 1
    # Centre to far wall is half a crossing.
    assert steps * 0.01 * 2 == pytest.approx(2.95, abs=0.05)


def test_centred_paddle_hits_a_straight_ball_and_rally_grows():
    env = PongEnv(ball_vy_max=0.0)
    env.reset(seed=0)
    events = [env.step(ACTION_STAY)[4]["event"] for _ in range(2000)]
    assert "miss" not in events
    assert events.count("hit") >= 3
    assert env.rally_hits == events.count("hit")


def test_miss_ends_the_rally_pauses_then_reserves():
    cfg = PongConfig(ball_vy_max=0.0, miss_pause_ms=500.0)
    env = PongEnv(config=cfg)
    env.reset(seed=0)
    # Drive the paddle to the top: a ball along the middle then misses.
    infos = [env.step(ACTION_UP)[4] for _ in range(1000)]
    kinds = [i["event"] for i in infos]
    first_miss = kinds.index("miss")
    assert infos[first_miss]["rallies"] == 1 and infos[first_miss]["misses"] == 1
    assert not infos[first_miss]["in_play"]
    serve = kinds.index("serve", first_miss)
    assert serve - first_miss == 50  # 500 ms of 10 ms steps
    assert infos[serve]["rally_hits"] == 0 and infos[serve]["in_play"]


def test_no_feedback_condition_bounces_off_the_back_wall():
    env = PongEnv(ball_vy_max=0.0, serve_after_miss=False)
    env.reset(seed=0)
    infos = [env.step(ACTION_UP)[4] for _ in range(1500)]
    kinds = [i["event"] for i in infos]
    assert kinds.count("miss") >= 2 and "serve" not in kinds
    assert all(i["in_play"] for i in infos)


def test_paddle_friction_dynamics_and_clamp():
    cfg = PongConfig()
    env = PongEnv(config=cfg)
    env.reset(seed=0)
    y0 = env.paddle_y
    env.step(ACTION_DOWN)
    assert env.paddle_v == pytest.approx(cfg.paddle_accel)
    env.step(ACTION_STAY)
    assert env.paddle_v == pytest.approx(cfg.paddle_accel * (1 - cfg.paddle_friction))
    assert env.paddle_y > y0
    for _ in range(500):
        obs, *_ = env.step(ACTION_DOWN)
    assert env.paddle_y == cfg.court_height - cfg.paddle_height / 2
    assert obs[OBS_PADDLE_Y] == pytest.approx(env.paddle_y / cfg.court_height)


def test_rewards_and_info_counters():
    env = PongEnv()
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    total = {"hit": 0, "miss": 0}
    for _ in range(20_000):
        _, reward, terminated, truncated, info = env.step(int(rng.integers(3)))
        assert not terminated and not truncated
        if info["event"] in total:
            total[info["event"]] += 1
            assert reward == (1.0 if info["event"] == "hit" else -1.0)
        else:
            assert reward == 0.0
    assert (info["hits"], info["misses"]) == (total["hit"], total["miss"])
    assert info["game_time_s"] == pytest.approx(200.0)


def test_same_seed_same_game():
    def run(seed):
        env = PongEnv()
        obs, _ = env.reset(seed=seed)
        return [env.step(i % 3)[0] for i in range(3000)]
    assert np.array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_truncated_at_session_length():
    env = gym.make("DishBrain/Pong-v0", max_episode_steps=50)
    env.reset(seed=0)
    for _i in range(50):
        *_, truncated, info = env.step(0)
    assert truncated


def test_invalid_action_and_render_mode():
    env = PongEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(5)
    with pytest.raises(ValueError, match="render_mode"):
        PongEnv(render_mode="vr")


def test_rgb_array_render_looks_like_pong():
    env = gym.make("DishBrain/Pong-v0", render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (400, 400, 3) and frame.dtype == np.uint8
    from envs.rendering import BALL, PADDLE
    # The paddle's colour on the left edge around the centre; the ball near the centre.
    assert tuple(frame[200, 2]) == PADDLE
    ball = np.argwhere(np.all(frame == BALL, axis=-1))
    assert len(ball) and np.allclose(ball.mean(axis=0), [200, 200], atol=4)
    env.close()
    env.close()  # safe twice


def test_human_render_opens_a_window_headless():
    env = gym.make("DishBrain/Pong-v0", render_mode="human")
    env.reset(seed=0)
    for _ in range(3):
        env.step(ACTION_UP)
    import pygame
    assert pygame.display.get_surface() is not None
    env.close()
    env.close()


def test_observation_in_play_flag():
    env = PongEnv(ball_vy_max=0.0, miss_pause_ms=100.0)
    obs, _ = env.reset(seed=0)
    assert obs[OBS_IN_PLAY] == 1.0
    for _ in range(1000):
        obs, _, _, _, info = env.step(ACTION_UP)
        if info["event"] == "miss":
            assert obs[OBS_IN_PLAY] == 0.0
            break
    else:
        pytest.fail("no miss")
