"""A run folder's finished sessions and their metrics per window (`load_run`, `RunData`), and
the published values they are set beside (Kagan et al. 2022, Fig. 5).

Reads the run folder through `dishbrain.experiment.runfolder` (its config, which sessions
finished, plain or ``.jsonl.gz`` logs) and the logs through `dishbrain.metrics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dishbrain.experiment.config import RunConfig
from dishbrain.experiment.runfolder import load_run_config, session_finished
from dishbrain.experiment.tasks import SessionSpec
from dishbrain.metrics import (
    RallyMetrics,
    Session,
    learning_curve,
    published_reference,
    rally_metrics,
    read_session,
)

__all__ = ["METRICS", "PUBLISHED_GROUPS", "PUBLISHED_WINDOWS", "SUMMARY_COLUMNS", "RunData",
           "load_published", "load_run", "summary_rows", "window_name"]

#: (field of RallyMetrics, heading, description) of the Fig. 5 metrics.
METRICS = (
    ("arl", "ARL", "average rally length, hits per rally"),
    ("aces_pct", "aces %", "% of rallies with no hit"),
    ("long_pct", "long %", "% of rallies with more than the long-rally threshold of hits"),
)
#: The published groups (Kagan et al. 2022, Fig. 5): mouse and human cortical cells, and the
#: in-silico control.
PUBLISHED_GROUPS = (("MCC", "mouse cortical cells"), ("HCC", "human cortical cells"),
                    ("IS", "in-silico control"))
PUBLISHED_WINDOWS = ("0-5", "5-20")

SUMMARY_COLUMNS = ("label", "player", "condition", "phase", "seed", "window", "start_min",
                   "end_min", "minutes", "rallies", "hits", "aces", "long", "arl", "aces_pct",
                   "long_pct", "log")


def window_name(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}"


@dataclass
class RunData:
    """The finished sessions of a run folder and their metrics per window."""

    config: RunConfig
    run_dir: Path
    specs: list[SessionSpec]
    sessions: dict[tuple[str, int], Session] = field(default_factory=dict)
    rests: dict[tuple[str, int], Session] = field(default_factory=dict)
    metrics: dict[tuple[str, int], list[RallyMetrics]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def window_names(self) -> list[str]:
        return [window_name(lo, hi) for lo, hi in self.config.windows]

    def reaches(self, label: str, window: int) -> bool:
        """Whether the group's sessions reach the window (players' session lengths may differ)."""
        minutes = next(p.minutes for p in self.config.players if p.label == label)
        return self.config.windows[window][0] < minutes - 1e-9

    def values(self, label: str, window: int, metric: str) -> dict[int, float]:
        """seed -> the metric in a window, for the sessions with a rally there."""
        out = {}
        for seed in self.config.seeds:
            m = self.metrics.get((label, seed))
            if m is not None:
                v = getattr(m[window], metric)
                if not math.isnan(v):
                    out[seed] = float(v)
        return out


    def bin_arl(self, label: str, bin_min: float, spanning: bool = False
                ) -> tuple[np.ndarray | None, dict[int, np.ndarray]]:
        """The group's ARL per bin of ``bin_min`` minutes over its players' session length:
        (bin starts, seed -> ARL per bin, NaN for a bin without a completed rally), for the
        finished sessions; (None, {}) where none has finished.

        spanning: a bin in which no rally ended lies inside one rally, the first to end after
        it (or the one the session's end cut, `dishbrain.metrics`); the bin gets that rally's
        hits instead of NaN, so that a player that stops missing is read as playing long
        rallies, not as having no ARL (the sample-efficiency reach, `efficiency`)."""
        player = next(p for p in self.config.players if p.label == label)
        starts, per_seed = None, {}
        for seed in self.config.seeds:
            session = self.sessions.get((label, seed))
            if session is None:
                continue
            lc = learning_curve(session, bin_min, until_min=player.minutes,
                                long_threshold=self.config.long_threshold)
            starts = lc.bin_starts_min
            arl = np.asarray(lc.arl, dtype=float)
            if spanning:
                for b in np.flatnonzero(np.isnan(arl)):
                    end_s = (starts[b] + bin_min) * 60.0
                    after = np.flatnonzero(session.rally_end_s >= end_s)
                    if after.size:
                        arl[b] = float(session.rally_hits[after[0]])
            per_seed[seed] = arl
        return starts, per_seed


def load_run(run_dir: str | Path, config: RunConfig | None = None) -> RunData:
    """Read the finished sessions of a run folder (unfinished ones are listed in ``missing``)."""
    run_dir = Path(run_dir)
    config = config or load_run_config(run_dir)
    data = RunData(config=config, run_dir=run_dir, specs=config.sessions(run_dir))
    for spec in data.specs:
        key = (spec.label, spec.seed)
        if not session_finished(spec.log_path):
            data.missing.append(spec.key)
            continue
        try:
            session = read_session(spec.log_path)  # .jsonl, or its .jsonl.gz
        except ValueError:  # damaged after it finished: rerunning the study replays it
            data.missing.append(spec.key)
            continue
        data.sessions[key] = session
        data.metrics[key] = _window_metrics(session, spec.minutes, config)
        if spec.rest is not None and session_finished(spec.rest.log_path):
            try:
                data.rests[key] = read_session(spec.rest.log_path)
            except ValueError:
                pass
    return data


def _window_metrics(session: Session, minutes: float, config: RunConfig) -> list[RallyMetrics]:
    """Metrics per configured window; a window that starts at or after the end of the player's
    session (a longer budget of another player) has no data (NaN), not the rally cut there."""
    out = []
    for lo, hi in config.windows:
        if lo >= minutes - 1e-9:
            out.append(RallyMetrics(rallies=0, hits=0, aces=0, long=0, arl=math.nan,
                                    aces_pct=math.nan, long_pct=math.nan, start_min=lo,
                                    end_min=hi, long_threshold=config.long_threshold))
        else:
            out.append(rally_metrics(session, lo, hi, config.long_threshold))
    return out


def summary_rows(data: RunData) -> list[dict[str, Any]]:
    """One row per finished session x window, and one per rest recording (its whole length)."""
    rows = []
    for spec in data.specs:
        key = (spec.label, spec.seed)
        phases = []
        if key in data.rests:
            phases.append(("rest", data.rests[key], spec.rest.minutes, spec.rest.log_path, "rest"))
        if key in data.sessions:
            phases.append(("session", data.sessions[key], spec.minutes, spec.log_path,
                           spec.condition))
        for phase, session, minutes, path, condition in phases:
            if phase == "session":  # the windows that the session reaches
                metrics = [m for m in data.metrics[key] if m.start_min < minutes - 1e-9]
            else:  # a rest recording is a baseline: one row for the whole recording
                metrics = [rally_metrics(session, 0.0, minutes, data.config.long_threshold)]
            for m in metrics:
                rows.append({
                    "label": spec.label, "player": spec.player, "condition": condition or "",
                    "phase": phase, "seed": spec.seed,
                    "window": window_name(m.start_min, m.end_min),
                    "start_min": m.start_min, "end_min": m.end_min, "minutes": minutes,
                    "rallies": m.rallies, "hits": m.hits, "aces": m.aces, "long": m.long,
                    "arl": m.arl, "aces_pct": m.aces_pct, "long_pct": m.long_pct,
                    "log": _relative(path, data.run_dir),
                })
    return rows


def _relative(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def load_published() -> dict[tuple[str, str, str], dict] | None:
    """(metric, group, window) -> the published record, or None where the reference is absent."""
    try:
        reference = published_reference()
    except (OSError, ValueError):
        return None
    if not reference:
        return None
    return {(r["metric"], r["group"], r["window"]): r for r in reference}
