"""The live viewer: a gymnasium wrapper (LiveViewer) that shows and records a session as it is
played, and the Presenter that paces, draws, records and reads the keys (also used by replays).

Timing. The viewer draws after ``env.step`` at a fixed rate in *wall* time (``fps``, 30 by
default): the simulation never waits for the screen. With ``speed`` > 0 it sleeps so that game
time tracks wall time x speed (1 = real time); with ``speed`` 0 it runs as fast as the simulation
goes. A recording takes frames at a fixed rate in *game* time (``record_fps``), whatever the
speed, so that a recording plays back in real time (``dishbrain.viewer.recording``).

Keys (in the window): space pause / resume; ``.`` or right arrow one tick while paused; ``+`` /
``-`` faster / slower; ``q``, Escape or closing the window ends the session cleanly (raises
``dishbrain.player.SessionStopped``; ``play_session`` writes the log's end line).

The cost: about 0.3 us per step for a non-culture player (a wrapper layer and a clock read),
a few us per step for the culture panel's ring buffers, and ~0.3-1 ms per drawn frame, i.e. a
few % of the simulation's speed at 30 fps (``benchmarks/viewer_cost.py``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dishbrain.logs import EV_NONE, EVENT_CODES
from dishbrain.player import SessionStopped
from dishbrain.viewer.model import CultureProbe, ViewModel
from dishbrain.viewer.painter import Painter
from dishbrain.viewer.recording import RECORD_FPS, check_record_path, open_recorder
from envs.rendering import import_pygame

_perf_counter = time.perf_counter

#: Wall-clock frames per second of the live window.
FPS = 30
#: Speeds the +/- keys step through (0 = as fast as the simulation goes).
SPEED_STEPS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 0.0)


def parse_speed(text: str | float) -> float:
    """A speed: a number > 0 (1 = real time), or 0 / ``max`` for as fast as possible."""
    if isinstance(text, str) and text.strip().lower() in ("max", "0", "0.0"):
        return 0.0
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"speed must be a number > 0 or 'max', got {text!r}") from None
    if value == 0:
        return 0.0
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"speed must be a number > 0 or 'max', got {text!r}")
    return value


def _step_speed(speed: float, up: bool) -> float:
    """The next speed on the +/- ladder."""
    ladder = [s if s > 0 else math.inf for s in SPEED_STEPS]
    current = speed if speed > 0 else math.inf
    if up:
        nxt = next((s for s in ladder if s > current), ladder[-1])
    else:
        nxt = next((s for s in reversed(ladder) if s < current), ladder[0])
    return 0.0 if nxt == math.inf else nxt


class Presenter:
    """Shows and records a ViewModel: call ``tick(model)`` after every game tick.

    Draws into the window at ``fps`` of wall time (never waiting for the screen), sleeps to keep
    game time at ``speed`` x wall time (0: no sleeping), records a frame every 1/``record_fps``
    of game time, and handles the keys. Raises SessionStopped when the user quits.
    """

    def __init__(self, painter: Painter, *, show: bool = True, record: str | Path | None = None,
                 speed: float = 1.0, fps: float = FPS, record_fps: float | None = None,
                 caption: str = "DishBrain", offscreen: bool = False):
        pygame = import_pygame()
        self.painter = painter
        self.show = show
        self.offscreen = offscreen and not show
        self.speed = float(speed)
        self.fps = float(fps)
        self.paused = False
        self._step_once = False
        self.frames_drawn = 0
        self.frames_recorded = 0
        self.window = None
        if show:
            if not pygame.display.get_init():
                pygame.display.init()
            pygame.display.set_caption(caption)
            self.window = pygame.display.set_mode(painter.size)
            pygame.key.set_repeat(250, 60)
            self._watch_keys = (pygame.K_SPACE, pygame.K_PERIOD, pygame.K_RIGHT,
                                pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS,
                                pygame.K_MINUS, pygame.K_KP_MINUS)
            self._keys_down = set()
        self.canvas = self.window if show else (
            pygame.Surface(painter.size) if (record or self.offscreen) else None)
        if record_fps is None:
            record_fps = RECORD_FPS.get(Path(record).suffix.lower(), 25.0) if record else 25.0
        self.record_fps = record_fps
        self.recorder = open_recorder(record, painter.size, record_fps) if record else None
        self.record_dt = 1.0 / record_fps
        self._next_record_t = 0.0
        self._draw_dt = 1.0 / self.fps
        self.next_draw = 0.0  # wall time (perf_counter) of the next frame
        self.before_paint: Callable[[ViewModel], None] | None = None
        self._anchor_wall = None
        self._anchor_game = 0.0

    # -- per tick ---------------------------------------------------------------------------
    def tick(self, model: ViewModel) -> None:
        t = model.t_s
        if self.recorder is not None and t >= self._next_record_t - 1e-9:
            self._record(model)
            self._next_record_t += self.record_dt
            if self._next_record_t <= t:  # a tick longer than a frame: do not catch up
                self._next_record_t = t + self.record_dt
        if self.window is None and not self.offscreen:
            return
        now = time.perf_counter()
        if now >= self.next_draw:
            self.next_draw = now + self._draw_dt
            if self.window is not None:
                self._handle_events()
            self._draw(model)
            if self._step_once or self.paused:
                self._pause_loop(model)
            now = time.perf_counter()
        if self.speed > 0 and self.window is not None:
            self._pace(t, now)

    def _pace(self, t: float, now: float) -> None:
        if self._anchor_wall is None:
            self._anchor_wall, self._anchor_game = now, t
            return
        target = self._anchor_wall + (t - self._anchor_game) / self.speed
        ahead = target - now
        if ahead > 0.002:
            time.sleep(ahead)
        elif ahead < -0.25:  # the simulation is slower than asked: do not try to catch up
            self._anchor_wall, self._anchor_game = now, t

    def _reanchor(self) -> None:
        self._anchor_wall = None

    def _draw(self, model: ViewModel) -> None:
        if self.before_paint is not None:
            self.before_paint(model)
        self.painter.paint(self.canvas, model, self.speed, self.paused)
        if self.window is not None:
            import_pygame().display.flip()
        self.frames_drawn += 1

    def _record(self, model: ViewModel) -> None:
        pygame = import_pygame()
        if self.before_paint is not None:
            self.before_paint(model)
        if self.window is None:  # a headless recording: no speed to show
            self.painter.paint(self.canvas, model, None, False)
        else:
            self.painter.paint(self.canvas, model, self.speed, self.paused)
        frame = pygame.surfarray.array3d(self.canvas).swapaxes(0, 1)
        self.recorder.append(np.ascontiguousarray(frame))
        self.frames_recorded += 1

    def _pause_loop(self, model: ViewModel) -> None:
        """While paused: keep the window alive; return to play one tick or to resume."""
        if self._step_once:
            self._step_once = False
            if self.paused:
                return
        while self.paused and not self._step_once:
            time.sleep(self._draw_dt)
            self._handle_events()
            self._draw(model)
        if self._step_once:
            self._step_once = False  # play exactly one tick, then pause again
        self._reanchor()

    def _handle_events(self) -> None:
        pygame = import_pygame()
        handled = set()
        for event in pygame.event.get():
            if event.type == pygame.QUIT:
                raise SessionStopped("viewer window closed")
            if event.type == pygame.KEYDOWN:
                handled.add(event.key)
                self._key(event.key)
        # A player that reads the keyboard itself (the human) may have taken the key events:
        # catch presses from the key state too.
        pressed = pygame.key.get_pressed()
        down = {k for k in self._watch_keys if pressed[k]}
        for k in down - self._keys_down - handled:
            self._key(k)
        self._keys_down = down

    def _key(self, key: int) -> None:
        pygame = import_pygame()
        if key in (pygame.K_q, pygame.K_ESCAPE):
            raise SessionStopped("quit from the viewer")
        if key == pygame.K_SPACE:
            self.paused = not self.paused
            self._reanchor()
        elif key in (pygame.K_PERIOD, pygame.K_RIGHT):
            if self.paused:
                self._step_once = True
            else:
                self.paused = True
        elif key in (pygame.K_PLUS, pygame.K_EQUALS, pygame.K_KP_PLUS):
            self.speed = _step_speed(self.speed, up=True)
            self._reanchor()
        elif key in (pygame.K_MINUS, pygame.K_KP_MINUS):
            self.speed = _step_speed(self.speed, up=False)
            self._reanchor()

    def draw_now(self, model: ViewModel):
        """Draw one frame now (to the window or the off-screen canvas) and return the surface."""
        pygame = import_pygame()
        if self.canvas is None:
            self.canvas = pygame.Surface(self.painter.size)
        self._draw(model)
        return self.canvas

    def close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
        if self.window is not None:
            pygame = import_pygame()
            pygame.display.quit()
            self.window = None


class LiveViewer(gym.Wrapper):
    """Shows (and/or records) a session as it is played; a gymnasium wrapper after env.step.

    ``agent`` is the player (read by duck typing for the culture panel; None for none).
    ``show`` opens a window; ``record`` a .gif/.mp4 path; ``speed`` as in the module docs;
    ``offscreen`` draws at ``fps`` to an off-screen surface (to measure the viewer's cost).
    """

    def __init__(self, env: gym.Env, agent: Any = None, *, show: bool = True,
                 record: str | Path | None = None, speed: float = 1.0, fps: float = FPS,
                 record_fps: float | None = None, offscreen: bool = False):
        super().__init__(env)
        if record is not None:
            record = check_record_path(record)
        self.agent = agent
        self.probe = CultureProbe(agent) if agent is not None else None
        self._options = dict(show=show, record=record, speed=parse_speed(speed), fps=fps,
                             record_fps=record_fps, offscreen=offscreen)
        self.model: ViewModel | None = None
        self.painter: Painter | None = None
        self.presenter: Presenter | None = None
        self._has_array = False
        self._last_feedback = None
        self._layout_name = None
        self._every_step = True
        self._next_draw = 0.0
        self._base = None

    def _setup(self) -> None:
        base = self.env.unwrapped
        config = base.config
        layout = self.probe.layout() if self.probe is not None else None
        self._has_array = layout is not None
        player = getattr(self.agent, "name", "") if self.agent is not None else ""
        condition = self.probe.condition() if self.probe is not None else None
        self.model = ViewModel(config.dt_s, layout, player=player, condition=condition)
        if self.painter is None or (self.painter.array is None) != (layout is None):
            self.painter = Painter(config, layout)
        if self.presenter is None:
            self.presenter = Presenter(self.painter, caption=f"DishBrain: {player}",
                                       **self._options)
        self._last_feedback = self.probe.feedback() if self.probe is not None else None
        self._layout_name = self.probe.layout_name() if self.probe is not None else None
        if self._layout_name:
            self.model.note = f"layout {self._layout_name}"

    def _refresh_layout(self) -> None:
        """Follow a switch of motor layout (the decoder may switch after misses)."""
        name = self.probe.layout_name()
        if name == self._layout_name:
            return
        self._layout_name = name
        layout = self.probe.layout()
        if layout is not None and layout.n == self.model.array.n:
            # Same raster rows as before, so the raster's history stays in place.
            layout = dataclasses.replace(layout, raster_order=self.model.array.raster_order)
            self.model.array = layout
            self.painter.set_array(layout)
            self.model.note = f"layout {name}"

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._setup()
        self._base = self.env.unwrapped
        self.presenter.before_paint = self._read_court
        self._observe(info)
        self._tick_presenter()
        return obs, info

    def step(self, action):
        # The hot path: a few attribute reads per step; the rest runs on events, for a culture,
        # or when a frame is due (see Presenter.tick).
        out = self.env.step(action)
        info = out[4]
        if self._has_array or info["event"] != "none":
            self._observe(info)
        if out[2] or out[3]:  # the session's end: the rally in flight by analyze's rule
            self.model.end_session(info["game_time_s"])
        if self._every_step or _perf_counter() >= self._next_draw:
            self.model.t_s = info["game_time_s"]
            self._tick_presenter()
        return out

    def _tick_presenter(self) -> None:
        p = self.presenter
        p.tick(self.model)
        self._next_draw = p.next_draw
        # Per-step calls are needed to record at game-time rate or to keep to a speed;
        # otherwise the presenter is called only when a wall-clock frame is due.
        self._every_step = p.recorder is not None or (p.window is not None and p.speed > 0)
        if p.window is None and not p.offscreen and p.recorder is None:
            self._next_draw = math.inf  # nothing to show

    def _observe(self, info: dict) -> None:
        model = self.model
        t = model.t_s = info["game_time_s"]
        event = info["event"]
        if event != "none":
            model.on_event(EVENT_CODES.get(event, EV_NONE), t)
            if self._has_array and event == "miss":
                self._refresh_layout()
        if self._has_array:
            probe = self.probe
            fb = probe.feedback()
            if fb is not None and fb != self._last_feedback:
                model.on_feedback(fb[0], t)
            self._last_feedback = fb
            slot, rate = probe.stim()
            model.push_activity(probe.counts(), slot, rate)

    def _read_court(self, model: ViewModel) -> None:
        base = self._base
        model.court = ((base.ball_x, base.ball_y) if base.in_play else None, base.paddle_y)

    def snapshot(self):
        """Draw the current state now; returns the surface (for screenshots and tests)."""
        return self.presenter.draw_now(self.model)

    @property
    def frames_drawn(self) -> int:
        """Frames drawn for the window or off-screen (not counting recorded ones)."""
        return self.presenter.frames_drawn if self.presenter is not None else 0

    def close(self):
        if self.presenter is not None:
            self.presenter.close()  # idempotent; kept for its counters
        super().close()


def viewer_wrapper(agent: Any = None, *, show: bool = True, record: str | Path | None = None,
                   speed: float | str = 1.0, fps: float = FPS, record_fps: float | None = None,
                   offscreen: bool = False) -> Callable[[gym.Env], LiveViewer]:
    """A wrapper factory for ``play_session(..., wrappers=[...])``: env -> LiveViewer.

    Checks ``record`` and ``speed`` now, so that bad input fails before the session starts
    (ValueError with a one-line message).
    """
    if record is not None:
        check_record_path(record)
    speed = parse_speed(speed)
    if not (fps > 0 and (record_fps is None or record_fps > 0)):
        raise ValueError(f"fps and record_fps must be > 0, got {fps!r} and {record_fps!r}")

    def wrap(env: gym.Env) -> LiveViewer:
        return LiveViewer(env, agent, show=show, record=record, speed=speed, fps=fps,
                          record_fps=record_fps, offscreen=offscreen)

    return wrap
