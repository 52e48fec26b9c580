"""Replays: a recorded session played back in the live viewer, at any speed, or one picture of it.

``replay(path)`` plays back, in the viewer and at any speed:

- a trace (``.trace.npy``, or the session log it sits beside): everything as it was seen live;
- a session log without a trace (``.jsonl`` or ``.jsonl.gz``): the event timeline and the live
  rally metrics;
- Cortical Labs' SpikeStream recording (``events.txt``, ``spikes.bin``, ``gen3b.cfg``; see
  ``shared/data/spikestream-pilot/README.md``): ball and paddle positions were not recorded, so
  the court shows the event timeline (hits, misses, rally counts, live metrics), and the array
  panel the real culture's spikes: the raster and an activity map of the recording channels at
  their positions on the chip (from gen3b.cfg; by channel index if it is absent). ``spikes.bin``
  is memory-mapped and binned tick by tick, never loaded whole.

Every file is read through ``dishbrain.logs`` (formats and constants).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dishbrain.logs import (
    CHIP_CONFIG_FILENAME,
    CL_BOUNCE,
    CL_HIT,
    CL_MISS,
    EV_BOUNCE,
    EVENT_CODES,
    EVENTS_FILENAME,
    EVENTS_FRAME_RATE_HZ,
    FEEDBACK_NAMES,
    SPIKES_FILENAME,
    SPIKESTREAM_CHANNELS,
    is_session_log,
    log_stem,
    motor_layout_of,
    open_spikes,
    read_channel_positions,
    read_events_txt,
    read_session_log,
    read_trace,
    resolve_log,
    trace_paths,
)
from dishbrain.player import SessionStopped
from dishbrain.viewer.live import FPS, Presenter, parse_speed
from dishbrain.viewer.model import RASTER_S, ArrayLayout, ViewModel
from dishbrain.viewer.painter import Painter, save_png
from dishbrain.viewer.recording import check_record_path

__all__ = ["Tick", "ReplaySource", "TraceSource", "EventLogSource", "SpikeStreamSource",
           "open_source", "replay"]


@dataclass
class Tick:
    """One tick of a replay: game time, court state (None: not recorded), events, activity."""

    t_s: float
    ball: tuple[float, float] | None = None
    paddle_y: float | None = None
    events: tuple[int, ...] = ()
    feedback: str | None = None
    counts: np.ndarray | None = None
    stim_slot: int = -1
    stim_rate_hz: float = 0.0
    note: str | None = None


class ReplaySource:
    """A recorded session, tick by tick. Subclasses set the attributes and implement ticks()."""

    tick_s: float = 0.01
    duration_s: float = 0.0
    config: Any = None
    array: Any = None  # dishbrain.viewer.ArrayLayout or None
    player: str = ""
    condition: str | None = None
    label: str = ""

    def ticks(self, activity_from_s: float = 0.0) -> Iterator[Tick]:
        """The ticks in order; activity (spike counts) may be left out before
        ``activity_from_s`` (a replay that skips ahead needs only the events there)."""
        raise NotImplementedError


def _pong_config(values: dict | None):
    from envs.pong import PongConfig

    if not values:
        return PongConfig()
    known = {f.name for f in dataclasses.fields(PongConfig)}
    return PongConfig(**{k: v for k, v in values.items() if k in known})


class TraceSource(ReplaySource):
    """A trace written by TraceRecorder."""

    def __init__(self, path: str | Path):
        self.meta, self.records = read_trace(path)
        self.path = trace_paths(path)[0]
        self.tick_s = float(self.meta.get("tick_ms", 10.0)) / 1000.0
        self.duration_s = max(0, len(self.records) - 1) * self.tick_s
        self.config = _pong_config(self.meta.get("env_config"))
        self.player = self.meta.get("player") or "player"
        self.condition = self.meta.get("condition")
        self.label = log_stem(self.path)
        names = self.records.dtype.names
        self._culture = "counts" in names
        array = self.meta.get("array")
        if self._culture:
            n = self.records.dtype["counts"].shape[0]
            if array:
                self.array = ArrayLayout(array.get("name", "MEA"), np.array(array["positions_um"]),
                                         tuple(array.get("sensory", ())),
                                         tuple(array.get("motor_up", ())),
                                         tuple(array.get("motor_down", ())))
            else:
                side = int(math.ceil(math.sqrt(n)))
                pos = np.array([(k % side, k // side) for k in range(n)], dtype=float)
                self.array = ArrayLayout(f"{n} electrodes", pos)

    def ticks(self, activity_from_s: float = 0.0) -> Iterator[Tick]:
        recs = self.records
        dt = self.tick_s
        first_activity = int(math.floor(activity_from_s / dt + 1e-9))
        for start in range(0, len(recs), 4096):
            block = np.array(recs[start:start + 4096])  # one chunk in memory at a time
            for j in range(len(block)):
                r = block[j]
                ev = int(r["event"])
                tick = Tick((start + j) * dt,
                            (float(r["ball_x"]), float(r["ball_y"])) if r["in_play"] else None,
                            float(r["paddle_y"]), (ev,) if ev else ())
                if self._culture and start + j >= first_activity:
                    fb = int(r["feedback"])
                    tick.feedback = FEEDBACK_NAMES.get(fb)
                    tick.counts = r["counts"]
                    tick.stim_slot = int(r["stim_slot"])
                    tick.stim_rate_hz = float(r["stim_rate_hz"])
                yield tick


class EventLogSource(ReplaySource):
    """Events only: our session log without a trace, or a Cortical Labs events.txt (with the
    spikes of spikes.bin when given: see SpikeStreamSource)."""

    def __init__(self, path: str | Path):
        path = resolve_log(path)
        self.path = path
        self.label = path.parent.name if path.name == EVENTS_FILENAME else log_stem(path)
        self.events: list[tuple[float, int, str | None]] = []  # (t_s, code, note)
        if path.name == EVENTS_FILENAME or not is_session_log(path):
            self._read_events_txt(path)
        else:
            self._read_session_log(path)
        self.events.sort(key=lambda e: e[0])
        if self.events:
            self.duration_s = max(self.duration_s, self.events[-1][0])

    def _read_session_log(self, path: Path) -> None:
        log = read_session_log(path)
        self.events += [(t, EVENT_CODES[kind], None) for kind, t in log.events]
        if log.end is not None:
            self.duration_s = float(log.end["t"])
        header = log.header
        self.tick_s = float(header.get("tick_ms", 10.0)) / 1000.0
        self.config = _pong_config(header.get("env_config"))
        self.player = header.get("agent") or "player"
        self.condition = header.get("condition")

    def _read_events_txt(self, path: Path) -> None:
        codes = {CL_HIT: EVENT_CODES["hit"], CL_MISS: EVENT_CODES["miss"], CL_BOUNCE: EV_BOUNCE}
        rec = read_events_txt(path)
        if not rec.events:
            raise ValueError(f"{path}: no '<frame>: <event>' lines")
        self.begin_frame = rec.begin_frame
        for frame, event in rec.events:
            t = rec.seconds(frame)
            if t < 0:
                continue
            if event in codes:
                self.events.append((t, codes[event], None))
            else:
                layout = motor_layout_of(event)
                if layout is not None:
                    self.events.append((t, 0, f"motor layout {layout}"))
        self.tick_s = 0.01
        self.config = _pong_config(None)
        chip = rec.header.get("recording chip id")
        self.player = f"real culture (chip {chip})" if chip else "real culture"
        self.condition = rec.header.get("experiment tag")

    def _activity(self, k: int) -> np.ndarray | None:
        return None

    def ticks(self, activity_from_s: float = 0.0) -> Iterator[Tick]:
        dt = self.tick_s
        n = int(math.floor(self.duration_s / dt + 1e-9)) + 1
        first_activity = int(math.floor(activity_from_s / dt + 1e-9))
        events = self.events
        j = 0
        for k in range(n):
            t = k * dt
            codes: list[int] = []
            note = None
            while j < len(events) and events[j][0] < t + dt / 2:
                _, code, text = events[j]
                if code:
                    codes.append(code)
                if text:
                    note = text
                j += 1
            counts = self._activity(k) if k >= first_activity else None
            yield Tick(t, None, None, tuple(codes), counts=counts, note=note)


class SpikeStreamSource(EventLogSource):
    """Cortical Labs' SpikeStream recording: events.txt plus spikes.bin (memory-mapped)."""

    def __init__(self, folder: str | Path):
        folder = Path(folder)
        super().__init__(folder / EVENTS_FILENAME)
        self.spikes = open_spikes(folder / SPIKES_FILENAME)
        cfg = folder / CHIP_CONFIG_FILENAME
        n_ch = SPIKESTREAM_CHANNELS
        if cfg.exists():
            pos = read_channel_positions(cfg, n_ch)
            name = f"MaxOne chip, {int(np.isfinite(pos[:, 0]).sum())} channels"
        else:
            pos = np.array([(k % 32, k // 32) for k in range(n_ch)], dtype=float)
            name = f"{n_ch} channels (by index)"
        if self.spikes is not None:
            # Spikes can run a little past the last event.
            last = int(self.spikes[-1]["frame"])
            self.duration_s = max(self.duration_s,
                                  (last - self.begin_frame) / EVENTS_FRAME_RATE_HZ)
            self.array = ArrayLayout(name, pos, raster_rows=128)
        self._frames_per_tick = int(round(self.tick_s * EVENTS_FRAME_RATE_HZ))
        self._block: tuple[int, np.ndarray] | None = None

    def _activity(self, k: int) -> np.ndarray | None:
        if self.spikes is None:
            return None
        # Bin a block of ticks at a time: searchsorted on the memory map, then bincount.
        block_ticks = 512
        b = k // block_ticks
        if self._block is None or self._block[0] != b:
            frames = self.spikes["frame"]
            f0 = self.begin_frame + b * block_ticks * self._frames_per_tick
            edges = f0 + np.arange(block_ticks + 1, dtype=np.uint64) * self._frames_per_tick
            idx = np.searchsorted(frames, edges)
            channels = np.asarray(self.spikes["channel"][idx[0]:idx[-1]], dtype=np.int64)
            ticks = np.repeat(np.arange(block_ticks), np.diff(idx))
            counts = np.zeros((block_ticks, SPIKESTREAM_CHANNELS), dtype=np.uint8)
            ok = channels < SPIKESTREAM_CHANNELS
            np.add.at(counts, (ticks[ok], channels[ok]), 1)
            self._block = (b, counts)
        return self._block[1][k % block_ticks]


def open_source(path: str | Path) -> ReplaySource:
    """The replay source for ``path``: a trace, a session log, an events.txt, or a folder with
    one of them (a SpikeStream folder: events.txt and spikes.bin)."""
    path = resolve_log(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {str(path)!r}")
    if path.is_dir():
        if (path / EVENTS_FILENAME).exists():
            return SpikeStreamSource(path)
        traces = sorted(path.glob("*.trace.npy"))
        if len(traces) == 1:
            return TraceSource(traces[0])
        if len(traces) > 1:
            raise ValueError(f"{path}: {len(traces)} traces in this folder; name one of them")
        logs = sorted(p for p in path.iterdir() if p.is_file() and is_session_log(p))
        if len(logs) == 1:
            return EventLogSource(logs[0])
        raise ValueError(f"{path}: no trace, session log or events.txt to replay"
                         if not logs else f"{path}: {len(logs)} session logs here; name one")
    if path.name == EVENTS_FILENAME:
        if (path.parent / SPIKES_FILENAME).exists():
            return SpikeStreamSource(path.parent)
        return EventLogSource(path)
    if path.name.endswith((".trace.npy", ".trace.json")):
        return TraceSource(path)
    if is_session_log(path):
        records, _ = trace_paths(path)
        if records.exists():
            return TraceSource(records)
        return EventLogSource(path)
    raise ValueError(f"{path}: cannot replay this file; expected a session log (.jsonl or "
                     ".jsonl.gz), a trace (.trace.npy) or a Cortical Labs events.txt / "
                     "recording folder")


# --------------------------------------------------------------------------------------------
# The replay loop


def replay(path_or_source, *, speed: float | str = 1.0, show: bool = True,
           record: str | Path | None = None, start_min: float = 0.0,
           fps: float | None = None, record_fps: float | None = None,
           max_s: float | None = None, png: str | Path | None = None) -> dict:
    """Play a recorded session back in the viewer; returns a summary dict.

    ``start_min`` skips ahead (the metrics still count the skipped part); ``max_s`` stops after
    that much game time from the start. ``q`` / Escape / closing the window stops it early.
    ``png``: instead of playing, save the picture at ``start_min`` (or at the end) to a PNG.
    """
    source = path_or_source if isinstance(path_or_source, ReplaySource) \
        else open_source(path_or_source)
    speed = parse_speed(speed)
    if record is not None:
        record = check_record_path(record)
    if png is not None:
        show, record = False, None
        if Path(png).suffix.lower() != ".png":
            raise ValueError(f"cannot save {str(png)!r}: a screenshot must end in .png")
    elif not show and record is None:
        raise ValueError("nothing to do: neither show nor record")
    model = ViewModel(source.tick_s, source.array, player=source.player,
                      condition=source.condition, source=source.label)
    painter = Painter(source.config, source.array, title="DishBrain replay")
    presenter = Presenter(painter, show=show, record=record, speed=speed,
                          fps=fps or FPS, record_fps=record_fps,
                          caption=f"DishBrain replay: {source.label}")
    start_s = max(0.0, float(start_min) * 60.0)
    stop_s = start_s + max_s if max_s is not None else math.inf
    stopped = False
    ticks = 0
    has_array = source.array is not None
    # Skipping ahead: activity matters only for the raster's window before the start.
    activity_from_s = max(0.0, start_s - RASTER_S - source.tick_s)
    try:
        for tick in source.ticks(activity_from_s):
            if tick.t_s > stop_s + 1e-9:
                break
            model.t_s = tick.t_s
            for code in tick.events:
                model.on_event(code, tick.t_s)
            if tick.feedback:
                model.on_feedback(tick.feedback, tick.t_s)
            if tick.note:
                model.note = tick.note
            if has_array and tick.t_s >= activity_from_s:
                model.push_activity(tick.counts, tick.stim_slot, tick.stim_rate_hz)
            ticks += 1
            model.court = (tick.ball, tick.paddle_y)
            if tick.t_s + 1e-9 < start_s:
                continue
            if png is not None:
                break
            presenter.tick(model)
    except SessionStopped:
        stopped = True
    finally:
        presenter.close()
    model.end_session(model.t_s)  # the rally in flight: the rule analyze uses
    if png is not None:
        Path(png).parent.mkdir(parents=True, exist_ok=True)
        save_png(presenter.draw_now(model), png)
    return {"label": source.label, "ticks": ticks, "t_s": model.t_s, "rallies": model.rallies,
            "hits": model.hits, "arl": model.arl, "stopped": stopped,
            "frames_recorded": presenter.frames_recorded}
