"""The live viewer, recording, traces and replays (headless: SDL's dummy video driver)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from agents.culture import CultureAgent
from agents.simple import TrackerAgent
from dishbrain import viewer as v
from dishbrain.decoding import MotorDecoder
from dishbrain.encoding import DishBrainEncoder
from dishbrain.feedback import make_feedback
from dishbrain.logs import read_trace, trace_paths
from dishbrain.mea import MEA
from dishbrain.metrics import read_session
from dishbrain.player import SessionStopped
from dishbrain.session import make_env, play_session
from dishbrain.viewer import SpikeStreamSource, TraceRecorder, open_source, replay, trace_wrapper
from dishbrain.viewer.live import _step_speed
from envs.pong import PongConfig
from envs.rendering import BACKGROUND, PADDLE

PILOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "spikestream-pilot"


class StandInCulture:
    """The Culture interface without Brian2: a clock, scripted spike counts, no-op stimulation.

    ``after_tick(k)`` is called after every tick (tests look at the viewer from there).
    """

    def __init__(self, seed: int = 0):
        self.mea = MEA()
        self.t_ms = 0.0
        self.rng = np.random.default_rng(seed)
        self.after_tick = None

    def stimulate(self, electrodes, amplitude_mv, rate_hz, duration_ms, random_timing=False):
        pass

    def stop_stimulation(self, electrodes=None):
        pass

    def run(self, duration_ms, tick=None, tick_ms=10.0, progress=False):
        for k in range(1, int(round(duration_ms / tick_ms)) + 1):
            self.t_ms = k * tick_ms
            counts = self.rng.poisson(0.2, self.mea.n_electrodes)
            if tick(self.t_ms, counts) is False:
                break
            if self.after_tick is not None:
                self.after_tick(k)


def culture_agent(seed=0, condition="stimulus"):
    culture = StandInCulture(seed)
    return CultureAgent(culture, DishBrainEncoder(), MotorDecoder(culture.mea),
                        make_feedback(condition), seed=seed)


def completed_rallies(log: Path) -> list[int]:
    """Hits of each rally of a session log: ended by a miss, or in flight at the end and counted
    by the one rule analyze and replay share (dishbrain.metrics.cut_rally_counts)."""
    from dishbrain.metrics import cut_rally_counts

    rallies, hits = [], 0
    for line in log.read_text().splitlines()[1:]:
        kind = json.loads(line)["kind"]
        if kind == "hit":
            hits += 1
        elif kind == "miss":
            rallies.append(hits)
            hits = 0
        elif kind == "end" and cut_rally_counts(hits):
            rallies.append(hits)
    return rallies


def close(a, b, tol=12):
    return all(abs(int(x) - int(y)) <= tol for x, y in zip(a, b))


def test_speed_parsing_and_ladder():
    assert v.parse_speed("max") == 0 and v.parse_speed("0") == 0 and v.parse_speed("2.5") == 2.5
    for bad in ("-1", "fast", "nan", "inf"):
        with pytest.raises(ValueError, match="speed must be a number > 0 or 'max'"):
            v.parse_speed(bad)
    assert _step_speed(1.0, up=True) == 2.0 and _step_speed(1.0, up=False) == 0.5
    assert _step_speed(3.0, up=True) == 5.0 and _step_speed(100.0, up=True) == 0.0
    assert _step_speed(0.0, up=True) == 0.0 and _step_speed(0.0, up=False) == 100.0


def test_record_path_checks(tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.gif or \.mp4"):
        v.viewer_wrapper(None, show=False, record=tmp_path / "x.avi")
    assert v.check_record_path(tmp_path / "sub" / "x.MP4").parent.is_dir()


def test_culture_panel_pixels(tmp_path):
    """A culture session drawn headless: court, paddle, 64 electrodes, the stimulated one lit."""
    agent = culture_agent()
    env = v.LiveViewer(make_env(PongConfig(), 3000), agent, show=False, offscreen=True, speed=0)
    seen = {}

    def look(k):
        model = env.model
        if seen or k < 30 or model.stim_slot < 0 or model.feedback_now() is not None:
            return
        seen["surface"] = v.surface_to_array(env.snapshot())
        seen["slot"], seen["rate"] = model.stim_slot, model.stim_rate_hz
        seen["court"] = model.court

    agent.culture.after_tick = look
    agent.reset(seed=0)
    agent.play(env, 300, seed=0)
    assert seen, "the ball was never in play without feedback"
    img, painter = seen["surface"], env.painter
    assert img.shape == (painter.size[1], painter.size[0], 3)
    # Court: its background and the paddle where the game has it.
    cx, cy, cw, ch = painter.rects.court
    (ball, paddle_y) = seen["court"]
    assert close(img[cy + 20, cx + cw // 4], BACKGROUND, 2)
    assert close(img[int(cy + paddle_y * ch / 600), cx + 2], PADDLE, 2)
    # Electrodes: each centre is an electrode's colour, not the panel's.
    mea = agent.culture.mea
    for e in range(mea.n_electrodes):
        px = img[painter.electrode_center(e)[1], painter.electrode_center(e)[0]]
        assert not close(px, v.PANEL, 6), e
    # The stimulated sensory electrode is lit amber (place code), the other sensory ones not.
    slot = seen["slot"]
    assert 0 <= slot < 8 and v.RATE_MIN_HZ <= seen["rate"] <= v.RATE_MAX_HZ
    x, y = painter.electrode_center(mea.sensory[slot])
    lit = img[y, x]
    assert lit[0] > 130 and lit[1] > 90 and lit[2] < 60, lit
    for other in set(range(8)) - {slot}:
        x, y = painter.electrode_center(mea.sensory[other])
        assert img[y, x][2] > img[y, x][0], other   # electrodes are blue-grey unless stimulated
    # The place code: the slot is the ball's band (one band of slack for the tick of delay).
    assert abs(slot - int(ball[1] / 600 * 8)) <= 1
    env.close()
    env.close()  # safe twice


def test_feedback_banner_and_regions():
    """Predictable feedback lights all sensory electrodes and shows a blue border."""
    mea = MEA()
    layout = v.CultureProbe(culture_agent()).layout()
    assert layout.sensory == mea.sensory and len(layout.motor_up) == 2
    model = v.ViewModel(0.01, layout, player="culture", condition="stimulus")
    model.t_s = 5.0
    model.on_feedback("predictable", 5.0)
    painter = v.Painter(PongConfig(), layout)
    import pygame

    surface = pygame.Surface(painter.size)
    model.court = ((300.0, 300.0), 300.0)
    painter.paint(surface, model)
    img = v.surface_to_array(surface)
    for e in mea.sensory:
        x, y = painter.electrode_center(e)
        assert img[y, x][0] > 200 and img[y, x][2] < 60
    cx, cy, cw, ch = painter.rects.court
    assert close(img[cy + ch // 2, cx - 2], v.PREDICTABLE, 2)
    model.t_s = 6.0  # the banner is gone after its display time
    painter.paint(surface, model)
    assert close(v.surface_to_array(surface)[cy + ch // 2, cx - 2], BACKGROUND, 2)


def test_live_figures_match_the_log(tmp_path):
    """The live figures count the rallies as analyze does (ended by a miss, or cut off by the
    end with a hit: dishbrain.metrics.cut_rally_counts)."""
    from agents.simple import RandomAgent

    agent = RandomAgent(seed=3)
    wrap = v.viewer_wrapper(agent, show=False, offscreen=True, speed=0)
    seen = {}

    def keep(env):
        seen["viewer"] = wrap(env)
        return seen["viewer"]

    result = play_session(agent, log_path=tmp_path / "t.jsonl", minutes=1.5, progress=False,
                          wrappers=[keep])
    model = seen["viewer"].model
    rallies = completed_rallies(result.log_path)
    assert model.rallies == len(rallies) > 3
    assert model.hits == sum(rallies)
    assert math.isclose(model.aces_pct, 100 * np.mean(np.array(rallies) == 0))
    assert math.isclose(model.arl, np.mean(rallies))
    minutes, arl = model.arl_curve()
    assert list(minutes) == [0, 1] and np.isfinite(arl[0])


def test_window_keys_quit_cleanly(tmp_path):
    """q in the window ends the session with the log intact (end line, stopped)."""
    import pygame

    class Presser(TrackerAgent):
        steps = 0

        def act(self, obs):
            self.steps += 1
            if self.steps == 20:
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_PLUS))
            if self.steps == 40:
                pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q))
            return super().act(obs)

    agent = Presser()
    wrap = v.viewer_wrapper(agent, show=True, speed=20, fps=200)
    result = play_session(agent, log_path=tmp_path / "q.jsonl", minutes=1.0, progress=False,
                          wrappers=[wrap])
    assert result.stopped and result.steps < 6000
    end = json.loads(result.log_path.read_text().splitlines()[-1])
    assert end["kind"] == "end" and end["stopped"] is True


def test_pause_and_single_step():
    painter = v.Painter(PongConfig(), None)
    presenter = v.Presenter(painter, show=True, speed=1.0)
    import pygame

    presenter._key(pygame.K_SPACE)
    assert presenter.paused
    presenter._key(pygame.K_PERIOD)
    assert presenter._step_once
    model = v.ViewModel(0.01)
    presenter._pause_loop(model)  # one tick: returns at once, still paused
    assert presenter.paused and not presenter._step_once
    presenter._key(pygame.K_MINUS)
    assert presenter.speed == 0.5
    with pytest.raises(SessionStopped):
        presenter._key(pygame.K_ESCAPE)
    presenter.close()


def test_record_gif_and_mp4_at_game_time_rate(tmp_path):
    from PIL import Image

    for name in ("t.gif", "t.mp4"):
        agent = TrackerAgent()
        path = tmp_path / name
        play_session(agent, log_path=tmp_path / "r.jsonl", minutes=0.05, progress=False,
                     wrappers=[v.viewer_wrapper(agent, show=False, record=path, speed=1)])
        assert path.stat().st_size > 1000
        if name.endswith(".gif"):
            with Image.open(path) as im:
                # 3 s of game time at 12.5 fps (+ the first frame), whatever the speed.
                assert im.n_frames == 38 and im.size == (704, 544)
                assert im.info["duration"] == 80
            import imageio.v3 as iio

            frames = iio.imread(path, index=None)  # readable by imageio, every frame
            assert frames.shape == (38, 544, 704, 3)
            # The fixed palette keeps the court's flat background exact.
            assert close(frames[-1][60, 100], BACKGROUND, 0)
        else:
            import imageio.v2 as imageio

            reader = imageio.get_reader(path)
            assert reader.count_frames() == 76
            reader.close()


def test_trace_round_trip_and_replay(tmp_path):
    agent = culture_agent(seed=1)
    log = tmp_path / "c.jsonl"
    result = play_session(agent, log_path=log, minutes=0.5, seed=1, progress=False,
                          wrappers=[trace_wrapper(log, agent)])
    meta, recs = read_trace(log)
    assert isinstance(recs, np.memmap) and len(recs) == result.steps + 1
    assert meta["format"] == "dishbrain-trace"
    assert meta["array"]["sensory"] == list(agent.culture.mea.sensory)
    assert recs.dtype["counts"].shape == (64,) and recs["counts"].sum() > 0
    events = [json.loads(x) for x in log.read_text().splitlines()[1:-1]]
    hits = [e["step"] for e in events if e["kind"] == "hit"]
    assert list(np.flatnonzero(recs["event"] == 2)) == hits
    assert (recs["feedback"] == 1).sum() == len(hits)
    assert (recs["stim_slot"] >= 0).any()
    # Replay it headless into a GIF: the same rallies as the log.
    gif = tmp_path / "r.gif"
    summary = replay(log, speed=0, show=False, record=gif, start_min=0.45)
    assert summary["rallies"] == len(completed_rallies(log))
    assert summary["hits"] == sum(completed_rallies(log))
    assert summary["frames_recorded"] == pytest.approx(0.05 * 60 * 12.5, abs=2)


def test_trace_survives_a_crash(tmp_path):
    env = TraceRecorder(make_env(PongConfig(), 5000), tmp_path / "x.jsonl", chunk_ticks=100)
    env.reset(seed=0)
    for _ in range(250):
        env.step(0)
    env.flush()  # what a chunk boundary does; then the process dies without close()
    meta, recs = read_trace(trace_paths(tmp_path / "x.jsonl")[0])
    assert len(recs) == 251 and meta["player"] is None
    env.close()
    assert len(read_trace(tmp_path / "x.trace.npy")[1]) == 251


def test_replay_without_trace_and_bad_paths(tmp_path):
    from agents.simple import RandomAgent

    play_session(RandomAgent(seed=1), log_path=tmp_path / "e.jsonl", minutes=0.5, progress=False)
    src = open_source(tmp_path / "e.jsonl")
    assert src.array is None and src.player == "random"
    summary = replay(src, speed=0, show=False, record=tmp_path / "e.gif", start_min=0.45)
    assert summary["rallies"] == len(completed_rallies(tmp_path / "e.jsonl")) > 0
    with pytest.raises(FileNotFoundError):
        open_source(tmp_path / "nothing")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match="cannot replay"):
        open_source(tmp_path / "x.txt")


@pytest.mark.skipif(not (PILOT / "spikes.bin").exists(), reason="../shared pilot data absent")
def test_replay_of_the_real_pilot(tmp_path):
    src = open_source(PILOT)
    assert isinstance(src, SpikeStreamSource) and isinstance(src.spikes, np.memmap)
    assert src.array.n == 1024 and np.isfinite(src.array.positions_um[:, 0]).sum() > 800
    gif = tmp_path / "p.gif"
    summary = replay(src, speed=0, show=False, record=gif, start_min=19.95)
    ref = read_session(PILOT / "events.txt")
    assert summary["rallies"] == ref.n_rallies == 71
    assert summary["hits"] == int(ref.rally_hits.sum())
    assert gif.stat().st_size > 1000


def test_cli_replay_errors(tmp_path, capsys):
    from dishbrain.cli import main

    assert main(["replay", str(tmp_path / "none.jsonl")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["play", "--agent", "tracker", "--minutes", "0.05", "--quiet", "--trace",
                 "--out", str(tmp_path), "--record", str(tmp_path / "p.gif")]) == 0
    assert (tmp_path / "tracker-seed0.trace.npy").exists()
    capsys.readouterr()
    assert main(["replay", str(tmp_path / "tracker-seed0.jsonl"), "--record",
                 str(tmp_path / "r.mov")]) == 2
    assert "must end in .gif or .mp4" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "tracker-seed0.jsonl"), "--start", "5"]) == 2
    assert "past the end" in capsys.readouterr().err
    assert main(["replay", str(tmp_path / "tracker-seed0.jsonl"), "--speed", "max",
                 "--record", str(tmp_path / "r.gif")]) == 0
    assert "frames recorded" in capsys.readouterr().out
