"""The live viewer: watch any player play, record the view to a GIF or MP4, replay a session.

One picture, drawn the same way live, when recording and in replays (``dishbrain/replay.py``):

- the Pong court (``envs.rendering.draw_court``);
- for a culture, the virtual MEA beside it (Kagan et al. 2022, Fig. 1: 8 sensory electrodes, 4
  motor regions): the stimulated sensory electrode lit, brighter and pulsing faster as the rate
  code rises from 4 to 40 Hz; the motor regions shaded by their recent activity, "up" regions
  green and "down" regions magenta; feedback as a coloured border and banner, blue for the
  predictable stimulation after a hit, red for the unpredictable one after a miss;
- a scrolling raster of the last few seconds of activity (spikes per electrode per 10 ms tick;
  rows: sensory, up, down, then the other electrodes; the stimulated sensory row tinted; event
  marks on top);
- live figures (player, condition, time, current rally, ARL, aces %, long rallies %, the
  published metrics of Kagan et al. 2022, Fig. 5) and a small ARL-per-minute curve.

For other players the picture is the court, the figures and the curve. Every piece of rolling
state is a fixed-size ring buffer, so memory stays flat however long the session.

Timing. The viewer draws after ``env.step`` at a fixed rate in *wall* time (``fps``, 30 by
default): the simulation never waits for the screen. With ``speed`` > 0 it sleeps so that game
time tracks wall time x speed (1 = real time); with ``speed`` 0 it runs as fast as the simulation
goes. A recording takes frames at a fixed rate in *game* time (``record_fps``: 25 fps for MP4,
12.5 for GIF, whose frames are far larger), whatever the speed, so that a recording plays back
in real time.

Keys (in the window): space pause / resume; ``.`` or right arrow one tick while paused; ``+`` /
``-`` faster / slower; ``q``, Escape or closing the window ends the session cleanly (raises
``agents.base.SessionStopped``; ``play_session`` writes the log's end line).

The culture panel reads the player by duck typing, so any player with these attributes gets it:
``mea`` or ``culture.mea`` (``positions_um``, ``sensory``, ``motor_layout(name)``), the motor
layout in use (``decoder.layout``, ``motor_layout`` or ``layout``), ``last_counts`` (spikes per
electrode in the last tick), ``encoder`` (current sensory slot and pulse rate) and
``feedback.last_feedback`` (``("predictable" | "unpredictable", t_ms)``).

The cost: about 0.3 us per step for a non-culture player (a wrapper layer and a clock read),
a few us per step for the culture panel's ring buffers, and ~0.3-1 ms per drawn frame, i.e. a
few % of the simulation's speed at 30 fps (``benchmarks/viewer_cost.py``).

Examples (the pictures in ``docs/`` come from the last three)::

    dishbrain play --agent culture --minutes 2 --render            # watch, real time
    dishbrain play --agent tracker --minutes 20 --render --speed max
    dishbrain play --agent culture --minutes 0.4 --record docs/culture-play.gif
    dishbrain play --agent culture --minutes 2 --trace --out runs/viewer-demo --quiet
    dishbrain replay runs/viewer-demo/culture-stimulus-seed0.jsonl --png docs/viewer.png \\
        --start 1.9545
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import gymnasium as gym

from agents.base import SessionStopped
from envs.rendering import BACKGROUND, BALL, LINES, PADDLE, TEXT, draw_court, import_pygame

__all__ = [
    "ArrayLayout", "CultureProbe", "ViewModel", "Painter", "Presenter", "LiveViewer",
    "viewer_wrapper", "parse_speed", "check_record_path", "GifWriter", "open_recorder",
    "FPS", "RECORD_FPS", "RASTER_S",
]

_perf_counter = time.perf_counter

#: Wall-clock frames per second of the live window.
FPS = 30
#: Game-time frames per second of a recording, by format. GIF delays are whole centiseconds
#: (12.5 fps = 8 cs); a GIF frame of the scrolling raster costs ~10 kB, so 12.5 fps keeps a 20 s
#: clip near 3 MB.
RECORD_FPS = {".mp4": 25.0, ".gif": 12.5}
#: Seconds of activity in the scrolling raster.
RASTER_S = 4.0
#: Time constant of the activity shading of electrodes and motor regions (game ms).
ACTIVITY_TAU_MS = 100.0
#: Game seconds a feedback banner stays up. The predictable feedback lasts 100 ms (Kagan et al.
#: 2022), too short to see at 30 fps, so its banner is held longer; the unpredictable one lasts
#: the 4 s of the pause after a miss.
FEEDBACK_SHOW_S = {"predictable": 0.6, "unpredictable": 4.0}
#: The rate code's range (Kagan et al. 2022: 4 Hz far from the paddle to 40 Hz near it).
RATE_MIN_HZ, RATE_MAX_HZ = 4.0, 40.0
#: Minutes kept for the ARL-per-minute curve.
CURVE_MINUTES = 20
#: Speeds the +/- keys step through (0 = as fast as the simulation goes).
SPEED_STEPS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 0.0)
#: The extensions a recording may have.
RECORD_EXTENSIONS = (".gif", ".mp4")

# Event codes, as in envs.pong.EVENTS, plus the pilot recording's wall bounce.
EV_NONE, EV_SERVE, EV_HIT, EV_MISS, EV_BOUNCE = 0, 1, 2, 3, 4
EVENT_CODES = {"none": EV_NONE, "serve": EV_SERVE, "hit": EV_HIT, "miss": EV_MISS,
               "bounce": EV_BOUNCE}
FEEDBACK_CODES = {"predictable": 1, "unpredictable": 2}
FEEDBACK_NAMES = {1: "predictable", 2: "unpredictable"}

# Colours (the court's own come from envs.rendering).
PANEL = (20, 24, 32)
EDGE = (48, 56, 72)
DIM = (120, 128, 145)
UP = (70, 210, 120)
DOWN = (225, 100, 225)
SENSORY = (255, 200, 50)
PREDICTABLE = (70, 170, 255)
UNPREDICTABLE = (255, 70, 55)
HIT = (90, 230, 120)
MISS = (255, 70, 55)
ELECTRODE = (60, 68, 86)
STIM_FILL = (255, 230, 50)   # the stimulated sensory electrode at 40 Hz ...
STIM_LOW = (205, 135, 25)    # ... and at 4 Hz
STIM_DIM = (90, 75, 25)
_ELECTRODE_OFF = np.array((52, 60, 78), dtype=np.float32)
_ELECTRODE_ON = np.array((150, 215, 255), dtype=np.float32)
ARL_LINE = (255, 200, 90)

# Raster colour map: spikes per tick -> colour (0 dark, 1 red, 2 orange, >= 4 yellow-white).
_RASTER_LUT = np.zeros((256, 3), dtype=np.uint8)
_RASTER_LUT[0] = PANEL
_RASTER_LUT[1] = (150, 40, 30)
_RASTER_LUT[2] = (230, 90, 30)
_RASTER_LUT[3] = (255, 170, 40)
_RASTER_LUT[4:] = (255, 240, 170)
_SERVE_MARK = (120, 120, 140)
# The raster's 8-bit palette: spike counts 0-4+, the stimulation tint, event marks (by event
# code), row roles (other, sensory, up, down).
_PAL_SPIKES_MAX, _PAL_STIM, _PAL_EVENT, _PAL_ROLE = 4, 5, 8, 16
_RASTER_PALETTE = np.zeros((256, 3), dtype=np.uint8)
_RASTER_PALETTE[:] = PANEL
_RASTER_PALETTE[:5] = _RASTER_LUT[:5]
_RASTER_PALETTE[_PAL_STIM] = STIM_DIM
_RASTER_PALETTE[_PAL_EVENT + EV_SERVE] = _SERVE_MARK
_RASTER_PALETTE[_PAL_EVENT + EV_HIT] = HIT
_RASTER_PALETTE[_PAL_EVENT + EV_MISS] = MISS
_RASTER_PALETTE[_PAL_EVENT + EV_BOUNCE] = (80, 80, 95)
_RASTER_PALETTE[_PAL_ROLE:_PAL_ROLE + 4] = (EDGE, SENSORY, UP, DOWN)


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


def speed_label(speed: float) -> str:
    return "max" if speed == 0 else f"{speed:g}x"


def _step_speed(speed: float, up: bool) -> float:
    """The next speed on the +/- ladder."""
    ladder = [s if s > 0 else math.inf for s in SPEED_STEPS]
    current = speed if speed > 0 else math.inf
    if up:
        nxt = next((s for s in ladder if s > current), ladder[-1])
    else:
        nxt = next((s for s in reversed(ladder) if s < current), ladder[0])
    return 0.0 if nxt == math.inf else nxt


# --------------------------------------------------------------------------------------------
# What is shown: the electrode array, and the culture read by duck typing


@dataclass(frozen=True)
class ArrayLayout:
    """An electrode array as the viewer draws it.

    ``positions_um`` is (n, 2) (NaN rows are not drawn); ``sensory`` the 8 stimulation
    electrodes in slot order; ``motor_up`` / ``motor_down`` the up and down regions (each a
    tuple of electrode indices); ``raster_order`` the electrode order of the raster's rows
    (default: sensory, up, down, then the rest in reading order) and ``raster_rows`` how many rows
    they are summed into (large arrays, e.g. a 1024-channel MaxOne chip, are grouped).
    """

    name: str
    positions_um: np.ndarray
    sensory: tuple[int, ...] = ()
    motor_up: tuple[tuple[int, ...], ...] = ()
    motor_down: tuple[tuple[int, ...], ...] = ()
    raster_order: np.ndarray | None = None
    raster_rows: int = 0

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions_um, dtype=float).reshape(-1, 2)
        object.__setattr__(self, "positions_um", pos)
        for name in ("motor_up", "motor_down"):
            regions = tuple(tuple(int(e) for e in region) for region in getattr(self, name))
            object.__setattr__(self, name, regions)
        object.__setattr__(self, "sensory", tuple(int(e) for e in self.sensory))
        n = len(pos)
        order = self.raster_order
        if order is None:
            # Sensory, up and down electrodes first, then the rest in reading order (top to
            # bottom, then left to right).
            y = np.nan_to_num(pos[:, 1], nan=np.inf)
            x = np.nan_to_num(pos[:, 0], nan=np.inf)
            first = list(dict.fromkeys(
                list(self.sensory) + [e for r in self.motor_up + self.motor_down for e in r]))
            rest = [e for e in np.lexsort((x, y)).tolist() if e not in set(first)]
            order = first + rest
        object.__setattr__(self, "raster_order", np.asarray(order, dtype=np.int64))
        rows = self.raster_rows or min(n, 128)
        object.__setattr__(self, "raster_rows", int(max(1, min(rows, n))))

    @property
    def n(self) -> int:
        return len(self.positions_um)

    @property
    def grouped(self) -> bool:
        return self.raster_rows < self.n

    def row_roles(self) -> np.ndarray:
        """Colour of each raster row's role (sensory, up, down, other), (rows, 3) uint8."""
        colours = np.empty((self.raster_rows, 3), dtype=np.uint8)
        colours[:] = EDGE
        if self.grouped:
            return colours
        role = {}
        for e in self.sensory:
            role[e] = SENSORY
        for r in self.motor_up:
            role.update({e: UP for e in r})
        for r in self.motor_down:
            role.update({e: DOWN for e in r})
        for row, e in enumerate(self.raster_order):
            if int(e) in role:
                colours[row] = role[int(e)]
        return colours

    def row_starts(self) -> np.ndarray:
        """Start of each raster row's group in ``raster_order`` (for ``np.add.reduceat``)."""
        return np.linspace(0, self.n, self.raster_rows + 1)[:-1].round().astype(np.int64)


def _first_attr(obj: Any, names: Sequence[str], default: Any = None) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return default


class CultureProbe:
    """Reads a player's culture state by duck typing; every reader returns None when absent.

    Works for ``agents.culture.CultureAgent`` and for any object with the same attributes
    (tests use a small fake). A non-culture player gives ``layout() is None``.
    """

    def __init__(self, agent: Any):
        self.agent = agent
        culture = getattr(agent, "culture", None)
        self.culture = culture
        self.mea = _first_attr(agent, ("mea",)) or getattr(culture, "mea", None)
        self.encoder = getattr(agent, "encoder", None)
        self.feedback_rule = getattr(agent, "feedback", None)
        self.decoder = getattr(agent, "decoder", None)

    def _motor_layout(self) -> Any:
        mea = self.mea
        layout = _first_attr(self.decoder, ("layout", "motor_layout")) \
            or _first_attr(self.agent, ("motor_layout", "layout"))
        if isinstance(layout, (str, int)) and hasattr(mea, "motor_layout"):
            try:
                layout = mea.motor_layout(layout)
            except (KeyError, ValueError, IndexError):
                layout = None
        if layout is None and hasattr(mea, "motor_layout"):
            names = getattr(mea, "layout_names", None) or ()
            try:
                layout = mea.motor_layout(names[0]) if names else None
            except (KeyError, ValueError, IndexError):
                layout = None
        return layout

    def layout(self) -> ArrayLayout | None:
        mea = self.mea
        positions = getattr(mea, "positions_um", None)
        if positions is None:
            return None
        motor = self._motor_layout()
        up = tuple(tuple(region) for region in (getattr(motor, "up", ()) or ()))
        down = tuple(tuple(region) for region in (getattr(motor, "down", ()) or ()))
        sensory = tuple(int(e) for e in (getattr(mea, "sensory", ()) or ()))
        n = len(np.asarray(positions).reshape(-1, 2))
        side = int(round(math.sqrt(n)))
        name = f"MEA {side}x{side}" if side * side == n else f"MEA {n} electrodes"
        return ArrayLayout(name, np.asarray(positions, dtype=float), sensory, up, down,
                           raster_rows=n if n <= 128 else 128)

    def counts(self) -> np.ndarray | None:
        """Spikes per electrode in the last tick."""
        return getattr(self.agent, "last_counts", None)

    def stim(self) -> tuple[int, float]:
        """(sensory slot stimulated now or -1, pulse rate in Hz or 0)."""
        enc = self.encoder
        if enc is None:
            return -1, 0.0
        slot = _first_attr(enc, ("slot", "current_slot", "sensory_slot", "last_slot"))
        rate = _first_attr(enc, ("rate_hz", "current_rate_hz", "pulse_rate_hz", "last_rate_hz"))
        try:
            slot = -1 if slot is None else int(slot)
            rate = 0.0 if rate is None else float(rate)
        except (TypeError, ValueError):
            return -1, 0.0
        if slot < 0 or rate <= 0:
            return -1, 0.0
        return slot, rate

    def feedback(self) -> tuple[str, float] | None:
        """The feedback rule's last feedback, ``(kind, t_ms)``, or None."""
        fb = getattr(self.feedback_rule, "last_feedback", None)
        if not fb:
            return None
        try:
            kind, t_ms = fb[0], float(fb[1])
        except (TypeError, ValueError, IndexError):
            return None
        return (kind, t_ms) if kind in FEEDBACK_CODES else None

    def condition(self) -> str | None:
        return getattr(self.agent, "condition", None)

    def layout_name(self) -> str | None:
        """Name of the motor layout in use (it may switch after misses)."""
        layout = _first_attr(self.decoder, ("layout", "motor_layout")) \
            or _first_attr(self.agent, ("motor_layout", "layout"))
        return layout if isinstance(layout, str) else getattr(layout, "name", None)


# --------------------------------------------------------------------------------------------
# The rolling state


class ViewModel:
    """Everything the picture shows, updated tick by tick; fixed-size buffers only.

    Callers feed it: ``on_event`` for serves, hits and misses, ``on_feedback`` when feedback
    starts, ``push_activity`` once per tick for an array, and set ``t_s`` (game time) and
    ``court`` (``(ball_xy or None, paddle_y or None)``) before a frame is drawn.
    """

    def __init__(self, tick_s: float, array: ArrayLayout | None = None, *, player: str = "",
                 condition: str | None = None, source: str = "", raster_s: float = RASTER_S,
                 long_threshold: int = 3):
        self.tick_s = tick_s
        self.array = array
        self.player = player
        self.condition = condition
        self.source = source
        self.long_threshold = long_threshold
        self.t_s = 0.0
        self.court: tuple[tuple[float, float] | None, float | None] = (None, None)
        self.note = ""  # a line of extra state (e.g. the pilot's motor layout)
        # Rally metrics, incrementally (same definitions as dishbrain.metrics).
        self.rally_hits = 0
        self.rallies = self.hits = self.aces = self.long = 0
        self._min_index = np.full(CURVE_MINUTES + 1, -1, dtype=np.int64)
        self._min_rallies = np.zeros(CURVE_MINUTES + 1, dtype=np.int64)
        self._min_hits = np.zeros(CURVE_MINUTES + 1, dtype=np.int64)
        self.curve_version = 0
        self.last_event = EV_NONE
        self.last_event_t = -math.inf
        self.feedback_kind: str | None = None
        self.feedback_t = -math.inf
        # Activity.
        self.n_cols = max(1, int(round(raster_s / tick_s)))
        self.col = 0
        self._pending_event = EV_NONE
        if array is not None:
            self.raster = np.zeros((array.raster_rows, self.n_cols), dtype=np.uint8)
            self.event_ring = np.zeros(self.n_cols, dtype=np.uint8)
            self.activity = np.zeros(array.n, dtype=np.float32)
            self._decay = np.float32(math.exp(-tick_s * 1000.0 / ACTIVITY_TAU_MS))
            self._grouped = array.raster_rows < array.n
            self._order = array.raster_order
            self._starts = array.row_starts()
            self._sensory = np.asarray(array.sensory, dtype=np.int64)
            self.stim_ring = np.full(self.n_cols, -1, dtype=np.int8)
        self.stim_slot = -1
        self.stim_rate_hz = 0.0
        self.stim_on_t = -math.inf

    # -- events ---------------------------------------------------------------------------------
    def on_event(self, code: int, t_s: float) -> None:
        if code == EV_BOUNCE:  # a wall bounce (real recordings): a mark in the raster only
            if self._pending_event == EV_NONE:
                self._pending_event = code
            return
        self.last_event, self.last_event_t = code, t_s
        self._pending_event = code
        if code == EV_HIT:
            self.rally_hits += 1
        elif code == EV_MISS:
            h = self.rally_hits
            self.rallies += 1
            self.hits += h
            self.aces += h == 0
            self.long += h > self.long_threshold
            self.rally_hits = 0
            minute = int(t_s // 60.0)
            slot = minute % len(self._min_index)
            if self._min_index[slot] != minute:
                self._min_index[slot] = minute
                self._min_rallies[slot] = self._min_hits[slot] = 0
            self._min_rallies[slot] += 1
            self._min_hits[slot] += h
            self.curve_version += 1

    def on_feedback(self, kind: str, t_s: float) -> None:
        self.feedback_kind, self.feedback_t = kind, t_s

    def feedback_now(self) -> str | None:
        kind = self.feedback_kind
        if kind is not None and self.t_s - self.feedback_t < FEEDBACK_SHOW_S.get(kind, 0.5):
            return kind
        return None

    def push_activity(self, counts: np.ndarray | None, stim_slot: int = -1,
                      stim_rate_hz: float = 0.0) -> None:
        """One tick of array activity: spikes per electrode and the sensory stimulation."""
        c = self.col
        if counts is not None:
            counts = np.asarray(counts)
            if len(counts) == self.array.n:
                self.activity *= self._decay
                self.activity += counts
                if self._grouped:
                    rows = np.add.reduceat(counts[self._order], self._starts)
                else:
                    rows = counts[self._order]
                self.raster[:, c] = np.minimum(rows, 255)
        self.event_ring[c] = self._pending_event
        self._pending_event = EV_NONE
        if stim_slot >= 0 and stim_rate_hz > 0:
            if self.stim_slot < 0:
                self.stim_on_t = self.t_s
            self.stim_slot, self.stim_rate_hz = stim_slot, stim_rate_hz
        else:
            self.stim_slot, self.stim_rate_hz = -1, 0.0
        self.stim_ring[c] = self.stim_slot
        self.col = (c + 1) % self.n_cols

    # -- derived figures ----------------------------------------------------------------------
    @property
    def arl(self) -> float:
        return self.hits / self.rallies if self.rallies else math.nan

    @property
    def aces_pct(self) -> float:
        return 100.0 * self.aces / self.rallies if self.rallies else math.nan

    @property
    def long_pct(self) -> float:
        return 100.0 * self.long / self.rallies if self.rallies else math.nan

    def arl_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(minute, ARL) for the last ``CURVE_MINUTES`` minutes up to now (NaN: no rally)."""
        now = int(self.t_s // 60.0)
        minutes = np.arange(max(0, now - CURVE_MINUTES + 1), now + 1)
        arl = np.full(len(minutes), np.nan)
        for i, m in enumerate(minutes):
            slot = m % len(self._min_index)
            if self._min_index[slot] == m and self._min_rallies[slot]:
                arl[i] = self._min_hits[slot] / self._min_rallies[slot]
        return minutes, arl

    def electrode_rate(self) -> np.ndarray:
        """Recent spikes per tick of each electrode (exponential average, ACTIVITY_TAU_MS)."""
        return self.activity * (1.0 - self._decay)

    def raster_image(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The raster, the event strip and the stimulated sensory slot per tick, oldest tick
        first (copies)."""
        c = self.col
        return (np.concatenate((self.raster[:, c:], self.raster[:, :c]), axis=1),
                np.concatenate((self.event_ring[c:], self.event_ring[:c])),
                np.concatenate((self.stim_ring[c:], self.stim_ring[:c])))


# --------------------------------------------------------------------------------------------
# Drawing


@dataclass(frozen=True)
class _Rects:
    size: tuple[int, int]
    title: tuple[int, int, int, int]
    court: tuple[int, int, int, int]
    figures: tuple[int, int, int, int]
    curve: tuple[int, int, int, int]
    status: tuple[int, int, int, int]
    mea: tuple[int, int, int, int] | None = None
    raster: tuple[int, int, int, int] | None = None


def _layout(with_array: bool, court_px: int = 400) -> _Rects:
    m = 12
    top = 40
    court = (m, top, court_px, court_px)
    below = top + court_px + 10
    if with_array:
        mea = (court[0] + court_px + m, top, 260, 260)
        figures = (mea[0] + mea[2] + m, top, 252, 260)
        raster = (mea[0], top + 260 + 10, figures[0] + figures[2] - mea[0], court_px - 270)
        curve = (m, below, court_px, 544 - below - m)
        status = (mea[0], below, raster[2], 544 - below - m)
        width = figures[0] + figures[2] + m
    else:
        mea = raster = None
        figures = (court[0] + court_px + m, top, 260, 250)
        curve = (figures[0], top + 260, 260, court_px - 260)
        status = (m, below, figures[0] + figures[2] - m, 544 - below - m)
        width = figures[0] + figures[2] + m
    width = (width + 15) // 16 * 16  # video codecs want sizes that are multiples of 16
    return _Rects((width, 544), (0, 0, width, top - 8), court, figures, curve, status, mea, raster)


class Painter:
    """Draws a ViewModel onto a pygame surface: ``paint(surface, model, speed, paused)``.

    Text is cached (bounded), the static frame is pre-drawn once, and the raster is one
    small surface scaled into place, so a frame costs about a millisecond or two.
    """

    def __init__(self, config, array: ArrayLayout | None, title: str = "DishBrain"):
        pygame = import_pygame()
        if not pygame.font.get_init():
            pygame.font.init()
        self.config = config
        self.array = array
        self.title = title
        self.rects = _layout(array is not None)
        self.size = self.rects.size
        self.font = pygame.font.Font(None, 22)
        self.small = pygame.font.Font(None, 18)
        self.big = pygame.font.Font(None, 30)
        self._text_cache: dict[tuple, Any] = {}
        self._background = self._draw_background()
        self._curve_key = None
        self._curve_surface = None
        if array is not None:
            self._electrode_xy, self._electrode_r = self._electrode_geometry()
            self._raster_small = pygame.Surface((1, 1))
            self.set_array(array)

    def set_array(self, array: ArrayLayout) -> None:
        """A new layout of the same electrodes (the motor layout switched)."""
        self.array = array
        roles = array.row_roles()
        self._row_role_index = np.full(len(roles), _PAL_ROLE, dtype=np.uint8)
        for k, colour in enumerate((SENSORY, UP, DOWN)):
            self._row_role_index[(roles == colour).all(axis=1)] = _PAL_ROLE + 1 + k
        self._slot_rows = None
        if array.sensory and not array.grouped:
            row_of = np.empty(array.n, dtype=np.int64)
            row_of[array.raster_order] = np.arange(array.n)
            self._slot_rows = row_of[list(array.sensory)]

    # -- helpers ----------------------------------------------------------------------------
    def text(self, s: str, colour=TEXT, font=None):
        font = font or self.font
        key = (s, colour, id(font))
        surf = self._text_cache.get(key)
        if surf is None:
            if len(self._text_cache) > 512:
                self._text_cache.clear()
            surf = self._text_cache[key] = font.render(s, True, colour)
        return surf

    def fit(self, s: str, width: int, colour=TEXT, font=None):
        """``text`` cut (with an ellipsis) to at most ``width`` pixels."""
        font = font or self.font
        surf = self.text(s, colour, font)
        if surf.get_width() <= width:
            return surf
        lo, hi = 0, len(s)
        while lo < hi:  # the longest prefix that fits
            mid = (lo + hi + 1) // 2
            if font.size(s[:mid] + "...")[0] <= width:
                lo = mid
            else:
                hi = mid - 1
        return self.text(s[:lo].rstrip() + "...", colour, font)

    def _draw_background(self):
        pygame = import_pygame()
        bg = pygame.Surface(self.size)
        bg.fill(BACKGROUND)
        r = self.rects
        panels = [r.figures, r.curve] + [x for x in (r.mea, r.raster) if x is not None]
        for rect in panels:
            pygame.draw.rect(bg, PANEL, rect, border_radius=4)
            pygame.draw.rect(bg, EDGE, rect, width=1, border_radius=4)
        x, y, w, h = r.curve
        bg.blit(self.text("ARL per minute", DIM, self.small), (x + 8, y + 6))
        if r.raster is not None:
            x, y, w, h = r.raster
            a = self.array
            if a.grouped:
                rows = f"rows: groups of ~{a.n // a.raster_rows} channels"
            elif a.sensory or a.motor_up:
                rows = "rows: sensory, up, down, other electrodes"
            else:
                rows = "rows: electrodes"
            bg.blit(self.text(f"spikes, last {RASTER_S:g} s ({rows})", DIM, self.small),
                    (x + 8, y + 5))
        if r.mea is not None:
            x, y, w, h = r.mea
            legend = []
            if self.array.sensory:
                legend.append(("sensory", SENSORY))
            if self.array.motor_up or self.array.motor_down:
                legend += [("up", UP), ("down", DOWN)]
            width = sum(self.small.size(label)[0] + 10 for label, _ in legend)
            bg.blit(self.fit(self.array.name, w - 16 - width, DIM, self.small), (x + 8, y + 5))
            lx = x + w - 8
            for label, colour in reversed(legend):
                surf = self.text(label, colour, self.small)
                lx -= surf.get_width()
                bg.blit(surf, (lx, y + 5))
                lx -= 10
        return bg

    def _electrode_geometry(self) -> tuple[np.ndarray, int]:
        """Pixel centres of the electrodes in the MEA panel, and the dot radius."""
        x, y, w, h = self.rects.mea
        pos = self.array.positions_um
        ok = np.isfinite(pos).all(axis=1)
        xy = np.full((len(pos), 2), -1000, dtype=np.int64)
        if not ok.any():
            return xy, 2
        p = pos[ok]
        lo, hi = p.min(axis=0), p.max(axis=0)
        span = np.maximum(hi - lo, 1e-9)
        # Spacing: the smallest distance between distinct coordinates (the pitch of a grid).
        steps = [np.diff(np.unique(p[:, k])) for k in (0, 1)]
        steps = np.concatenate([s[s > 1e-9] for s in steps]) if any(len(s) for s in steps) \
            else np.array([1.0])
        pitch = float(steps.min()) if len(steps) else 1.0
        pad_top, pad = 26, 16
        area_w, area_h = w - 2 * pad, h - pad_top - pad
        scale = min(area_w / (span[0] + pitch), area_h / (span[1] + pitch))
        ox = x + pad + (area_w - span[0] * scale) / 2
        oy = y + pad_top + (area_h - span[1] * scale) / 2
        xy[ok, 0] = np.round(ox + (p[:, 0] - lo[0]) * scale)
        xy[ok, 1] = np.round(oy + (p[:, 1] - lo[1]) * scale)
        radius = int(max(1, min(pitch * scale * 0.36, 14)))
        return xy, radius

    def electrode_center(self, i: int) -> tuple[int, int]:
        """Pixel centre of electrode ``i`` in the picture (for tests and overlays)."""
        return int(self._electrode_xy[i, 0]), int(self._electrode_xy[i, 1])

    # -- the frame --------------------------------------------------------------------------
    def paint(self, surface, model: ViewModel, speed: float | None = 1.0,
              paused: bool = False) -> None:
        pygame = import_pygame()
        r = self.rects
        surface.blit(self._background, (0, 0))
        feedback = model.feedback_now()
        self._paint_title(surface, model, speed, paused)
        self._paint_court(surface, model, feedback)
        self._paint_figures(surface, model)
        self._paint_curve(surface, model)
        if self.array is not None:
            self._paint_mea(surface, model, feedback)
            self._paint_raster(surface, model)
        self._paint_status(surface, model, feedback, keys=speed is not None)
        if paused:
            x, y, w, h = r.court
            label = self.text("PAUSED  (space: resume, . : one tick)", TEXT, self.font)
            box = label.get_rect(center=(x + w // 2, y + h // 2))
            pygame.draw.rect(surface, PANEL, box.inflate(16, 10), border_radius=4)
            surface.blit(label, box)

    def _paint_title(self, surface, model, speed, paused) -> None:
        who = model.player or "player"
        if model.condition:
            who += f" ({model.condition})"
        left = f"{self.title}  |  {who}"
        if model.source:
            left += f"  |  {model.source}"
        t = model.t_s
        right = f"{int(t // 60):02d}:{t % 60:04.1f}"
        if speed is not None:
            right += f"   speed {speed_label(speed)}"
        if paused:
            right += "   PAUSED"
        surf = self.text(right, TEXT, self.font)
        surface.blit(surf, (self.size[0] - 12 - surf.get_width(), 10))
        room = self.size[0] - 12 - surf.get_width() - 24 - 12
        surface.blit(self.fit(left, room, TEXT, self.font), (12, 10))

    def _paint_court(self, surface, model, feedback) -> None:
        pygame = import_pygame()
        rect = self.rects.court
        ball, paddle_y = model.court
        known = paddle_y is not None
        # Without recorded positions (a real culture's event log) the paddle is drawn off the
        # picture, above the court.
        draw_court(surface, rect, self.config, ball,
                   paddle_y if known else -2.0 * self.config.court_height)
        x, y, w, h = rect
        if not known:
            msg = self.text("ball and paddle not recorded: events only", DIM, self.small)
            surface.blit(msg, msg.get_rect(center=(x + w // 2, y + h - 16)))
            rally = self.text(f"rally {model.rally_hits}", TEXT, self.big)
            surface.blit(rally, rally.get_rect(center=(x + w // 2, y + h // 2)))
        age = model.t_s - model.last_event_t
        if model.last_event == EV_HIT and age < 0.3 and known:
            sy = h / self.config.court_height
            py = y + paddle_y * sy
            ph = self.config.paddle_height * sy
            pygame.draw.rect(surface, HIT, (x, py - ph / 2 - 3, 10, ph + 6), width=2,
                             border_radius=3)
        elif model.last_event == EV_HIT and age < 0.3:
            pygame.draw.rect(surface, HIT, rect, width=3)
        if feedback is not None:
            colour = PREDICTABLE if feedback == "predictable" else UNPREDICTABLE
            pygame.draw.rect(surface, colour, (x - 3, y - 3, w + 6, h + 6), width=4)
            banner = self.text(f"{feedback} feedback", colour, self.big)
            box = banner.get_rect(midtop=(x + w // 2, y + 10))
            pygame.draw.rect(surface, BACKGROUND, box.inflate(14, 6))
            surface.blit(banner, box)
        elif model.last_event == EV_MISS and age < 0.5:
            pygame.draw.rect(surface, MISS, (x - 3, y - 3, w + 6, h + 6), width=3)

    def _paint_figures(self, surface, model) -> None:
        x, y, w, h = self.rects.figures

        def fmt(v, spec):
            return "-" if v != v else format(v, spec)

        t = model.t_s
        rows = [
            ("player", model.player or "-"),
            ("condition", model.condition or "-"),
            ("minute", f"{int(t // 60) + 1}  ({int(t // 60):d}:{int(t % 60):02d})"),
            ("current rally", f"{model.rally_hits} hits"),
            ("rallies", f"{model.rallies}"),
            ("ARL so far", fmt(model.arl, ".2f")),
            ("aces", fmt(model.aces_pct, ".1f") + (" %" if model.rallies else "")),
            (f"long (>{model.long_threshold})", fmt(model.long_pct, ".1f")
             + (" %" if model.rallies else "")),
        ]
        if model.note:
            rows.append(("", model.note))
        ly = y + 10
        for label, value in rows:
            surface.blit(self.text(label, DIM, self.font), (x + 10, ly))
            surface.blit(self.fit(value, w - 128, TEXT, self.font), (x + 118, ly))
            ly += 27

    def _paint_curve(self, surface, model) -> None:
        pygame = import_pygame()
        x, y, w, h = self.rects.curve
        key = (model.curve_version, int(model.t_s // 60.0))
        if key != self._curve_key:
            self._curve_key = key
            minutes, arl = model.arl_curve()
            surf = pygame.Surface((w - 2, h - 24))
            surf.fill(PANEL)
            pw, ph = surf.get_size()
            top = max(2.0, float(np.nanmax(arl)) if np.isfinite(arl).any() else 2.0)
            top = math.ceil(top)
            left_pad, right_pad, bottom_pad = 30, 10, 16
            gw, gh = pw - left_pad - right_pad, ph - bottom_pad - 4
            for level in range(0, top + 1, max(1, top // 4)):
                gy = 4 + gh - gh * level / top
                pygame.draw.line(surf, EDGE, (left_pad, gy), (pw - right_pad, gy))
                surf.blit(self.text(str(level), DIM, self.small), (8, gy - 6))
            n = CURVE_MINUTES
            first = int(minutes[0]) if len(minutes) else 0
            pts = []
            for m, a in zip(minutes, arl):
                gx = left_pad + gw * (m - first + 0.5) / n
                if a == a:
                    gy = 4 + gh - gh * min(a, top) / top
                    pts.append((gx, gy))
                    pygame.draw.circle(surf, ARL_LINE, (int(gx), int(gy)), 3)
                elif pts and len(pts) > 1:
                    pygame.draw.lines(surf, ARL_LINE, False, pts, 2)
                    pts = []
                else:
                    pts = []
            if len(pts) > 1:
                pygame.draw.lines(surf, ARL_LINE, False, pts, 2)
            label = f"minutes {first + 1}-{first + n}"
            surf.blit(self.text(label, DIM, self.small), (left_pad, ph - 14))
            self._curve_surface = surf
        surface.blit(self._curve_surface, (x + 1, y + 22))

    def _region_rects(self, regions) -> list:
        """Pixel boxes around each region's electrodes."""
        pygame = import_pygame()
        xy, r = self._electrode_xy, self._electrode_r
        half = int(r * 1.45)
        boxes = []
        for region in regions:
            pts = xy[list(region)]
            x0, y0 = pts.min(axis=0) - half
            x1, y1 = pts.max(axis=0) + half
            boxes.append(pygame.Rect(int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
        return boxes

    def _paint_mea(self, surface, model, feedback) -> None:
        pygame = import_pygame()
        x, y, w, h = self.rects.mea
        array = self.array
        xy, r = self._electrode_xy, self._electrode_r
        # Recent spikes per tick of each electrode (the activity trace is an exponential sum).
        rate = model.electrode_rate()
        # Motor regions: tinted by their activity relative to the most active region, so the
        # up/down balance the decoder reads shows at any overall firing rate.
        regions = [(reg, UP) for reg in array.motor_up] + [(reg, DOWN) for reg in array.motor_down]
        if regions:
            levels = [float(rate[list(reg)].mean()) if reg else 0.0 for reg, _ in regions]
            top = max(max(levels), 0.02)
            boxes = self._region_rects([reg for reg, _ in regions])
            for (reg, hue), level, box in zip(regions, levels, boxes):
                k = 0.12 + 0.6 * level / top
                colour = tuple(int(PANEL[i] + (hue[i] - PANEL[i]) * k) for i in range(3))
                pygame.draw.rect(surface, colour, box, border_radius=5)
                pygame.draw.rect(surface, hue, box, width=1, border_radius=5)
        # Electrodes: dark when silent, light blue-white when active (relative to the array).
        ref = max(float(np.percentile(rate, 90)) * 1.5, 0.05)
        level = np.minimum(rate / ref, 1.0)
        colours = (_ELECTRODE_OFF + (_ELECTRODE_ON - _ELECTRODE_OFF) * level[:, None]).astype(
            np.int64)
        for i in range(array.n):
            if xy[i, 0] > -1000:
                pygame.draw.circle(surface, colours[i], xy[i], r)
        # Sensory electrodes: outlined; the stimulated one filled amber, brighter and with a
        # faster beating ring the higher the rate (4 Hz dim .. 40 Hz bright).
        for e in array.sensory:
            pygame.draw.circle(surface, SENSORY, xy[e], r + 2, width=2)
        if feedback == "predictable":
            stimulated, frac = list(range(len(array.sensory))), 1.0
        elif 0 <= model.stim_slot < len(array.sensory):
            stimulated = [model.stim_slot]
            frac = (min(max(model.stim_rate_hz, RATE_MIN_HZ), RATE_MAX_HZ) - RATE_MIN_HZ) / \
                (RATE_MAX_HZ - RATE_MIN_HZ)
        else:
            stimulated, frac = [], 0.0
        fill = tuple(int(lo + (hi - lo) * frac) for lo, hi in zip(STIM_LOW, STIM_FILL))
        for slot in stimulated:
            e = array.sensory[slot]
            pygame.draw.circle(surface, fill, xy[e], r + 2)
            rate_hz = model.stim_rate_hz or 100.0
            phase = (model.t_s * rate_hz / 8.0) % 1.0  # a visible fraction of the pulse rate
            pygame.draw.circle(surface, SENSORY, xy[e], int(r + 4 + 5 * phase), width=2)
        if feedback == "predictable":
            status, colour = "stimulation: predictable feedback", PREDICTABLE
        elif feedback == "unpredictable":
            status, colour = "stimulation: unpredictable feedback", UNPREDICTABLE
        elif model.stim_slot >= 0:
            status = (f"stimulation: slot {model.stim_slot + 1} of {len(array.sensory)}, "
                      f"{model.stim_rate_hz:.0f} Hz")
            colour = SENSORY
        elif array.sensory:
            status, colour = "stimulation: none", DIM
        else:
            status = ""
        if status:
            surface.blit(self.text(status, colour, self.small), (x + 8, y + h - 16))
        if feedback is not None:
            colour = PREDICTABLE if feedback == "predictable" else UNPREDICTABLE
            pygame.draw.rect(surface, colour, (x, y, w, h), width=3, border_radius=4)

    def _paint_raster(self, surface, model) -> None:
        # Drawn as palette indices into a small 8-bit surface (no RGB arrays), then scaled.
        pygame = import_pygame()
        x, y, w, h = self.rects.raster
        raster, events, stim = model.raster_image()
        rows, cols = raster.shape
        strip = max(4, rows // 12)   # event marks on top
        side = max(2, cols // 100)   # row roles on the left
        img = np.empty((cols + side, rows + strip), dtype=np.uint8)
        body = img[side:, strip:]
        np.minimum(raster.T, _PAL_SPIKES_MAX, out=body)
        # The place code: the stimulated sensory electrode's row, tinted while it is stimulated.
        if self._slot_rows is not None:
            t = np.flatnonzero(stim >= 0)
            if len(t):
                r = self._slot_rows[stim[t]]
                quiet = raster[r, t] == 0
                body[t[quiet], r[quiet]] = _PAL_STIM
        # Events, three ticks wide so that one tick shows at any size.
        ev = events.copy()
        ev[1:] = np.maximum(ev[1:], events[:-1])
        ev[:-1] = np.maximum(ev[:-1], events[1:])
        img[side:, :strip] = (_PAL_EVENT + ev)[:, None]
        img[:side, strip:] = self._row_role_index[None, :]
        img[:side, :strip] = 0
        small = self._raster_small
        if small.get_size() != img.shape:
            small = self._raster_small = pygame.Surface(img.shape, depth=8)
            small.set_palette([tuple(int(c) for c in rgb) for rgb in _RASTER_PALETTE])
        pygame.surfarray.blit_array(small, img)
        area = (x + 6, y + 22, w - 12, h - 28)
        surface.blit(pygame.transform.scale(small, area[2:]), area[:2])

    def _paint_status(self, surface, model, feedback, keys: bool = True) -> None:
        x, y, w, h = self.rects.status
        if keys:  # not in headless recordings
            hint = "space pause   . step   +/- speed   q quit"
            surface.blit(self.text(hint, DIM, self.small), (x + 4, y + h - 16))
        if self.array is None:
            return
        self._legend(surface, x + 4, y + 2)
        age = model.t_s - model.last_event_t
        if feedback is not None:
            label, colour = f"{feedback} feedback", (PREDICTABLE if feedback == "predictable"
                                                     else UNPREDICTABLE)
        elif model.last_event == EV_MISS and age < 4.0:
            label, colour = "miss", MISS
        elif model.last_event == EV_HIT and age < 1.0:
            label, colour = "hit", HIT
        else:
            return
        surf = self.text(label, colour, self.big)
        surface.blit(surf, (x + w - 8 - surf.get_width(), y + h - 26))

    def _legend(self, surface, x: int, y: int) -> None:
        """The raster's colour key: spikes per tick, event marks, stimulation."""
        pygame = import_pygame()
        items = [("spikes/10 ms:", None)] + [(str(k) if k < 4 else "4+", tuple(_RASTER_LUT[k]))
                                             for k in (1, 2, 3, 4)]
        items += [("   events:", None), ("hit", HIT), ("miss", MISS), ("serve", _SERVE_MARK)]
        if self.array.sensory:
            items += [("   ", None), ("stimulated", STIM_DIM)]
        lx = x
        for label, colour in items:
            if colour is not None:
                pygame.draw.rect(surface, colour, (lx, y + 3, 10, 10))
                lx += 13
            surf = self.text(label, DIM, self.small)
            surface.blit(surf, (lx, y + 1))
            lx += surf.get_width() + 6


# --------------------------------------------------------------------------------------------
# Recording


def check_record_path(path: str | Path) -> Path:
    """A recording's path: .gif or .mp4, in a folder that exists or can be made."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in RECORD_EXTENSIONS:
        raise ValueError(f"cannot record to {str(path)!r}: the file must end in .gif or .mp4 "
                         f"(got {ext or 'no extension'!r})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the folder of {str(path)!r}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"cannot record to {str(path)!r}: its folder is not writable")
    return path


def _gif_palette() -> np.ndarray:
    """256 colours: a 6x6x6 cube, dark blue-greys for the panels, the viewer's own colours;
    index 255 is kept for 'unchanged' (transparent) pixels."""
    levels = np.array([0, 51, 102, 153, 204, 255])
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    ramp = [(int(12 + 9 * k), int(14 + 10 * k), int(20 + 12 * k)) for k in range(14)]
    own = [BACKGROUND, PANEL, EDGE, DIM, TEXT, LINES, PADDLE, BALL, UP, DOWN, SENSORY,
           PREDICTABLE, UNPREDICTABLE, HIT, ARL_LINE, ELECTRODE, STIM_FILL, STIM_LOW, STIM_DIM,
           (52, 60, 78),
           (150, 215, 255), (150, 40, 30), (230, 90, 30),
           (255, 170, 40), (255, 240, 170), (235, 240, 255)]
    pal = np.concatenate([cube, np.array(ramp), np.array(own)]).astype(np.int64)
    pal = np.unique(pal, axis=0)[:255]
    out = np.zeros((256, 3), dtype=np.uint8)
    out[:len(pal)] = pal
    return out


class GifWriter:
    """A streaming GIF writer: one frame at a time to disk, memory flat.

    Frames are mapped to a fixed palette (no dithering: the picture is flat colours), and each
    frame stores only the box that changed, with unchanged pixels transparent, which keeps a
    20 s recording to a few MB. Frame delays are whole centiseconds (25 fps = 4 cs).
    """

    TRANSPARENT = 255

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float):
        self.path = Path(path)
        self.width, self.height = size
        self.delay_cs = max(2, int(round(100.0 / fps)))
        self.palette = _gif_palette()
        # Nearest palette colour of every 5-bit-per-channel RGB, computed once (32 K entries).
        grid = np.arange(32) * 8 + 4
        rgb = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), -1).reshape(-1, 1, 3)
        pal = self.palette[:255].astype(np.int32)[None, :, :]
        lut = np.empty(len(rgb), dtype=np.uint8)
        for i in range(0, len(rgb), 4096):
            d = ((rgb[i:i + 4096].astype(np.int32) - pal) ** 2).sum(-1)
            lut[i:i + 4096] = d.argmin(axis=1)
        self._lut = lut
        self._prev: np.ndarray | None = None
        self._file = open(self.path, "wb")
        w, h = self.width, self.height
        header = b"GIF89a" + w.to_bytes(2, "little") + h.to_bytes(2, "little")
        header += bytes((0xF7, 0, 0)) + self.palette.tobytes()  # global 256-colour table
        header += b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"     # loop forever
        self._file.write(header)
        self.frames = 0

    def _index(self, frame: np.ndarray) -> np.ndarray:
        f = frame >> 3
        key = (f[..., 0].astype(np.int32) << 10) | (f[..., 1].astype(np.int32) << 5) | f[..., 2]
        return self._lut[key]

    def append(self, frame: np.ndarray) -> None:
        """Add one H x W x 3 uint8 frame."""
        from PIL import GifImagePlugin, Image

        idx = self._index(frame)
        params: dict[str, Any] = {"duration": self.delay_cs * 10}
        offset = (0, 0)
        if self._prev is None:
            sub = idx
        else:
            changed = idx != self._prev
            rows = np.flatnonzero(changed.any(axis=1))
            if len(rows) == 0:
                y0 = y1 = x0 = x1 = 0
                sub = np.full((1, 1), self.TRANSPARENT, dtype=np.uint8)
            else:
                cols = np.flatnonzero(changed.any(axis=0))
                y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                sub = idx[y0:y1, x0:x1].copy()
                sub[~changed[y0:y1, x0:x1]] = self.TRANSPARENT
            offset = (int(x0), int(y0))
            params.update(transparency=self.TRANSPARENT, disposal=1)
        self._prev = idx
        for chunk in GifImagePlugin.getdata(Image.fromarray(sub, mode="L"), offset, **params):
            self._file.write(chunk)
        self.frames += 1

    def close(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.write(b";")
            self._file.close()


class _Mp4Writer:
    def __init__(self, path: Path, fps: float):
        import imageio.v2 as imageio

        self._writer = imageio.get_writer(str(path), format="FFMPEG", mode="I", fps=fps,
                                          codec="libx264", quality=7, pixelformat="yuv420p",
                                          macro_block_size=16, ffmpeg_log_level="error")
        self.frames = 0

    def append(self, frame: np.ndarray) -> None:
        self._writer.append_data(frame)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def open_recorder(path: str | Path, size: tuple[int, int], fps: float):
    """A frame writer for ``path`` (.gif: ``GifWriter``; .mp4: H.264 through imageio-ffmpeg)."""
    path = check_record_path(path)
    if path.suffix.lower() == ".gif":
        return GifWriter(path, size, fps)
    return _Mp4Writer(path, fps)


# --------------------------------------------------------------------------------------------
# Timing, window, keys and recording


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


def surface_to_array(surface) -> np.ndarray:
    """An H x W x 3 uint8 copy of a pygame surface."""
    pygame = import_pygame()
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).swapaxes(0, 1))


def save_png(surface, path: str | Path) -> None:
    import_pygame().image.save(surface, str(path))


# --------------------------------------------------------------------------------------------
# The live viewer


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
