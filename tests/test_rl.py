"""The deep-RL players (agents/rl.py): online learning through the session log, lazy torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("stable_baselines3")

from agents.rl import RL_EXTRA_HINT, SB3Agent, make_a2c, make_dqn, make_ppo  # noqa: E402
from dishbrain.metrics import read_session  # noqa: E402
from dishbrain.session import play_session  # noqa: E402

# 0.1 min = 600 steps: the first ball reaches the paddle after ~4.4 s (a hit or a miss).
MINUTES = 0.1
STEPS = 600
SMALL = {
    "dqn": {"learning_starts": 100, "buffer_size": 1_000, "batch_size": 16},
    "a2c": {},
    "ppo": {"n_steps": 128, "batch_size": 32, "n_epochs": 1},
}


@pytest.mark.parametrize("factory,obs", [(make_dqn, "positions"), (make_dqn, "image"),
                                         (make_a2c, "stim"), (make_ppo, "positions")])
def test_player_learns_through_a_logged_session(tmp_path, factory, obs):
    algorithm = factory.__name__.removeprefix("make_")
    agent = factory(seed=1, obs=obs, **SMALL[algorithm])
    assert agent.name == f"{algorithm}-{obs}"
    log = tmp_path / "s.jsonl"
    result = play_session(agent, log_path=log, minutes=MINUTES, seed=1, progress=False,
                          agent_config=agent.config_dict)
    assert result.steps == STEPS
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["kind"] == "header" and lines[0]["agent"] == agent.name
    assert lines[0]["agent_config"]["hyperparameters"]["gamma"] == 0.995
    # One serve: SB3's reset at the session's end must not start a second game in the log
    # (a miss's 4 s pause outlasts the rest of a 6 s session).
    kinds = [x["kind"] for x in lines]
    assert kinds[:2] == ["header", "serve"] and kinds.count("serve") == 1
    assert set(kinds[2:-1]) <= {"hit", "miss"} and kinds.count("miss") <= 1
    end = lines[-1]
    assert end["kind"] == "end" and end["step"] == STEPS and end["t"] == pytest.approx(6.0)
    session = read_session(log)
    assert end["rallies"] == end["misses"]
    assert session.n_rallies in (end["rallies"], end["rallies"] + 1)  # + a rally cut by the end
    assert session.duration_s == pytest.approx(6.0)
    assert agent.model.num_timesteps == STEPS
    assert agent.act([0.5, 0.5, -1.0, 0.0, 0.5, 1.0]) in (0, 1, 2)


def test_second_session_continues_learning_and_frozen_play_does_not(tmp_path):
    agent = make_a2c(seed=0)
    play_session(agent, log_path=tmp_path / "a.jsonl", minutes=0.01, seed=0, progress=False)
    play_session(agent, log_path=tmp_path / "b.jsonl", minutes=0.01, seed=1, progress=False)
    assert agent.model.num_timesteps == 120
    agent.learn_online = False
    result = play_session(agent, log_path=tmp_path / "c.jsonl", minutes=0.01, seed=2,
                          progress=False)
    assert result.steps == 60 and agent.model.num_timesteps == 120


def test_config_is_json_and_overrides_are_checked():
    agent = make_ppo(seed=3, obs="image", n_steps=256)
    config = json.loads(json.dumps(agent.config_dict))
    assert config["hyperparameters"]["n_steps"] == 256 and config["policy"] == "CnnPolicy"
    assert config["seed"] == 3
    assert make_dqn(obs="image").hyperparameters["buffer_size"] <= 100_000
    with pytest.raises(ValueError, match="unknown dqn hyperparameter"):
        make_dqn(n_epochs=3)
    with pytest.raises(ValueError, match="input design"):
        make_dqn(obs="pixels")


def test_registry_builds_rl_players():
    from dishbrain.player import make_agent

    assert make_agent("dqn", seed=2).name == "dqn-positions"
    assert isinstance(make_agent("ppo", seed=2, obs="stim"), SB3Agent)


def test_missing_extra_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)  # import now raises ImportError
    with pytest.raises(ImportError) as info:
        make_dqn()
    assert str(info.value) == RL_EXTRA_HINT


def test_core_imports_do_not_import_torch():
    code = ("import sys, dishbrain, envs, envs.wrappers, agents, agents.rl, dishbrain.player, "
            "dishbrain.observations, dishbrain.session\n"
            "try:\n    import agents.culture\nexcept ImportError:\n    pass\n"
            "heavy = [m for m in ('torch', 'stable_baselines3') if m in sys.modules]\n"
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_same_seed_same_session(tmp_path):
    def events(name):
        agent = make_dqn(seed=4, learning_starts=50, buffer_size=1_000, batch_size=16)
        play_session(agent, log_path=tmp_path / name, minutes=MINUTES, seed=4, progress=False)
        lines = [json.loads(line) for line in (tmp_path / name).read_text().splitlines()[1:-1]]
        return lines, agent.act([0.2, 0.3, -1.0, 0.5, 0.6, 1.0])

    assert events("a.jsonl") == events("b.jsonl")


def test_dqn_exploration_is_counted_in_steps_not_budget_fractions(tmp_path):
    # Epsilon falls from 1 to 0.1 over 600 steps of the model's life, whatever each session's
    # length: half-way after one 300-step session, at the end after two.
    agent = make_dqn(seed=0, exploration_steps=600, learning_starts=600)
    play_session(agent, log_path=tmp_path / "a.jsonl", minutes=0.05, seed=0, progress=False)
    assert agent.model.exploration_rate == pytest.approx(1.0 - 0.9 * 299 / 600)
    play_session(agent, log_path=tmp_path / "b.jsonl", minutes=0.05, seed=0, progress=False)
    assert agent.model.exploration_rate == pytest.approx(1.0 - 0.9 * 599 / 600)


def test_act_applies_the_input_design_to_raw_observations(tmp_path):
    import numpy as np

    from dishbrain.observations import StimulationObservation
    from envs.pong import PongEnv

    agent = make_ppo(seed=0, obs="stim", n_steps=64, batch_size=32, n_epochs=1)
    play_session(agent, log_path=tmp_path / "a.jsonl", minutes=0.02, seed=0, progress=False)
    design = StimulationObservation(PongEnv())
    rng = np.random.default_rng(0)
    for _ in range(20):
        raw = np.array([*rng.uniform(0, 1, 2), 1.0, rng.uniform(-1, 1), rng.uniform(0, 1), 1.0],
                       dtype=np.float32)
        expected, _ = agent.model.predict(design.observation(raw), deterministic=True)
        assert agent.act(raw) == int(expected)


def test_a_longer_session_begins_as_a_shorter_one(tmp_path):
    # Nothing depends on the budget (exploration is counted in steps), so the first 600 actions
    # of a 1,200-step session are those of the 600-step one: a sample-efficiency run begins as a
    # session does. (With SB3's exploration_fraction they differ.)
    import gymnasium as gym

    def actions(minutes):
        played = []

        class Record(gym.Wrapper):
            def step(self, action):
                played.append(int(action))
                return self.env.step(action)

        agent = make_dqn(seed=5, learning_starts=50, buffer_size=1_000, batch_size=16,
                         exploration_steps=300)
        play_session(agent, log_path=tmp_path / "s.jsonl", minutes=minutes, seed=5,
                     progress=False, wrappers=[Record])
        return played[:600]

    assert actions(0.1) == actions(0.2)
