"""What the viewer shows: the electrode array (ArrayLayout), the culture player read by duck
typing (CultureProbe), and the rolling state of the picture (ViewModel, fixed-size buffers only).

The culture panel reads the player by duck typing, so any player with these attributes gets it:
``mea`` or ``culture.mea`` (``positions_um``, ``sensory``, ``motor_layout(name)``), the motor
layout in use (``decoder.layout``, ``motor_layout`` or ``layout``), ``last_counts`` (spikes per
electrode in the last tick), ``encoder`` (current sensory slot and pulse rate) and
``feedback.last_feedback`` (``("predictable" | "unpredictable", t_ms)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dishbrain.logs import EV_BOUNCE, EV_HIT, EV_MISS, EV_NONE, FEEDBACK_CODES, LONG_RALLY_THRESHOLD
from dishbrain.viewer.style import DOWN, EDGE, SENSORY, UP

#: Seconds of activity in the scrolling raster.
RASTER_S = 4.0
#: Time constant of the activity shading of electrodes and motor regions (game ms).
ACTIVITY_TAU_MS = 100.0
#: Game seconds a feedback banner stays up. The predictable feedback lasts 100 ms (Kagan et al.
#: 2022), too short to see at 30 fps, so its banner is held longer; the unpredictable one lasts
#: the 4 s of the pause after a miss.
FEEDBACK_SHOW_S = {"predictable": 0.6, "unpredictable": 4.0}
#: Minutes kept for the ARL-per-minute curve.
CURVE_MINUTES = 20


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
                 long_threshold: int = LONG_RALLY_THRESHOLD):
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
            self._close_rally(t_s)

    def end_session(self, t_s: float) -> None:
        """The session (or the replay) ends at ``t_s``: the rally in flight counts by the rule
        ``analyze`` uses (``dishbrain.metrics.cut_rally_counts``)."""
        from dishbrain.metrics import cut_rally_counts

        if cut_rally_counts(self.rally_hits):
            self._close_rally(t_s)

    def _close_rally(self, t_s: float) -> None:
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
