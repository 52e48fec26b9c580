"""Every log format the project reads or writes, in one place: writers, readers and constants.

Three formats; ``metrics``, ``viewer`` (live, traces, replays), ``report`` and ``session`` read and
write them only through this module.

Session log (ours), ``<name>.jsonl``, or ``<name>.jsonl.gz`` once compressed (every reader takes
both; ``resolve_log`` finds whichever is on disk). One JSON object per line, flushed as written,
so a crash loses at most the line being written (readers skip a cut last line):

- ``{"kind": "header", "agent", "seed", "condition", "tick_ms", "steps_planned", "env_config",
  "agent_config", "versions", "started"}``;
- ``{"kind": "serve" | "hit" | "miss", "t": game time (s), "step", "rally", "hits"}`` where
  ``rally`` is the 0-based index of the current rally and ``hits`` its hits so far;
- ``{"kind": "end", "t", "step", "rallies", "hits", "misses", "wall_s", "stopped"}`` when the
  session ends (cleanly, or stopped by the user: ``log_finished`` tells a finished session).

Trace, ``<name>.trace.npy`` + ``<name>.trace.json`` beside the session log: the state of every
tick, so that a session can be watched again (``dishbrain.viewer.trace.TraceRecorder`` fills it).

- ``.trace.npy``: a standard NumPy ``.npy`` file (format 1.0) holding a 1-D structured array,
  one record per tick; record 0 is the state after the reset (game time 0), record ``k`` the
  state after the ``k``-th step. Fields (``trace_dtype``): ``ball_x``, ``ball_y``, ``paddle_y``
  (float32, court units), ``in_play`` (uint8), ``event`` (uint8, ``EVENT_CODES``), ``action``
  (uint8: 0 stay, 1 up, 2 down) and, for a culture player, ``feedback`` (uint8: 1 predictable or
  2 unpredictable feedback began this tick, else 0), ``stim_slot`` (int8, -1 none),
  ``stim_rate_hz`` (float32) and ``counts`` (uint8[n_electrodes], spikes per electrode in the
  tick, saturated at 255): about 80 bytes a tick, 10 MB for 20 minutes. It is appended in chunks
  (memory flat) and its header's shape rewritten after each, in place (NumPy's header leaves
  room for the growing axis), so a trace cut short by a crash still loads.
- ``.trace.json``: ``format`` (``"dishbrain-trace"``), ``version`` (1), ``tick_ms``,
  ``env_config``, ``player``, ``condition`` and, for a culture, ``array`` (``name``,
  ``positions_um``, ``sensory``, ``motor_up``, ``motor_down``: regions as electrode lists).

Cortical Labs' SpikeStream recording (``shared/data/spikestream-pilot/README.md``):

- ``events.txt``: ``info: <key>: <value>`` header lines, then ``<frame>: <event>`` lines with
  frames at 20 kHz; ``game begin`` starts the clock, ``ball return`` is a hit, ``ball missed`` a
  miss, ``ball bounce`` a wall bounce, ``motor layout: N`` the layout used next;
- ``spikes.bin``: packed records (``SPIKE_RECORD``: frame, channel, amplitude), memory-mapped;
- ``gen3b.cfg``: the MaxOne chip's routing; its first line gives the channel positions.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import json
import math
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.lib import format as npy_format

from envs.pong import EVENTS

__all__ = [
    "EVENTS_FRAME_RATE_HZ", "EVENT_NAMES", "EVENT_CODES", "EV_NONE", "EV_SERVE", "EV_HIT",
    "EV_MISS", "EV_BOUNCE", "FEEDBACK_CODES", "FEEDBACK_NAMES", "DEFAULT_WINDOWS_MIN",
    "LONG_RALLY_THRESHOLD", "SESSION_LOG_SUFFIXES", "EVENTS_FILENAME", "SPIKES_FILENAME",
    "CHIP_CONFIG_FILENAME", "SPIKE_RECORD", "SPIKESTREAM_CHANNELS", "TRACE_FORMAT",
    "TRACE_VERSION", "CL_GAME_BEGIN", "CL_HIT", "CL_MISS", "CL_BOUNCE",
    "is_session_log", "resolve_log", "log_stem", "read_jsonl", "read_log_lines", "log_format",
    "SessionEvents", "parse_session_log", "read_session_log", "log_finished", "SessionLog",
    "EventsTxt", "parse_events_txt", "read_events_txt", "motor_layout_of", "open_spikes",
    "read_channel_positions",
    "trace_paths", "trace_dtype", "trace_meta", "TraceWriter", "read_trace",
]

# --------------------------------------------------------------------------------------------
# Constants (each defined here only)

#: Sample rate of the frame counter in Cortical Labs' events.txt and spikes.bin (MaxOne HD-MEA,
#: 20 kHz).
EVENTS_FRAME_RATE_HZ = 20_000
#: Game events in the order of ``envs.pong.EVENTS``; their codes are the trace's ``event`` field.
EVENT_NAMES: tuple[str, ...] = tuple(EVENTS)
EVENT_CODES = {name: i for i, name in enumerate(EVENT_NAMES)}
EV_NONE, EV_SERVE, EV_HIT, EV_MISS = (EVENT_CODES[n] for n in ("none", "serve", "hit", "miss"))
#: The pilot recording's wall bounce (events.txt only: our game does not log bounces).
EV_BOUNCE = len(EVENT_NAMES)
#: The trace's ``feedback`` field: which feedback began in a tick.
FEEDBACK_CODES = {"predictable": 1, "unpredictable": 2}
FEEDBACK_NAMES = {code: name for name, code in FEEDBACK_CODES.items()}
#: The published analysis windows, in minutes: the first 5 minutes versus minutes 5-20
#: (Kagan et al. 2022, Fig. 5).
DEFAULT_WINDOWS_MIN: tuple[tuple[float, float], ...] = ((0.0, 5.0), (5.0, 20.0))
#: A long rally has more than this many hits (Kagan et al. 2022, Fig. 5: "more than 3").
LONG_RALLY_THRESHOLD = 3

#: Names of our session logs; each may also end in ``.gz``.
SESSION_LOG_SUFFIXES = (".jsonl", ".ndjson")
_GZ = ".gz"
EVENTS_FILENAME = "events.txt"
SPIKES_FILENAME = "spikes.bin"
CHIP_CONFIG_FILENAME = "gen3b.cfg"
#: One record of Cortical Labs' spikes.bin (SpikeStream): frame at 20 kHz, channel, amplitude.
SPIKE_RECORD = np.dtype([("frame", "<u8"), ("channel", "<u4"), ("amplitude", "<f4")])
#: The MaxOne chip's recording channels.
SPIKESTREAM_CHANNELS = 1024

TRACE_FORMAT = "dishbrain-trace"
TRACE_VERSION = 1

#: events.txt's event names: the clock's start, a hit, a miss, a wall bounce.
CL_GAME_BEGIN, CL_HIT, CL_MISS = "game begin", "ball return", "ball missed"
CL_BOUNCE = "ball bounce"

_EVENT_LINE = re.compile(r"^\s*(\d+)\s*:\s*(.*?)\s*$")
_MOTOR_LAYOUT = re.compile(r"^motor layout\s*:\s*(-?\d+)$")
_CL_EVENTS = (CL_GAME_BEGIN, CL_BOUNCE, CL_HIT, CL_MISS)
_CHANNEL_ITEM = re.compile(r"^\s*(\d+)\((\d+)\)([-\d.]+)/([-\d.]+)\s*$")


# --------------------------------------------------------------------------------------------
# Names and files


def is_session_log(path: str | Path) -> bool:
    """Whether ``path`` is named like our session log (``.jsonl``, ``.ndjson``, either ``.gz``)."""
    name = Path(path).name.lower()
    if name.endswith(_GZ):
        name = name[: -len(_GZ)]
    return name.endswith(SESSION_LOG_SUFFIXES)


def resolve_log(path: str | Path) -> Path:
    """The session log on disk for ``path``: itself, else its compressed (``.gz``) or plain twin;
    ``path`` unchanged when neither exists (so that an error names what was asked for)."""
    path = Path(path)
    if path.exists():
        return path
    twin = path.with_name(path.name[: -len(_GZ)]) if path.name.endswith(_GZ) \
        else path.with_name(path.name + _GZ)
    return twin if twin.exists() else path


def log_stem(path: str | Path) -> str:
    """A log's or trace's name without its format suffixes (``a.jsonl.gz`` -> ``a``)."""
    name = Path(path).name
    for suffix in (".trace.npy", ".trace.json", *(s + _GZ for s in SESSION_LOG_SUFFIXES),
                   *SESSION_LOG_SUFFIXES):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def _open_text(path: Path):
    if _is_gzip(path):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_log_lines(path: str | Path) -> list[str]:
    """The text lines of a log (gzip-compressed or not). A compressed file cut short by a crash
    gives the lines decompressed so far.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, or not a text file (the message names the file).
    """
    path = resolve_log(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, expected a session log file")
    if _is_gzip(path):
        raw = path.read_bytes()
        try:
            data = gzip.decompress(raw)
        except (EOFError, zlib.error, gzip.BadGzipFile):
            try:  # cut short by a crash: what can be decompressed
                data = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(raw)
            except zlib.error as exc:
                raise ValueError(f"{path}: a damaged gzip file ({exc})") from None
    else:
        data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"{path}: not a text file ({exc.reason} at byte {exc.start}); expected a JSON-lines "
            "session log or a Cortical Labs events.txt"
        ) from None
    return text.splitlines()


def _jsonl_records(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, dict]]:
    """(line number, record) of JSON-lines text; blank lines skipped; a malformed *last* line
    is taken as a crash mid-write and skipped, one elsewhere is an error naming the line."""
    pending: tuple[int, str] | None = None
    for i, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        if pending is not None:
            yield _json_record(path, *pending)
        pending = (i, line)
    if pending is not None:
        try:
            yield _json_record(path, *pending)
        except _BadJson:
            return  # written half-way when the run crashed


class _BadJson(ValueError):
    pass


def _json_record(path: Path, number: int, line: str) -> tuple[int, dict]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _BadJson(
            f"{path}:{number}: not valid JSON ({exc.msg}); expected one JSON object per line"
        ) from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}:{number}: expected a JSON object, got {line[:60]!r}")
    return number, record


def read_jsonl(path: str | Path) -> Iterator[dict]:
    """The records of a JSON-lines file, ``.jsonl`` or ``.jsonl.gz`` alike (see
    ``read_log_lines`` and the cut-last-line rule of the module docs)."""
    path = resolve_log(path)
    for _, record in _jsonl_records(path, read_log_lines(path)):
        yield record


def log_format(path: str | Path, lines: list[str]) -> str:
    """``"jsonl"`` (our session log) or ``"events.txt"`` (Cortical Labs), told by the file name
    and, failing that, by the first non-blank line; ValueError for anything else."""
    path = Path(path)
    first = next((ln.strip() for ln in lines if ln.strip()), None)
    if first is None:
        raise ValueError(
            f"{path}: empty file; expected a JSON-lines session log or a Cortical Labs events.txt"
        )
    if is_session_log(path) or first.startswith("{"):
        return "jsonl"
    if path.name.lower() == EVENTS_FILENAME or first.startswith("info:") \
            or _EVENT_LINE.match(first):
        return "events.txt"
    raise ValueError(
        f"{path}: unknown session log format (first line {first[:60]!r}); expected JSON lines "
        'starting with a {"kind": "header", ...} object, or a Cortical Labs events.txt '
        "('info: key: value' header lines, then '<frame>: <event>' lines)"
    )


# --------------------------------------------------------------------------------------------
# Session logs


@dataclass
class SessionEvents:
    """A session log, parsed: its header, the game events ``(kind, t_s)`` in order (serve, hit,
    miss), and the end line (None when the session did not finish)."""

    path: Path
    header: dict
    events: list[tuple[str, float]] = field(default_factory=list)
    end: dict | None = None

    @property
    def finished(self) -> bool:
        return self.end is not None and self.end.get("stopped") is False


def parse_session_log(path: str | Path, lines: Iterable[str]) -> SessionEvents:
    """Parse the lines of a session log (see ``read_session_log``)."""
    path = Path(path)
    header: dict | None = None
    out = SessionEvents(path, {})
    for number, record in _jsonl_records(path, lines):
        where = f"{path}:{number}"
        kind = record.get("kind")
        if kind is None:
            raise ValueError(
                f'{where}: expected a JSON object with a "kind" field, got {str(record)[:60]!r}'
            )
        if header is None:
            if kind != "header":
                raise ValueError(
                    f'{where}: expected the first line to be the {{"kind": "header", ...}} record, '
                    f"got kind {kind!r}"
                )
            header = out.header = record
            continue
        if kind not in ("serve", "hit", "miss", "end"):
            continue  # a kind this reader does not know
        t = record.get("t")
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t):
            raise ValueError(
                f'{where}: {kind!r} event needs a finite number "t" (game time, s), got {t!r}'
            )
        if kind == "end":
            out.end = record
        else:
            out.events.append((kind, float(t)))
    # With no header at all (only a half-written one), the run died before its first event.
    return out


def read_session_log(path: str | Path) -> SessionEvents:
    """Read our session log (``.jsonl`` or ``.jsonl.gz``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a text file, or a malformed line (the message names the file, the line
            and what was expected). A malformed *last* line is a crash mid-write: skipped.
    """
    path = resolve_log(path)
    return parse_session_log(path, read_log_lines(path))


def log_finished(path: str | Path) -> bool:
    """True when the session log (plain or ``.gz``; ``path`` may name either) ends with an
    ``end`` line with ``"stopped": false``. Cheap for a plain log: only its tail is read."""
    path = resolve_log(path)
    try:
        if _is_gzip(path):
            lines = read_log_lines(path)
        else:
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 4096))
                lines = f.read().decode("utf-8", errors="replace").splitlines()
    except (OSError, ValueError):
        return False
    lines = [ln for ln in lines if ln.strip()]
    if not lines:
        return False
    try:
        last = json.loads(lines[-1])
    except json.JSONDecodeError:
        return False
    return isinstance(last, dict) and last.get("kind") == "end" and last.get("stopped") is False


class SessionLog(gym.Wrapper):
    """Writes the session's events to a JSON-lines file as they happen (format: module docs)."""

    def __init__(self, env: gym.Env, path: str | Path, header: dict[str, Any]):
        super().__init__(env)
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "w", buffering=1, encoding="utf-8")
        self._header = header
        self._steps = 0
        self._rally = 0
        self._last_info: dict[str, Any] = {}
        self._closed = False

    @property
    def steps(self) -> int:
        return self._steps

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        if self._header is not None:
            self._write({"kind": "header", **self._header,
                         "started": _dt.datetime.now().isoformat(timespec="seconds")})
            self._header = None
        self._steps, self._rally = 0, 0
        self._event(info)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._steps += 1
        self._event(info)
        return obs, reward, terminated, truncated, info

    def _event(self, info: dict[str, Any]) -> None:
        self._last_info = info
        kind = info["event"]
        if kind == "none":
            return
        self._write({"kind": kind, "t": round(info["game_time_s"], 4), "step": self._steps,
                     "rally": self._rally, "hits": info["rally_hits"]})
        if kind == "miss":
            self._rally += 1

    def finish(self, wall_s: float, stopped: bool = False) -> None:
        if self._closed:
            return
        info = self._last_info
        self._write({"kind": "end", "t": round(info.get("game_time_s", 0.0), 4),
                     "step": self._steps, "rallies": info.get("rallies", 0),
                     "hits": info.get("hits", 0), "misses": info.get("misses", 0),
                     "wall_s": round(wall_s, 3), "stopped": stopped})
        self._file.close()
        self._closed = True

    def close(self):
        if not self._closed:
            self._file.close()
            self._closed = True
        super().close()


# --------------------------------------------------------------------------------------------
# Cortical Labs' recording


@dataclass
class EventsTxt:
    """An events.txt, parsed: the ``info:`` header and the ``(frame, event)`` lines in order."""

    path: Path
    header: dict[str, str]
    events: list[tuple[int, str]]

    @property
    def begin_frame(self) -> int:
        """The clock's origin: ``game begin``, else the first event (0 for none)."""
        return next((f for f, e in self.events if e == CL_GAME_BEGIN),
                    self.events[0][0] if self.events else 0)

    def seconds(self, frame: int) -> float:
        """Seconds from the game's begin of a frame."""
        return (frame - self.begin_frame) / EVENTS_FRAME_RATE_HZ


def motor_layout_of(event: str) -> int | None:
    """N of a ``motor layout: N`` event, else None."""
    match = _MOTOR_LAYOUT.match(event)
    return int(match.group(1)) if match else None


def parse_events_txt(path: str | Path, lines: list[str]) -> EventsTxt:
    """Parse an events.txt's lines (see ``read_events_txt``)."""
    path = Path(path)
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), -1)
    header: dict[str, str] = {}
    events: list[tuple[int, str]] = []
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("info:"):
            key, _, value = line[len("info:"):].partition(":")
            header[key.strip()] = value.strip()
            continue
        match = _EVENT_LINE.match(line)
        if i == last and (match is None or not (match.group(2) in _CL_EVENTS
                                                or _MOTOR_LAYOUT.match(match.group(2)))):
            break  # cut short by a crash mid-write ("ball bou"): skip it
        if match is None or not match.group(2):
            raise ValueError(
                f"{path}:{i + 1}: expected '<frame>: <event>' "
                f"(frames at {EVENTS_FRAME_RATE_HZ} Hz) "
                f"or 'info: <key>: <value>', got {line[:60]!r}"
            )
        events.append((int(match.group(1)), match.group(2)))
    return EventsTxt(path, header, events)


def read_events_txt(path: str | Path) -> EventsTxt:
    """Read a Cortical Labs events.txt. A malformed last line (a crash mid-write) is skipped; one
    elsewhere is a ValueError naming the file and line."""
    path = Path(path)
    return parse_events_txt(path, read_log_lines(path))


def open_spikes(path: str | Path) -> np.memmap | None:
    """spikes.bin memory-mapped as ``SPIKE_RECORD`` records (None: absent or empty)."""
    path = Path(path)
    if not path.exists() or path.stat().st_size < SPIKE_RECORD.itemsize:
        return None
    n = path.stat().st_size // SPIKE_RECORD.itemsize
    return np.memmap(path, dtype=SPIKE_RECORD, mode="r", shape=(n,))


def read_channel_positions(cfg_path: str | Path,
                           n_channels: int = SPIKESTREAM_CHANNELS) -> np.ndarray:
    """Channel positions (um, (n, 2)) from a MaxOne config's first line, ``ch(el)x/y;...``.

    Channels the config does not route get NaN.
    """
    pos = np.full((n_channels, 2), np.nan)
    first = Path(cfg_path).read_text(encoding="latin1").split("\n", 1)[0]
    for item in first.split(";"):
        m = _CHANNEL_ITEM.match(item)
        if m and int(m.group(1)) < n_channels:
            pos[int(m.group(1))] = (float(m.group(3)), float(m.group(4)))
    return pos


# --------------------------------------------------------------------------------------------
# Traces


def trace_paths(path: str | Path) -> tuple[Path, Path]:
    """(records, metadata) paths of the trace that goes with a session log or trace path."""
    path = Path(path)
    name = log_stem(path)
    return path.with_name(name + ".trace.npy"), path.with_name(name + ".trace.json")


def trace_dtype(n_counts: int | None = None) -> np.dtype:
    """A trace record: the court's state and action; with ``n_counts`` electrodes, a culture's
    feedback, stimulation and spike counts too."""
    fields: list[tuple] = [("ball_x", "<f4"), ("ball_y", "<f4"), ("paddle_y", "<f4"),
                           ("in_play", "u1"), ("event", "u1"), ("action", "u1")]
    if n_counts is not None:
        fields += [("feedback", "u1"), ("stim_slot", "i1"), ("stim_rate_hz", "<f4"),
                   ("counts", "u1", (int(n_counts),))]
    return np.dtype(fields)


def trace_meta(*, tick_ms: float, env_config: dict, player: str | None,
               condition: str | None, array: dict | None = None) -> dict:
    """The ``.trace.json`` record (``array``: name, positions_um, sensory, motor_up, motor_down)."""
    meta: dict[str, Any] = {"format": TRACE_FORMAT, "version": TRACE_VERSION,
                            "tick_ms": float(tick_ms), "env_config": env_config,
                            "player": player, "condition": condition}
    if array is not None:
        meta["array"] = array
    return meta


class TraceWriter:
    """Appends records to a trace's ``.npy`` (header rewritten in place after each append, so the
    file always loads) and writes its ``.trace.json`` on opening."""

    def __init__(self, path: str | Path, dtype: np.dtype, meta: dict):
        self.path, self.meta_path = trace_paths(path)
        self.dtype = np.dtype(dtype)
        self.ticks = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.meta_path.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        self._file = open(self.path, "w+b")
        self._write_header()
        self._data_start = self._file.tell()
        self._file.flush()  # an empty trace loads too

    def _write_header(self) -> None:
        # NumPy pads the header so that the shape's count may grow to 21 digits without
        # changing its length: rewriting it in place never moves the data.
        self._file.seek(0)
        npy_format.write_array_header_1_0(
            self._file, {"descr": npy_format.dtype_to_descr(self.dtype),
                         "fortran_order": False, "shape": (self.ticks,)})

    def append(self, records: np.ndarray) -> None:
        """Append records (of ``dtype``) and update the header's count."""
        if self._file is None or len(records) == 0:
            return
        records = np.ascontiguousarray(records, dtype=self.dtype)
        f = self._file
        f.seek(0, os.SEEK_END)
        f.write(records.tobytes())
        self.ticks += len(records)
        self._write_header()
        if f.tell() != self._data_start:  # the header grew: never expected (see above)
            raise RuntimeError(f"{self.path}: the .npy header changed size")
        f.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_trace(path: str | Path) -> tuple[dict, np.ndarray]:
    """(metadata, records) of a trace; ``path`` is the session log's (``.jsonl``/``.jsonl.gz``)
    or the trace's own. Records are memory-mapped (read-only)."""
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
