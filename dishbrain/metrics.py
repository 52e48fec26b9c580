"""Rally metrics from session logs: ours (JSON lines) and Cortical Labs' ``events.txt``.

The metrics are those of the published DishBrain analysis (Kagan et al. 2022, "In vitro neurons
learn and exhibit sentience when embodied in a simulated game-world", Neuron 110(23):3952-3969,
Fig. 5), also used by the reinforcement-learning comparison of Khajehnejad et al. 2025:

- a *rally* is the run of hits that ends with a miss; only completed rallies count, and each
  rally belongs to the time window in which its miss fell; in our logs, a rally cut off by the
  session's ``end`` counts too if it had at least one hit (else a perfect player has no rally);
- average rally length (ARL): hits per rally;
- aces: % of rallies with no hit (the ball got past on the serve);
- long rallies: % of rallies with more than 3 hits (some analyses use 3 or more, so the
  threshold and its inclusiveness are parameters);
- learning is read as the change from the first 5 minutes to minutes 5-20 of a 20-minute session.

Two log formats are read, through ``dishbrain/logs.py`` (which documents both; ``read_session``
tells them apart by name and content): our session log (``.jsonl`` or ``.jsonl.gz``; a cut last
line, from a crash mid-write, is skipped) and Cortical Labs' ``events.txt`` (``ball return`` is a
hit, ``ball missed`` a miss, times from ``game begin``).

Time windows are half-open, ``start_min <= t < end_min``, so adjacent windows and learning-curve
bins partition the session: a miss at exactly 5:00 counts in 5-20, not in 0-5. A window that
reaches the session's end is closed there, so a miss on the last step of a session still counts.

Example::

    from dishbrain.metrics import load_sessions, summarize, format_table
    print(format_table(summarize(load_sessions("runs/"))))

or from a shell: ``dishbrain analyze runs/`` (one log, a folder, or an events.txt).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from dishbrain.logs import (
    CL_HIT,
    CL_MISS,
    DEFAULT_WINDOWS_MIN,
    EVENTS_FILENAME,
    EVENTS_FRAME_RATE_HZ,
    LONG_RALLY_THRESHOLD,
    EventsTxt,
    SessionEvents,
    is_session_log,
    log_format,
    motor_layout_of,
    parse_events_txt,
    parse_session_log,
    read_log_lines,
    resolve_log,
)

__all__ = [
    "EVENTS_FRAME_RATE_HZ",
    "DEFAULT_WINDOWS_MIN",
    "LONG_RALLY_THRESHOLD",
    "Session",
    "RallyMetrics",
    "LearningCurve",
    "read_session",
    "load_sessions",
    "rally_metrics",
    "windows",
    "learning_curve",
    "summarize",
    "format_table",
    "published_reference",
]

# Game times in our logs are sums of 10 ms steps; rounding to a microsecond removes float noise
# (299.99999999998 s) so that a miss at exactly 5:00 lands in the window that starts there.
_TIME_DECIMALS = 6


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True, eq=False)
class Session:
    """The rallies of one recorded session, whatever the log format.

    Attributes:
        source: the log file read.
        format: ``"jsonl"`` (our session log) or ``"events.txt"`` (Cortical Labs).
        header: our log's header line, or the ``info:`` fields of an events.txt (as strings).
        duration_s: the ``end`` event's time, else the last event's time, from the game start.
        rally_hits: hits in each completed rally, in order (int array, read-only).
        rally_end_s: time of the miss that ended each rally, seconds from the game start
            (float array, read-only).
        motor_layouts: ``(t_s, layout)`` for each ``motor layout: N`` of an events.txt.
    """

    source: Path
    format: str
    header: dict
    duration_s: float
    rally_hits: np.ndarray
    rally_end_s: np.ndarray
    motor_layouts: tuple[tuple[float, int], ...] = field(default=())

    def __post_init__(self) -> None:
        hits = np.array(self.rally_hits, dtype=np.int64).reshape(-1)
        ends = np.array(self.rally_end_s, dtype=np.float64).reshape(-1)
        if hits.shape != ends.shape:
            raise ValueError(
                f"{self.source}: rally_hits ({hits.size}) and rally_end_s ({ends.size}) "
                "must have the same length"
            )
        hits.setflags(write=False)
        ends.setflags(write=False)
        object.__setattr__(self, "rally_hits", hits)
        object.__setattr__(self, "rally_end_s", ends)
        object.__setattr__(self, "source", Path(self.source))

    @property
    def n_rallies(self) -> int:
        return int(self.rally_hits.size)

    @property
    def label(self) -> str:
        """A short name for tables: the file name, or ``folder/events.txt``."""
        if self.source.name == EVENTS_FILENAME and self.source.parent.name:
            return f"{self.source.parent.name}/{self.source.name}"
        return self.source.name

    def __repr__(self) -> str:
        return (
            f"Session(source={str(self.source)!r}, format={self.format!r}, "
            f"duration_s={self.duration_s:.2f}, rallies={self.n_rallies}, "
            f"hits={int(self.rally_hits.sum())})"
        )


@dataclass(frozen=True)
class RallyMetrics:
    """Gameplay metrics of the rallies that ended in one time window (Kagan et al. 2022, Fig. 5).

    Attributes:
        rallies: completed rallies whose miss fell in ``[start_min, end_min)``.
        hits: hits in those rallies.
        aces: rallies with no hit.
        long: rallies with more than ``long_threshold`` hits (at least, if ``long_inclusive``).
        arl: average rally length, hits per rally (NaN for no rallies).
        aces_pct: % of rallies with no hit (NaN for no rallies).
        long_pct: % of rallies that are long (NaN for no rallies).
        start_min, end_min: the window; ``end_min`` None means to the end of the session.
        long_threshold, long_inclusive: the long-rally definition used.
    """

    rallies: int
    hits: int
    aces: int
    long: int
    arl: float
    aces_pct: float
    long_pct: float
    start_min: float = 0.0
    end_min: float | None = None
    long_threshold: int = LONG_RALLY_THRESHOLD
    long_inclusive: bool = False

    @property
    def window(self) -> str:
        """The window as text, ``"0-5"`` or ``"5-end"``."""
        end = "end" if self.end_min is None else _fmt_min(self.end_min)
        return f"{_fmt_min(self.start_min)}-{end}"


class LearningCurve(NamedTuple):
    """Per-bin rally metrics; unpacks as ``(bin_starts_min, bins)``."""

    bin_starts_min: np.ndarray
    bins: list[RallyMetrics]

    @property
    def arl(self) -> np.ndarray:
        return np.array([b.arl for b in self.bins], dtype=float)

    @property
    def aces_pct(self) -> np.ndarray:
        return np.array([b.aces_pct for b in self.bins], dtype=float)

    @property
    def long_pct(self) -> np.ndarray:
        return np.array([b.long_pct for b in self.bins], dtype=float)

    @property
    def rallies(self) -> np.ndarray:
        return np.array([b.rallies for b in self.bins], dtype=int)


# --------------------------------------------------------------------------------------------
# Reading logs


def read_session(path: str | Path) -> Session:
    """Read one session log: ours (``.jsonl`` or ``.jsonl.gz``) or Cortical Labs' events.txt.

    The format is told by the file name (``*.jsonl[.gz]``, ``events.txt``) and, failing that, by
    the first non-blank line (``{`` for JSON lines; ``info:`` or ``<frame>:`` for events.txt).
    A ``.jsonl`` path that is on disk only compressed is read from its ``.gz``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a folder, an empty or binary file, an unknown format, or a malformed line
            (the message names the file, the line and what was expected). A malformed *last*
            line is taken as a crash mid-write and skipped.
    """
    path = resolve_log(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, expected a session log file (use load_sessions)")
    lines = read_log_lines(path)
    if log_format(path, lines) == "jsonl":
        return _session_of_log(parse_session_log(path, lines))
    return _session_of_events_txt(parse_events_txt(path, lines))


def _seconds(t: float) -> float:
    return round(float(t), _TIME_DECIMALS)


def cut_rally_counts(hits_in_rally: int) -> bool:
    """The one rule for the rally in flight when a session (or a replay) ends: it counts, with
    the hits it had, if it had a hit (a perfect player has no miss at all); one with no hit yet
    is dropped (the cut, not the player, would make it an ace). Used by ``analyze`` (here) and
    by ``replay`` (``dishbrain.viewer.model.ViewModel.end_session``)."""
    return hits_in_rally > 0


def _session_of_log(log: SessionEvents) -> Session:
    hits_in_rally = 0
    rally_hits: list[int] = []
    rally_end_s: list[float] = []
    for kind, t in log.events:
        if kind == "hit":
            hits_in_rally += 1
        elif kind == "miss":
            rally_hits.append(hits_in_rally)
            rally_end_s.append(_seconds(t))
            hits_in_rally = 0
    if log.end is not None:
        end_t = _seconds(log.end["t"])
        if cut_rally_counts(hits_in_rally):
            rally_hits.append(hits_in_rally)
            rally_end_s.append(end_t)
        duration = end_t
    else:
        duration = _seconds(log.events[-1][1]) if log.events else 0.0
    return Session(
        log.path, "jsonl", log.header, float(duration), np.array(rally_hits),
        np.array(rally_end_s)
    )


def _session_of_events_txt(rec: EventsTxt) -> Session:
    def seconds(frame: int) -> float:
        return _seconds(rec.seconds(frame))

    hits_in_rally = 0
    rally_hits: list[int] = []
    rally_end_s: list[float] = []
    layouts: list[tuple[float, int]] = []
    previous = None
    for frame, event in rec.events:
        if previous is not None and frame < previous:
            raise ValueError(f"{rec.path}: frame {frame} ({event!r}) comes after frame "
                             f"{previous}: the frames of an events.txt never go backwards")
        previous = frame
        if event == CL_HIT:
            hits_in_rally += 1
        elif event == CL_MISS:
            rally_hits.append(hits_in_rally)
            rally_end_s.append(seconds(frame))
            hits_in_rally = 0
        else:
            layout = motor_layout_of(event)
            if layout is not None:
                layouts.append((seconds(frame), layout))
    duration = seconds(rec.events[-1][0]) if rec.events else 0.0
    return Session(
        rec.path, "events.txt", rec.header, float(duration),
        np.array(rally_hits), np.array(rally_end_s), tuple(layouts),
    )


def load_sessions(path: str | Path) -> list[Session]:
    """Read a log file, or every log in a folder (``*.jsonl``, ``*.jsonl.gz`` and ``events.txt``,
    recursively).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: a folder without logs, or a log that cannot be read (see ``read_session``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        return [read_session(path)]
    found = {p for p in path.rglob("*") if p.is_file()
             and (is_session_log(p) or p.name == EVENTS_FILENAME)}
    if not found:
        raise ValueError(
            f"{path}: no session logs found (expected *.jsonl, *.jsonl.gz or events.txt files)")
    return [read_session(p) for p in sorted(found)]


# --------------------------------------------------------------------------------------------
# Metrics


def _fmt_min(x: float) -> str:
    return f"{x:g}"


def rally_metrics(
    session: Session,
    start_min: float = 0.0,
    end_min: float | None = None,
    long_threshold: int = LONG_RALLY_THRESHOLD,
    long_inclusive: bool = False,
) -> RallyMetrics:
    """Rally metrics of the rallies whose miss fell in ``[start_min, end_min)`` minutes.

    Definitions after Kagan et al. 2022 (Neuron 110:3952, Fig. 5): ARL = hits per rally;
    aces = % rallies with no hit; long = % rallies with more than ``long_threshold`` (3) hits,
    or at least that many with ``long_inclusive=True``. With no rally in the window the
    percentages and ARL are NaN and the counts 0.
    """
    if not isinstance(long_threshold, (int, np.integer)) or long_threshold < 0:
        raise ValueError(f"long_threshold must be an integer >= 0, got {long_threshold!r}")
    if not math.isfinite(start_min):
        raise ValueError(f"start_min must be finite, got {start_min!r}")
    if end_min is not None and not end_min > start_min:
        raise ValueError(f"end_min must be greater than start_min ({start_min}), got {end_min!r}")

    # Compare in seconds, rounded as the times were, so that 5 min is exactly 300 s.
    lo = round(start_min * 60.0, _TIME_DECIMALS)
    if session.duration_s > 0 and lo >= session.duration_s:
        mask = session.rally_end_s > lo  # starts at the end: the closed window before it has it
    else:
        mask = session.rally_end_s >= lo
    if end_min is not None:
        hi = round(end_min * 60.0, _TIME_DECIMALS)
        # The window that reaches the session's end is closed there: a rally ending on the very
        # last step (or cut by the end) belongs to it, not to no window at all.
        if session.duration_s > 0 and hi >= session.duration_s:
            mask &= session.rally_end_s <= hi
        else:
            mask &= session.rally_end_s < hi
    hits = session.rally_hits[mask]

    n = int(hits.size)
    n_hits = int(hits.sum())
    aces = int(np.count_nonzero(hits == 0))
    is_long = hits >= long_threshold if long_inclusive else hits > long_threshold
    long = int(np.count_nonzero(is_long))
    if n:
        arl, aces_pct, long_pct = n_hits / n, 100.0 * aces / n, 100.0 * long / n
    else:
        arl = aces_pct = long_pct = math.nan
    return RallyMetrics(
        rallies=n, hits=n_hits, aces=aces, long=long,
        arl=arl, aces_pct=aces_pct, long_pct=long_pct,
        start_min=float(start_min), end_min=None if end_min is None else float(end_min),
        long_threshold=int(long_threshold), long_inclusive=bool(long_inclusive),
    )


def windows(
    session: Session,
    bounds_min: Iterable[tuple[float, float | None]] = DEFAULT_WINDOWS_MIN,
    long_threshold: int = LONG_RALLY_THRESHOLD,
    long_inclusive: bool = False,
) -> list[RallyMetrics]:
    """Rally metrics per window; the default is the published 0-5 versus 5-20 minutes
    (Kagan et al. 2022, Fig. 5)."""
    return [
        rally_metrics(session, start, end, long_threshold, long_inclusive)
        for start, end in bounds_min
    ]


def learning_curve(
    session: Session,
    bin_min: float = 1.0,
    until_min: float | None = None,
    long_threshold: int = LONG_RALLY_THRESHOLD,
    long_inclusive: bool = False,
) -> LearningCurve:
    """Rally metrics in consecutive bins of ``bin_min`` minutes from the game start.

    The bins cover ``[0, until_min)``, by default the session's duration; the last bin may
    reach past it. Returns ``LearningCurve(bin_starts_min, bins)``, whose ``arl``, ``aces_pct``,
    ``long_pct`` and ``rallies`` give arrays (NaN for bins without a rally).
    """
    if not bin_min > 0:
        raise ValueError(f"bin_min must be > 0 minutes, got {bin_min!r}")
    if until_min is None:
        until_min = session.duration_s / 60.0
    if not until_min >= 0:
        raise ValueError(f"until_min must be >= 0 minutes, got {until_min!r}")
    # A tolerance so that 20 min in 1-min bins is 20 bins, not 21 from float noise.
    n_bins = max(0, math.ceil(until_min / bin_min - 1e-9))
    starts = np.arange(n_bins, dtype=float) * bin_min
    bins = [
        rally_metrics(session, float(s), float(s) + bin_min, long_threshold, long_inclusive)
        for s in starts
    ]
    return LearningCurve(starts, bins)


# --------------------------------------------------------------------------------------------
# Tables


def _as_sessions(items) -> list[Session]:
    if isinstance(items, (Session, str, Path)):
        items = [items]
    sessions: list[Session] = []
    for item in items:
        if isinstance(item, Session):
            sessions.append(item)
        elif isinstance(item, (str, Path)):
            sessions.extend(load_sessions(item))
        else:
            raise ValueError(
                f"expected a Session, a log file or a folder of logs, got {type(item).__name__}"
            )
    return sessions


def summarize(
    paths_or_sessions,
    bounds_min: Iterable[tuple[float, float | None]] = DEFAULT_WINDOWS_MIN,
    long_threshold: int = LONG_RALLY_THRESHOLD,
    long_inclusive: bool = False,
    whole_session: bool = True,
) -> list[dict]:
    """Table rows: per session, the whole session (window ``"all"``) then each window.

    ``paths_or_sessions`` is a Session, a log file, a folder of logs, or a list of those.
    Each row has ``source``, ``path``, ``format``, ``window``, ``start_min``, ``end_min``,
    ``duration_min``, ``rallies``, ``hits``, ``aces``, ``long``, ``arl``, ``aces_pct``,
    ``long_pct`` and ``long_threshold``/``long_inclusive``.
    """
    bounds = list(bounds_min)
    rows: list[dict] = []
    for s in _as_sessions(paths_or_sessions):
        metrics = []
        if whole_session:
            metrics.append(("all", rally_metrics(s, 0.0, None, long_threshold, long_inclusive)))
        metrics += [(m.window, m) for m in windows(s, bounds, long_threshold, long_inclusive)]
        for window, m in metrics:
            rows.append({
                "source": s.label,
                "path": str(s.source),
                "format": s.format,
                "window": window,
                "start_min": m.start_min,
                "end_min": m.end_min,
                "duration_min": s.duration_s / 60.0,
                "rallies": m.rallies,
                "hits": m.hits,
                "aces": m.aces,
                "long": m.long,
                "arl": m.arl,
                "aces_pct": m.aces_pct,
                "long_pct": m.long_pct,
                "long_threshold": m.long_threshold,
                "long_inclusive": m.long_inclusive,
            })
    return rows


_TABLE_COLUMNS = (
    # (row key, heading, format, right-aligned)
    ("source", "source", "{}", False),
    ("window", "window", "{}", False),
    ("rallies", "rallies", "{:d}", True),
    ("hits", "hits", "{:d}", True),
    ("arl", "ARL", "{:.2f}", True),
    ("aces_pct", "aces %", "{:.1f}", True),
    ("long_pct", "long %", "{:.1f}", True),
)


def format_table(rows: Sequence[dict]) -> str:
    """A plain aligned text table of ``summarize`` rows: source, window, rallies, hits, ARL,
    aces %, long % (``-`` where a window has no rally)."""
    cells = [[heading for _, heading, _, _ in _TABLE_COLUMNS]]
    for row in rows:
        line = []
        for key, _, fmt, _ in _TABLE_COLUMNS:
            value = row.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                line.append("-")
            else:
                line.append(fmt.format(value))
        cells.append(line)
    widths = [max(len(r[j]) for r in cells) for j in range(len(_TABLE_COLUMNS))]
    out = []
    for i, r in enumerate(cells):
        parts = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, (_, _, _, right) in zip(r, widths, _TABLE_COLUMNS)
        ]
        out.append("  ".join(parts).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# Published values


_REFERENCE_NAME = Path("shared") / "reference" / "kagan2022_fig5.csv"


def published_reference(path: str | Path | None = None) -> list[dict] | None:
    """Kagan et al. 2022 Fig. 5 gameplay metrics (digitised box plots) as a list of dicts.

    Each record: ``metric`` (``arl``, ``aces_pct``, ``long_pct``), ``group`` (``MCC`` mouse,
    ``HCC`` human cortical cells, ``IS`` in-silico control), ``window`` (``"0-5"``, ``"5-20"``)
    and the floats ``whisker_lo``, ``box_lo``, ``median``, ``mean``, ``box_hi``, ``whisker_hi``.

    With no ``path``, looks for ``../shared/reference/kagan2022_fig5.csv`` beside the repository
    root, then beside the working folder, and returns None where neither exists.
    """
    if path is None:
        repo_root = Path(__file__).resolve().parents[1]
        candidates = [
            repo_root.parent / _REFERENCE_NAME,
            Path.cwd().resolve().parent / _REFERENCE_NAME,
        ]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            return None
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.DictReader(data)
    required = {"metric", "group", "window", "mean"}
    if reader.fieldnames is None or not required <= set(reader.fieldnames):
        raise ValueError(
            f"{path}: expected a CSV with columns {sorted(required)} (and box-plot stats), "
            f"got {reader.fieldnames}"
        )
    records = []
    for n, row in enumerate(reader, start=1):
        record: dict = {}
        for key, value in row.items():
            if key is None or value is None:
                raise ValueError(
                    f"{path}: data row {n} has {len(row)} fields, expected {len(reader.fieldnames)}"
                )
            value = value.strip()
            if key in ("metric", "group", "window"):
                record[key] = value
            else:
                try:
                    record[key] = float(value)
                except ValueError:
                    raise ValueError(
                        f"{path}: data row {n}: {key} = {value!r} is not a number"
                    ) from None
        records.append(record)
    return records
