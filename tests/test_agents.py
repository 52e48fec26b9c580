"""The reference players and the session loop + log (the registry: tests/test_player.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from agents.simple import RandomAgent, StaticAgent, TrackerAgent
from dishbrain.metrics import rally_metrics, read_session
from dishbrain.player import Agent, SessionStopped, make_agent
from dishbrain.session import play_session


def test_reference_players_by_name():
    agent = make_agent("tracker", seed=3)  # TrackerAgent takes no seed: dropped
    assert isinstance(agent, TrackerAgent) and not agent.owns_clock
    assert isinstance(make_agent("random", seed=3), RandomAgent)
    assert isinstance(make_agent("static"), StaticAgent)


def test_tracker_far_above_random_above_nothing(tmp_path):
    arl = {}
    for name in ("random", "static", "tracker"):
        result = play_session(make_agent(name, seed=0), log_path=tmp_path / f"{name}.jsonl",
                              minutes=5, seed=0, progress=False)
        assert result.steps == 30_000 and not result.stopped
        arl[name] = rally_metrics(read_session(result.log_path)).arl
    assert arl["tracker"] > 10 * arl["random"]
    assert 0.3 < arl["random"] < 2.0


def test_session_log_format(tmp_path):
    path = tmp_path / "log.jsonl"
    play_session(RandomAgent(), log_path=path, minutes=2, seed=4, condition="x", progress=False)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    header, first, end = lines[0], lines[1], lines[-1]
    assert header["kind"] == "header" and header["seed"] == 4 and header["condition"] == "x"
    assert header["env_config"]["court_width"] == 600.0 and "numpy" in header["versions"]
    assert first == {"kind": "serve", "t": 0.0, "step": 0, "rally": 0, "hits": 0}
    assert end["kind"] == "end" and end["step"] == 12_000 and end["stopped"] is False
    events = lines[1:-1]
    assert {e["kind"] for e in events} <= {"serve", "hit", "miss"}
    misses = [e for e in events if e["kind"] == "miss"]
    assert [m["rally"] for m in misses] == list(range(len(misses)))
    assert end["misses"] == len(misses)


class StopsAfter(Agent):
    name = "stopper"

    def __init__(self, n):
        self.n = n
        self.count = 0

    def act(self, obs):
        self.count += 1
        if self.count > self.n:
            raise SessionStopped
        return 0


def test_stopped_session_keeps_its_log(tmp_path):
    result = play_session(StopsAfter(700), log_path=tmp_path / "s.jsonl", minutes=1, progress=False)
    assert result.stopped and result.steps == 700
    end = json.loads((tmp_path / "s.jsonl").read_text().splitlines()[-1])
    assert end["kind"] == "end" and end["stopped"] is True and end["step"] == 700


class Crashes(Agent):
    def act(self, obs):
        raise RuntimeError("boom")


def test_crashed_session_has_no_end_line(tmp_path):
    with pytest.raises(RuntimeError):
        play_session(Crashes(), log_path=tmp_path / "c.jsonl", minutes=1, progress=False)
    last = json.loads((tmp_path / "c.jsonl").read_text().splitlines()[-1])
    assert last["kind"] == "serve"


class Recorder(Agent):
    """Checks the loop hands learn() the transition it just made."""

    def __init__(self):
        self.transitions = []

    def act(self, obs):
        return 2

    def learn(self, obs, action, reward, next_obs, terminated, truncated, info):
        self.transitions.append((obs.copy(), action, reward, next_obs.copy(), info["event"]))


def test_learn_receives_each_transition(tmp_path):
    agent = Recorder()
    play_session(agent, log_path=tmp_path / "r.jsonl", minutes=0.5, progress=False)
    assert len(agent.transitions) == 3000
    for (_, a, _, n, _), (o2, *_) in zip(agent.transitions, agent.transitions[1:]):
        assert np.array_equal(n, o2) and a == 2


def test_tracker_dead_band_validated():
    with pytest.raises(ValueError, match="dead_band"):
        TrackerAgent(dead_band=0.7)
    assert StaticAgent().act(np.zeros(6, np.float32)) == 0


def test_human_agent_needs_a_window():
    human = make_agent("human")
    with pytest.raises(RuntimeError, match="--render"):
        human.act(np.zeros(6, np.float32))


def test_progress_bar_ends_at_its_total_without_overshooting():
    import warnings

    import gymnasium as gym

    import envs  # noqa: F401  (registers the game)
    from dishbrain.session import Progress

    env = Progress(gym.make("DishBrain/Pong-v0"), n_steps=120_000, desc="t", every=1000)
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")    # tqdm warns when a bar is pushed past its total
        for _ in range(120_000):
            env.step(0)
        env.close()   # the last render, where tqdm checks the fraction
    assert env._bar.n == pytest.approx(20.0) and env._bar.n <= env._bar.total
