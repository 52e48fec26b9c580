"""The culture as a player: the closed loop with a stand-in culture (fast) and a real one."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from agents.culture import CultureAgent
from dishbrain.decoding import MotorDecoder
from dishbrain.encoding import DishBrainEncoder
from dishbrain.feedback import make_feedback
from dishbrain.mea import MEA
from dishbrain.metrics import read_session
from dishbrain.player import SessionStopped
from dishbrain.session import play_session
from envs.pong import OBS_BALL_X, OBS_BALL_Y, OBS_IN_PLAY, OBS_SIZE


class FakeCulture:
    """The Culture interface without Brian2: a clock, recorded stimulation, scripted counts.

    `counts(t_ms)` gives each tick's spike counts; `run` calls `tick(t_ms, counts)` at the end of
    every `tick_ms`, like the real culture's single run.
    """

    def __init__(self, counts=None):
        self.mea = MEA()
        self.t_ms = 0.0
        self.calls: list[tuple] = []
        self.counts = counts or (lambda t: np.zeros(self.mea.n_electrodes))
        self.saved = []

    def stimulate(self, electrodes, amplitude_mv, rate_hz, duration_ms, random_timing=False):
        self.calls.append(("stim", self.t_ms, tuple(electrodes), amplitude_mv, rate_hz,
                           duration_ms, random_timing))

    def stop_stimulation(self, electrodes=None):
        self.calls.append(("stop", self.t_ms, None if electrodes is None else tuple(electrodes)))

    def run(self, duration_ms, tick=None, tick_ms=10.0, progress=False):
        for k in range(1, int(round(duration_ms / tick_ms)) + 1):
            self.t_ms = k * tick_ms
            if tick(self.t_ms, self.counts(self.t_ms)) is False:
                break

    def save(self, path):
        self.saved.append(path)
        path.write_text("fake")

    def stims(self):
        return [c for c in self.calls if c[0] == "stim"]


def make(condition="stimulus", counts=None, **kw):
    culture = FakeCulture(counts)
    return CultureAgent(culture, DishBrainEncoder(), MotorDecoder(culture.mea),
                        make_feedback(condition), **kw), culture


def obs(x=0.5, y=0.5, in_play=True):
    o = np.zeros(OBS_SIZE, dtype=np.float32)
    o[OBS_BALL_X], o[OBS_BALL_Y], o[OBS_IN_PLAY] = x, y, float(in_play)
    return o


def info(event):
    return {"event": event}


def test_hit_pauses_the_sensory_code_for_the_predictable_feedback():
    agent, culture = make("stimulus")
    sensory = culture.mea.sensory
    agent.learn(obs(), 0, 0.0, obs(x=0.9, y=0.05), False, False, info("none"))
    assert culture.stims()[-1][2:5] == ((sensory[0],), 75.0, 8.0)   # band 0, far: place + rate
    culture.t_ms = 500.0
    agent.learn(obs(), 0, 1.0, obs(x=0.02, y=0.05), False, False, info("hit"))
    assert culture.calls[-2:] == [("stop", 500.0, (sensory[0],)),
                                  ("stim", 500.0, sensory, 75.0, 100.0, 100.0, False)]
    assert agent.feedback.last_feedback == ("predictable", 500.0)
    n = len(culture.calls)
    for t in (510.0, 550.0, 590.0):                                  # feedback plays: no code
        culture.t_ms = t
        agent.learn(obs(), 0, 0.0, obs(x=0.05, y=0.05), False, False, info("none"))
    assert len(culture.calls) == n and agent.encoder.electrode is None
    culture.t_ms = 600.0                                             # over: the code resumes
    agent.learn(obs(), 0, 0.0, obs(x=0.05, y=0.05), False, False, info("none"))
    assert culture.calls[-1] == ("stim", 600.0, (sensory[0],), 75.0, 38.0, pytest.approx(8.64e7),
                                 False)


def test_miss_under_stimulus_gives_4s_of_random_stimulation_and_no_code():
    agent, culture = make("stimulus")
    agent.learn(obs(), 0, 0.0, obs(x=0.02, y=0.5), False, False, info("none"))
    culture.t_ms = 1000.0
    agent.learn(obs(), 0, -1.0, obs(in_play=False), False, False, info("miss"))
    stim = culture.stims()[-1]
    assert stim[1:] == (1000.0, culture.mea.sensory, 150.0, 5.0 / 8, 4000.0, True)
    assert agent.feedback.last_feedback == ("unpredictable", 1000.0)
    n = len(culture.calls)
    for t in range(1010, 5000, 10):           # the pause: nothing touches the feedback
        culture.t_ms = float(t)
        agent.learn(obs(), 0, 0.0, obs(in_play=False), False, False, info("none"))
    assert len(culture.calls) == n


@pytest.mark.parametrize("condition", ["silent", "no-feedback", "rest"])
def test_conditions_without_feedback_session(tmp_path, condition):
    rng = np.random.default_rng(0)
    agent, culture = make(condition, counts=lambda t: rng.poisson(1.0, 64).astype(float))
    result = play_session(agent, log_path=tmp_path / "s.jsonl", minutes=0.5, seed=0,
                          progress=False, condition=agent.condition)
    assert result.steps == 3000 and not result.stopped
    session = read_session(result.log_path)
    kinds = [json.loads(line)["kind"] for line in result.log_path.read_text().splitlines()]
    assert "miss" in kinds and kinds[-1] == "end"
    stims = culture.stims()
    if condition == "rest":
        assert stims == []                                           # no sensory input at all
    else:                                                            # only the sensory code
        assert stims and all(s[3] == 75.0 and len(s[2]) == 1 and not s[6] for s in stims)
    header = json.loads(result.log_path.read_text().splitlines()[0])
    assert header["condition"] == condition
    assert session is not None


def test_up_regions_drive_the_paddle_up_in_play():
    mea = MEA()
    up = list(mea.motor_layout("dishbrain").up_electrodes)

    def counts(t):
        c = np.ones(mea.n_electrodes)
        if t > 1000:
            c[up] += 5                         # from 1 s on, the up regions fire 6x more
        return c

    agent, culture = make("no-feedback", counts=counts)
    from dishbrain.session import make_env
    from envs.pong import PongConfig
    env = make_env(PongConfig(serve_after_miss=False), 300)
    agent.reset(seed=0)
    assert agent.play(env, 300, seed=0) == 300
    assert env.unwrapped.paddle_y == pytest.approx(125.0)            # pinned at the top rail


def test_play_stops_cleanly_and_saves(tmp_path):
    steps = []

    def counts(t):
        steps.append(t)
        if t >= 500:
            raise SessionStopped
        return np.zeros(64)

    agent, culture = make("stimulus", counts=counts, state_out=tmp_path / "state.bin")
    result = play_session(agent, log_path=tmp_path / "s.jsonl", minutes=0.1, progress=False)
    assert result.stopped and culture.saved == [tmp_path / "state.bin"]
    lines = result.log_path.read_text().splitlines()
    assert json.loads(lines[-1])["stopped"] is True
    assert culture.calls[-1] == ("stop", 500.0, None)                # stimulation left off


def test_config_dict_is_json_and_env_overrides():
    agent, _ = make("silent")
    json.dumps(agent.config_dict)
    assert agent.config_dict["condition"] == "silent"
    assert agent.env_overrides() == {"miss_pause_ms": 4000.0, "serve_after_miss": True}
    assert agent.name == "culture" and agent.condition == "silent"


def test_importing_the_culture_player_does_not_import_torch():
    code = "import sys, agents.culture; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- a real (small) culture in the closed loop ---------------------------------------------------

def events(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_real_closed_loop_session_logs_serve_hit_and_miss(tmp_path):
    from agents.culture import make_culture_agent

    agent = make_culture_agent(seed=0, n_neurons=200)
    result = play_session(agent, log_path=tmp_path / "c.jsonl", minutes=0.5, seed=0,
                          progress=False, condition=agent.condition, agent_config=agent.config_dict)
    assert result.steps == 3000 and not result.stopped
    records = events(result.log_path)
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "header" and kinds[-1] == "end"
    assert {"serve", "hit", "miss"} <= set(kinds)
    header = records[0]
    assert header["agent"] == "culture" and header["condition"] == "stimulus"
    assert header["agent_config"]["n_neurons"] == 200
    assert header["env_config"]["miss_pause_ms"] == 4000.0
    # Every hit and miss got its feedback, at the game time of the step that saw it.
    feedback = list(agent.feedback.history)
    expected = [("predictable" if r["kind"] == "hit" else "unpredictable", r["t"] * 1000 - 10)
                for r in records if r["kind"] in ("hit", "miss")]
    assert [(k, round(t)) for k, t in feedback] == [(k, round(t)) for k, t in expected]
    assert agent.culture.t_ms == pytest.approx(30_000.0)
    assert agent.last_counts.shape == (agent.culture.mea.n_electrodes,)
    assert agent.culture.firing_rate_hz() > 0.1


def test_real_rest_session_gets_no_stimulation(tmp_path):
    from brian2 import SpikeMonitor

    from agents.culture import make_culture_agent

    agent = make_culture_agent(seed=1, condition="rest", n_neurons=150)
    mon = SpikeMonitor(agent.culture._b.electrodes, name="test_pulse_monitor")
    agent.culture._net.add(mon)
    result = play_session(agent, log_path=tmp_path / "r.jsonl", minutes=0.2, seed=1,
                          progress=False, condition=agent.condition)
    assert result.steps == 1200
    assert int(np.asarray(mon.variables["N"].get_value()).item()) == 0          # not a single pulse
    assert agent.encoder.issued == 0 and agent.feedback.last_feedback is None
    assert "serve" in [r["kind"] for r in events(result.log_path)]


def test_cli_play_culture_save_then_load_state(tmp_path, capsys):
    from dishbrain.cli import main
    from dishbrain.culture import Culture

    state = tmp_path / "culture.npz"
    out = tmp_path / "x"
    assert main(["play", "--agent", "culture", "--minutes", "0.2", "--neurons", "200", "--quiet",
                 "--out", str(out), "--save-state", str(state)]) == 0
    printed = capsys.readouterr().out
    assert "culture-stimulus-seed0.jsonl" in printed and "ARL" in printed
    assert state.exists() and Culture.load(state).t_ms == pytest.approx(12_000.0)
    assert main(["play", "--agent", "culture", "--minutes", "0.2", "--condition", "silent",
                 "--seed", "3", "--quiet", "--out", str(out), "--load-state", str(state),
                 "--save-state", str(state)]) == 0
    header = events(out / "culture-silent-seed3.jsonl")[0]
    assert header["condition"] == "silent" and header["agent_config"]["state_in"] == str(state)
    assert Culture.load(state).t_ms == pytest.approx(24_000.0)  # it went on from the saved state
    # A mismatching size is a one-line error.
    assert main(["play", "--agent", "culture", "--minutes", "0.1", "--neurons", "300", "--quiet",
                 "--out", str(out), "--load-state", str(state)]) == 2
    assert "does not match the saved culture" in capsys.readouterr().err
    assert main(["play", "--agent", "culture", "--minutes", "0.1", "--quiet", "--out", str(out),
                 "--load-state", str(tmp_path / "nothing.npz")]) == 2
    assert "no saved culture at" in capsys.readouterr().err


def test_real_session_stopped_early_ends_cleanly_and_saves(tmp_path):
    from agents.culture import make_culture_agent
    from dishbrain.culture import Culture

    state = tmp_path / "c.npz"
    agent = make_culture_agent(seed=0, n_neurons=100, state_out=state)
    learn = agent.learn

    def stop_at_half_a_second(*args):
        if agent.culture.t_ms >= 500:
            raise SessionStopped
        learn(*args)

    agent.learn = stop_at_half_a_second
    result = play_session(agent, log_path=tmp_path / "s.jsonl", minutes=0.2, progress=False)
    assert result.stopped and result.steps == 51     # step 51 (at 500 ms) was stopped in learn
    assert events(result.log_path)[-1]["stopped"] is True
    assert Culture.load(state).t_ms == pytest.approx(500.0, abs=1.0)  # stops within a dt


def test_factory_takes_configs_as_dicts_and_checks_options(tmp_path):
    from agents.culture import make_culture_agent

    with pytest.raises(ValueError, match="unknown condition 'reward'"):
        make_culture_agent(condition="reward")
    with pytest.raises(ValueError, match=r"unknown DecoderConfig field\(s\) \['mood'\]"):
        make_culture_agent(decoder_config={"mood": 1})
    agent = make_culture_agent(seed=2, condition="no-feedback", n_neurons=50, layout="vertical",
                               culture_config={"exc_type_fractions": [0.7, 0.2, 0.1]},
                               decoder_config={"mode": "linear"},
                               feedback_config={"unpredictable_electrodes": 4})
    assert agent.culture.n_neurons == 50 and agent.culture.seed == 2
    assert agent.decoder.config.mode == "linear" and agent.decoder.layout == "vertical"
    assert agent.feedback.config.unpredictable_electrodes == 4
    assert agent.env_overrides() == {"serve_after_miss": False}
    json.dumps(agent.config_dict)
    # The same options with the saved state (as the experiment runner passes them) are fine.
    state = tmp_path / "c.npz"
    agent.culture.save(state)
    again = make_culture_agent(seed=2, n_neurons=50, state_in=state,
                               culture_config={"exc_type_fractions": [0.7, 0.2, 0.1]})
    assert again.culture.n_neurons == 50
    with pytest.raises(ValueError, match="culture_config differs from the saved culture"):
        make_culture_agent(state_in=state, culture_config={"heterogeneity": 0.3})


def test_factory_builds_the_culture_on_the_given_mea(tmp_path):
    from agents.culture import make_culture_agent

    with pytest.raises(ValueError, match=r"unknown MEAConfig field\(s\) \['gap'\]"):
        make_culture_agent(mea_config={"gap": 1})
    with pytest.raises(ValueError,
                       match=r"MEAConfig.motor_gap_cols must be an integer in \[0, 2\]"):
        make_culture_agent(mea_config={"motor_gap_cols": 3})
    agent = make_culture_agent(seed=1, n_neurons=50, mea_config={"motor_gap_cols": 1,
                                                                 "stim_radius_um": 100.0})
    mea = agent.culture.mea
    assert mea.config.motor_gap_cols == 1 and mea.config.stim_radius_um == 100.0
    assert agent.decoder.mea is mea and set(mea.regions["top_left"]) == {0, 1, 8, 9, 16, 17, 24, 25}
    assert agent.config_dict["mea"]["motor_gap_cols"] == 1
    state = tmp_path / "c.npz"
    agent.culture.save(state)
    again = make_culture_agent(state_in=state)
    assert again.culture.mea.config == mea.config               # a saved culture keeps its MEA
    with pytest.raises(ValueError, match="mea_config differs from the saved culture"):
        make_culture_agent(state_in=state, mea_config={"motor_gap_cols": 0})
