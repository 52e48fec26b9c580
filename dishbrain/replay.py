"""Session traces, and replays of them and of Cortical Labs' recordings in the live viewer.

Trace format
------------
A session log ``<name>.jsonl`` (``dishbrain/session.py``) keeps only the game's events. A trace
keeps the state of every 10 ms tick, so that a session can be watched again:

- ``<name>.trace.npy``: a standard NumPy ``.npy`` file (format 1.0) holding a 1-D structured
  array, one record per tick; record 0 is the state after the reset (game time 0), record ``k``
  the state after the ``k``-th step (game time ``k * tick_ms``). Fields:

  ==============  =========  ==========================================================
  ``ball_x``      float32    ball position, court units (600 x 600 court)
  ``ball_y``      float32
  ``paddle_y``    float32    paddle centre
  ``in_play``     uint8      1 while a ball is in play
  ``event``       uint8      0 none, 1 serve, 2 hit, 3 miss (``envs.pong.EVENTS`` order)
  ``action``      uint8      the player's action for the step (0 stay, 1 up, 2 down)
  ==============  =========  ==========================================================

  and, for a culture player, also ``feedback`` (uint8: 1 predictable or 2 unpredictable
  feedback began this tick, else 0), ``stim_slot`` (int8: sensory slot stimulated, -1 none),
  ``stim_rate_hz`` (float32) and ``counts`` (uint8[n_electrodes]: spikes per electrode in the
  tick, saturated at 255) - about 80 bytes a tick, 10 MB for a 20-minute session.

  The file is appended in chunks as the session goes (memory flat) and its header's shape is
  rewritten after every chunk, so a trace cut short by a crash still loads, with the ticks
  written so far. Read it with ``np.load(path, mmap_mode="r")`` or ``read_trace``.
- ``<name>.trace.json``: what a replay needs besides the records: ``format``
  (``"dishbrain-trace"``), ``version`` (1), ``tick_ms``, ``env_config``, ``player``,
  ``condition`` and, for a culture, ``array`` (``name``, ``positions_um``, ``sensory``,
  ``motor_up``, ``motor_down``: lists of regions, each a list of electrode indices).

Replays
-------
``replay(path)`` plays back, in the live viewer and at any speed:

- a trace (``.trace.npy``, or the ``.jsonl`` log it sits beside): everything as it was seen live;
- a session log without a trace: the event timeline and the live rally metrics;
- Cortical Labs' SpikeStream recording (``events.txt``, ``spikes.bin``, ``gen3b.cfg``; see
  ``shared/data/spikestream-pilot/README.md``): ball and paddle positions were not recorded, so
  the court shows the event timeline (hits, misses, rally counts, live metrics), and the array
  panel the real culture's spikes: the raster and an activity map of the recording channels at
  their positions on the chip (from gen3b.cfg; by channel index if it is absent). ``spikes.bin``
  is memory-mapped and binned tick by tick, never loaded whole.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import gymnasium as gym

from agents.base import SessionStopped

__all__ = [
    "TRACE_FORMAT", "TraceRecorder", "trace_wrapper", "trace_paths", "read_trace",
    "ReplaySource", "TraceSource", "EventLogSource", "SpikeStreamSource", "open_source", "replay",
    "SPIKE_RECORD", "EVENTS_FRAME_RATE_HZ",
]

TRACE_FORMAT = "dishbrain-trace"
TRACE_VERSION = 1
_EVENTS = ("none", "serve", "hit", "miss")
_EVENT_CODE = {name: i for i, name in enumerate(_EVENTS)}
_FEEDBACK_CODE = {"predictable": 1, "unpredictable": 2}
#: Bytes reserved for a trace's .npy header (the shape is rewritten in place as ticks are added).
_HEADER_BYTES = 1024
_CHUNK_TICKS = 1024

#: One record of Cortical Labs' spikes.bin (SpikeStream): frame at 20 kHz, channel, amplitude.
SPIKE_RECORD = np.dtype([("frame", "<u8"), ("channel", "<u4"), ("amplitude", "<f4")])
EVENTS_FRAME_RATE_HZ = 20_000
#: The MaxOne chip's recording channels.
SPIKESTREAM_CHANNELS = 1024


def trace_paths(path: str | Path) -> tuple[Path, Path]:
    """(records, metadata) paths of the trace that goes with a session log or trace path."""
    path = Path(path)
    name = path.name
    for suffix in (".trace.npy", ".trace.json", ".jsonl", ".ndjson"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return path.with_name(name + ".trace.npy"), path.with_name(name + ".trace.json")


# --------------------------------------------------------------------------------------------
# Writing


def _npy_header(dtype: np.dtype, n: int) -> bytes:
    """A .npy 1.0 header for ``n`` records of ``dtype``, padded to exactly _HEADER_BYTES."""
    from numpy.lib import format as npy

    text = "{'descr': %r, 'fortran_order': False, 'shape': (%d,), }" % (
        npy.dtype_to_descr(dtype), n)
    room = _HEADER_BYTES - 10 - 1  # magic (6) + version (2) + length (2) ... + newline
    if len(text) > room:
        raise ValueError(f"trace record type too large for the header ({len(text)} > {room})")
    text = text.ljust(room) + "\n"
    return b"\x93NUMPY\x01\x00" + (len(text)).to_bytes(2, "little") + text.encode("latin1")


class TraceRecorder(gym.Wrapper):
    """Writes a per-tick trace of the session (see the module docs for the format).

    ``agent`` is read by duck typing (``dishbrain.viewer.CultureProbe``): a culture player's
    spikes per electrode, stimulation and feedback are added to the records.
    """

    def __init__(self, env: gym.Env, path: str | Path, agent: Any = None,
                 chunk_ticks: int = _CHUNK_TICKS):
        super().__init__(env)
        self.path, self.meta_path = trace_paths(path)
        self.agent = agent
        self.chunk_ticks = int(chunk_ticks)
        self._file = None
        self._dtype: np.dtype | None = None
        self._rows: list[tuple] = []
        self._counts: list[np.ndarray | None] = []
        self.ticks = 0
        self._probe = None
        self._culture = False
        self._last_feedback = None
        self._action = 0

    # -- set up ----------------------------------------------------------------------------
    def _open(self) -> None:
        from dishbrain.viewer import CultureProbe

        self.close_trace()
        probe = CultureProbe(self.agent) if self.agent is not None else None
        layout = probe.layout() if probe is not None else None
        counts = probe.counts() if probe is not None else None
        self._culture = layout is not None
        self._probe = probe
        fields = [("ball_x", "<f4"), ("ball_y", "<f4"), ("paddle_y", "<f4"), ("in_play", "u1"),
                  ("event", "u1"), ("action", "u1")]
        if self._culture:
            n = len(counts) if counts is not None else layout.n
            fields += [("feedback", "u1"), ("stim_slot", "i1"), ("stim_rate_hz", "<f4"),
                       ("counts", "u1", (n,))]
        dtype = np.dtype(fields)
        self._dtype = dtype
        self._rows = []
        self._counts = []
        self.ticks = 0
        self._last_feedback = probe.feedback() if probe is not None else None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        base = self.env.unwrapped
        config = getattr(base, "config", None)
        meta: dict[str, Any] = {
            "format": TRACE_FORMAT, "version": TRACE_VERSION,
            "tick_ms": float(config.tick_ms) if config is not None else 10.0,
            "env_config": dataclasses.asdict(config) if config is not None else {},
            "player": getattr(self.agent, "name", None),
            "condition": probe.condition() if probe is not None else None,
        }
        if layout is not None:
            meta["array"] = {"name": layout.name, "positions_um": layout.positions_um.tolist(),
                             "sensory": list(layout.sensory),
                             "motor_up": [list(r) for r in layout.motor_up],
                             "motor_down": [list(r) for r in layout.motor_down]}
        self.meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        self._file = open(self.path, "w+b")
        self._file.write(_npy_header(dtype, 0))

    # -- per tick --------------------------------------------------------------------------
    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._open()
        self._action = 0
        self._record(info)
        return obs, info

    def step(self, action):
        out = self.env.step(action)
        self._action = action
        self._record(out[4])
        return out

    def _record(self, info: dict) -> None:
        # Rows are gathered as tuples (cheap) and packed into records a chunk at a time.
        row = (info["ball_x"], info["ball_y"], info["paddle_y"], info["in_play"],
               _EVENT_CODE.get(info["event"], 0), self._action)
        if self._culture:
            probe = self._probe
            fb = probe.feedback()
            code = 0
            if fb is not None and fb != self._last_feedback:
                code = _FEEDBACK_CODE.get(fb[0], 0)
            self._last_feedback = fb
            slot, rate = probe.stim()
            row += (code, slot, rate)
            counts = probe.counts()
            self._counts.append(None if counts is None else np.array(counts))
        self._rows.append(row)
        if len(self._rows) >= self.chunk_ticks:
            self.flush()

    def flush(self) -> None:
        """Append the gathered ticks to the file and update the header's count."""
        if self._file is None or not self._rows:
            return
        n = len(self._rows)
        buf = np.zeros(n, dtype=self._dtype)
        cols = list(zip(*self._rows))
        for name, values in zip(self._dtype.names, cols):
            buf[name] = values
        if self._culture:
            width = self._dtype["counts"].shape[0]
            counts = buf["counts"]
            for i, c in enumerate(self._counts):
                if c is not None and len(c) == width:
                    np.minimum(c, 255, out=counts[i], casting="unsafe")
        f = self._file
        f.seek(0, 2)
        f.write(buf.tobytes())
        self.ticks += n
        self._rows.clear()
        self._counts.clear()
        f.seek(0)
        f.write(_npy_header(self._dtype, self.ticks))
        f.flush()

    def close_trace(self) -> None:
        if self._file is not None:
            self.flush()
            self._file.close()
            self._file = None

    def close(self):
        self.close_trace()
        super().close()


def trace_wrapper(path: str | Path, agent: Any = None) -> Callable[[gym.Env], TraceRecorder]:
    """A wrapper factory for ``play_session(..., wrappers=[...])``: env -> TraceRecorder.

    ``path`` is the session log's path (or the trace's own); the trace goes beside it.
    """
    records, _ = trace_paths(path)
    records.parent.mkdir(parents=True, exist_ok=True)

    def wrap(env: gym.Env) -> TraceRecorder:
        return TraceRecorder(env, path, agent)

    return wrap


def read_trace(path: str | Path) -> tuple[dict, np.ndarray]:
    """(metadata, records) of a trace; records are memory-mapped (read-only)."""
    records_path, meta_path = trace_paths(path)
    if not records_path.exists():
        raise FileNotFoundError(f"{records_path}: no such trace")
    meta: dict = {}
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path}: not valid JSON ({exc.msg})") from None
        if meta.get("format") != TRACE_FORMAT:
            raise ValueError(f"{meta_path}: not a {TRACE_FORMAT} metadata file")
    try:
        records = np.load(records_path, mmap_mode="r")
    except ValueError as exc:
        raise ValueError(f"{records_path}: not a readable trace ({exc})") from None
    if records.dtype.names is None or "ball_x" not in records.dtype.names:
        raise ValueError(f"{records_path}: not a {TRACE_FORMAT} file (no ball_x field)")
    return meta, records


# --------------------------------------------------------------------------------------------
# Sources: what a replay steps through, tick by tick


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
        from dishbrain.viewer import ArrayLayout

        self.meta, self.records = read_trace(path)
        self.path = trace_paths(path)[0]
        self.tick_s = float(self.meta.get("tick_ms", 10.0)) / 1000.0
        self.duration_s = max(0, len(self.records) - 1) * self.tick_s
        self.config = _pong_config(self.meta.get("env_config"))
        self.player = self.meta.get("player") or "player"
        self.condition = self.meta.get("condition")
        self.label = self.path.name[: -len(".trace.npy")]
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
                    tick.feedback = {1: "predictable", 2: "unpredictable"}.get(fb)
                    tick.counts = r["counts"]
                    tick.stim_slot = int(r["stim_slot"])
                    tick.stim_rate_hz = float(r["stim_rate_hz"])
                yield tick


class EventLogSource(ReplaySource):
    """Events only: our session log without a trace, or a Cortical Labs events.txt (with the
    spikes of spikes.bin when given: see SpikeStreamSource)."""

    def __init__(self, path: str | Path):
        path = Path(path)
        self.path = path
        self.label = path.parent.name if path.name == "events.txt" else path.stem
        self.events: list[tuple[float, int, str | None]] = []  # (t_s, code, note)
        if path.name == "events.txt" or not path.name.endswith((".jsonl", ".ndjson")):
            self._read_events_txt(path)
        else:
            self._read_jsonl(path)
        self.events.sort(key=lambda e: e[0])
        if self.events:
            self.duration_s = max(self.duration_s, self.events[-1][0])

    def _read_jsonl(self, path: Path) -> None:
        header: dict = {}
        lines = path.read_text(encoding="utf-8").splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                if i == len(lines) - 1:
                    break  # a crash mid-write
                raise ValueError(f"{path}:{i + 1}: not valid JSON") from None
            kind = rec.get("kind")
            if kind == "header":
                header = rec
            elif kind in ("serve", "hit", "miss"):
                self.events.append((float(rec["t"]), _EVENT_CODE[kind], None))
            elif kind == "end":
                self.duration_s = float(rec.get("t", 0.0))
        self.tick_s = float(header.get("tick_ms", 10.0)) / 1000.0
        self.config = _pong_config(header.get("env_config"))
        self.player = header.get("agent") or "player"
        self.condition = header.get("condition")

    def _read_events_txt(self, path: Path) -> None:
        from dishbrain.viewer import EV_BOUNCE

        line_re = re.compile(r"^\s*(\d+)\s*:\s*(.*?)\s*$")
        layout_re = re.compile(r"^motor layout\s*:\s*(-?\d+)$")
        codes = {"ball return": _EVENT_CODE["hit"], "ball missed": _EVENT_CODE["miss"],
                 "ball bounce": EV_BOUNCE}
        raw: list[tuple[int, str]] = []
        info: dict[str, str] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line.startswith("info:"):
                key, _, value = line[5:].partition(":")
                info[key.strip()] = value.strip()
                continue
            m = line_re.match(line)
            if m and m.group(2):
                raw.append((int(m.group(1)), m.group(2)))
        if not raw:
            raise ValueError(f"{path}: no '<frame>: <event>' lines")
        self.begin_frame = next((f for f, e in raw if e == "game begin"), raw[0][0])
        for frame, event in raw:
            t = (frame - self.begin_frame) / EVENTS_FRAME_RATE_HZ
            if t < 0:
                continue
            if event in codes:
                self.events.append((t, codes[event], None))
            else:
                m = layout_re.match(event)
                if m:
                    self.events.append((t, 0, f"motor layout {m.group(1)}"))
        self.tick_s = 0.01
        self.config = _pong_config(None)
        chip = info.get("recording chip id")
        self.player = f"real culture (chip {chip})" if chip else "real culture"
        self.condition = info.get("experiment tag")

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


def read_channel_positions(cfg_path: str | Path, n_channels: int = SPIKESTREAM_CHANNELS):
    """Channel positions (um) from a MaxOne config's first line, ``ch(el)x/y;...``.

    Channels the config does not route get NaN.
    """
    pos = np.full((n_channels, 2), np.nan)
    first = Path(cfg_path).read_text(encoding="latin1").split("\n", 1)[0]
    for item in first.split(";"):
        m = re.match(r"^\s*(\d+)\((\d+)\)([-\d.]+)/([-\d.]+)\s*$", item)
        if m and int(m.group(1)) < n_channels:
            pos[int(m.group(1))] = (float(m.group(3)), float(m.group(4)))
    return pos


class SpikeStreamSource(EventLogSource):
    """Cortical Labs' SpikeStream recording: events.txt plus spikes.bin (memory-mapped)."""

    def __init__(self, folder: str | Path):
        from dishbrain.viewer import ArrayLayout

        folder = Path(folder)
        super().__init__(folder / "events.txt")
        spikes = folder / "spikes.bin"
        self.spikes = None
        if spikes.exists() and spikes.stat().st_size >= SPIKE_RECORD.itemsize:
            n = spikes.stat().st_size // SPIKE_RECORD.itemsize
            self.spikes = np.memmap(spikes, dtype=SPIKE_RECORD, mode="r", shape=(n,))
        cfg = folder / "gen3b.cfg"
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
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {str(path)!r}")
    if path.is_dir():
        if (path / "events.txt").exists():
            return SpikeStreamSource(path)
        traces = sorted(path.glob("*.trace.npy"))
        if len(traces) == 1:
            return TraceSource(traces[0])
        if len(traces) > 1:
            raise ValueError(f"{path}: {len(traces)} traces in this folder; name one of them")
        logs = sorted(path.glob("*.jsonl"))
        if len(logs) == 1:
            return EventLogSource(logs[0])
        raise ValueError(f"{path}: no trace, session log or events.txt to replay"
                         if not logs else f"{path}: {len(logs)} session logs here; name one")
    if path.name == "events.txt":
        if (path.parent / "spikes.bin").exists():
            return SpikeStreamSource(path.parent)
        return EventLogSource(path)
    if path.name.endswith(".trace.npy") or path.name.endswith(".trace.json"):
        return TraceSource(path)
    if path.suffix in (".jsonl", ".ndjson"):
        records, _ = trace_paths(path)
        if records.exists():
            return TraceSource(records)
        return EventLogSource(path)
    raise ValueError(f"{path}: cannot replay this file; expected a session log (.jsonl), a trace "
                     "(.trace.npy) or a Cortical Labs events.txt / recording folder")


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
    from dishbrain import viewer as v

    source = path_or_source if isinstance(path_or_source, ReplaySource) \
        else open_source(path_or_source)
    speed = v.parse_speed(speed)
    if record is not None:
        record = v.check_record_path(record)
    if png is not None:
        show, record = False, None
        if Path(png).suffix.lower() != ".png":
            raise ValueError(f"cannot save {str(png)!r}: a screenshot must end in .png")
    elif not show and record is None:
        raise ValueError("nothing to do: neither show nor record")
    model = v.ViewModel(source.tick_s, source.array, player=source.player,
                        condition=source.condition, source=source.label)
    painter = v.Painter(source.config, source.array, title="DishBrain replay")
    presenter = v.Presenter(painter, show=show, record=record, speed=speed,
                            fps=fps or v.FPS, record_fps=record_fps,
                            caption=f"DishBrain replay: {source.label}")
    start_s = max(0.0, float(start_min) * 60.0)
    stop_s = start_s + max_s if max_s is not None else math.inf
    stopped = False
    ticks = 0
    has_array = source.array is not None
    # Skipping ahead: activity matters only for the raster's window before the start.
    activity_from_s = max(0.0, start_s - v.RASTER_S - source.tick_s)
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
    if png is not None:
        Path(png).parent.mkdir(parents=True, exist_ok=True)
        v.save_png(presenter.draw_now(model), png)
    return {"label": source.label, "ticks": ticks, "t_s": model.t_s, "rallies": model.rallies,
            "hits": model.hits, "arl": model.arl, "stopped": stopped,
            "frames_recorded": presenter.frames_recorded}
