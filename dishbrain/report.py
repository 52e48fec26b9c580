"""The report of a run folder, in the form of Kagan et al. 2022 Fig. 5, regenerated from the logs.

Kagan et al. 2022 (Neuron 110:3952, Fig. 5) compare the gameplay of cultures in the first 5
minutes of a 20-minute session with minutes 5-20: average rally length (ARL, hits per rally),
aces (% rallies with no hit) and long rallies (% rallies with more than 3 hits), per condition.
Khajehnejad et al. 2025 (Cyborg and Bionic Systems 6:0336) put DQN, A2C and PPO beside the
cultures on the same metrics. This module writes, for a run of ``dishbrain/experiment.py``:

- ``summary.csv``: one row per session (and rest recording) x window;
- ``tests.csv``: every statistical test below, one row each;
- ``report.md``: per group and window mean, SEM and n of each metric; the published biological
  values beside them (``shared/reference/kagan2022_fig5.csv``, where present); a paired test of
  the first window against each later one within each group; tests between groups in each
  window; the figures;
- ``fig5_boxplots.png`` (per-session values per group and window, published boxes beside them)
  and ``learning_curve.png`` (ARL per bin, mean +- SEM per group, published means beside it).

Tests. Within a group, windows are paired by session: the Wilcoxon signed-rank test is primary
(small n, bounded and skewed metrics), the paired t-test is reported beside it. Between groups:
where both groups have values for the same seeds (the same culture under two conditions, or two
players on the same serves) the same paired pair of tests; otherwise Mann-Whitney U (primary) and
Welch's t-test. p-values are two-sided and not corrected for multiple comparisons.

    dishbrain report runs/dishbrain-quick
"""

from __future__ import annotations

import csv
import datetime as _dt
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dishbrain.experiment import RunConfig, SessionSpec, load_run_config, session_finished
from dishbrain.metrics import (RallyMetrics, Session, learning_curve, published_reference,
                               rally_metrics, read_session)

__all__ = [
    "METRICS",
    "RunData",
    "load_run",
    "paired_tests",
    "unpaired_tests",
    "compare_groups",
    "group_rows",
    "within_tests",
    "between_tests",
    "format_group_table",
    "write_report",
]

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

SUMMARY_CSV = "summary.csv"
TESTS_CSV = "tests.csv"
REPORT_MD = "report.md"
BOXPLOT_PNG = "fig5_boxplots.png"
CURVE_PNG = "learning_curve.png"

SUMMARY_COLUMNS = ("label", "player", "condition", "phase", "seed", "window", "start_min",
                   "end_min", "minutes", "rallies", "hits", "aces", "long", "arl", "aces_pct",
                   "long_pct", "log")


def _window_name(lo: float, hi: float) -> str:
    return f"{lo:g}-{hi:g}"


# --------------------------------------------------------------------------------------------
# Data


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
        return [_window_name(lo, hi) for lo, hi in self.config.windows]

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
            session = read_session(spec.log_path)
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
                    "window": _window_name(m.start_min, m.end_min),
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


# --------------------------------------------------------------------------------------------
# Statistics


def _mean_sem(values: Sequence[float]) -> tuple[float, float, int]:
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, 0
    sem = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(np.mean(x)), sem, n


def _safe(test, *args, **kwargs) -> tuple[float, float]:
    """(statistic, p) of a scipy test; NaN where it is undefined (too few or identical values)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = test(*args, **kwargs)
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return math.nan, math.nan
    stat, p = float(result[0]), float(result[1])
    return stat, p


def paired_tests(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Wilcoxon signed-rank (primary) and paired t-test of two matched samples (two-sided)."""
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"paired samples must have the same length, got {x.size} and {y.size}")
    n = int(x.size)
    if n < 2:
        w = t = (math.nan, math.nan)
    else:
        d = y - x
        if np.allclose(d, 0):  # no difference at all: nothing to rank, nothing to divide by
            w, t = (math.nan, 1.0), (math.nan, 1.0)
        else:
            w = _safe(stats.wilcoxon, x, y)
            t = _safe(stats.ttest_rel, x, y)
    return {"design": "paired", "n_a": n, "n_b": n,
            "test": "Wilcoxon signed-rank", "stat": w[0], "p": w[1],
            "test2": "paired t", "stat2": t[0], "p2": t[1]}


def unpaired_tests(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Mann-Whitney U (primary) and Welch's t-test of two independent samples (two-sided)."""
    from scipy import stats

    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.size < 1 or y.size < 1 or x.size + y.size < 3:
        u = t = (math.nan, math.nan)
    else:
        u = _safe(stats.mannwhitneyu, x, y, alternative="two-sided")
        t = _safe(stats.ttest_ind, x, y, equal_var=False) if min(x.size, y.size) > 1 \
            else (math.nan, math.nan)
    return {"design": "unpaired", "n_a": int(x.size), "n_b": int(y.size),
            "test": "Mann-Whitney U", "stat": u[0], "p": u[1],
            "test2": "Welch t", "stat2": t[0], "p2": t[1]}


def compare_groups(a: dict[int, float], b: dict[int, float]) -> dict[str, Any]:
    """Test two groups' values (seed -> value): paired where both have the same seeds."""
    if set(a) == set(b) and len(a) >= 2:
        seeds = sorted(a)
        return paired_tests([a[s] for s in seeds], [b[s] for s in seeds])
    return unpaired_tests(list(a.values()), list(b.values()))


def group_rows(data: RunData) -> list[dict[str, Any]]:
    """Per group and window its sessions reach: mean, SEM and n of each metric, and the rallies."""
    rows = []
    for p in data.config.players:
        for w, name in enumerate(data.window_names):
            if not data.reaches(p.label, w):
                continue
            row = {"label": p.label, "player": p.player, "condition": p.condition or "",
                   "window": name,
                   "sessions": sum((p.label, s) in data.metrics for s in data.config.seeds),
                   "rallies": sum(data.metrics[(p.label, s)][w].rallies
                                  for s in data.config.seeds if (p.label, s) in data.metrics)}
            for metric, _, _ in METRICS:
                mean, sem, n = _mean_sem(list(data.values(p.label, w, metric).values()))
                row[metric], row[f"{metric}_sem"], row["n"] = mean, sem, n
            rows.append(row)
    return rows


def within_tests(data: RunData) -> list[dict[str, Any]]:
    """Within each group: the first window against each later one that its sessions reach,
    paired by session."""
    rows = []
    names = data.window_names
    for p in data.config.players:
        for w in range(1, len(names)):
            if not data.reaches(p.label, w):
                continue
            for metric, heading, _ in METRICS:
                early = data.values(p.label, 0, metric)
                late = data.values(p.label, w, metric)
                seeds = sorted(set(early) & set(late))
                x = [early[s] for s in seeds]
                y = [late[s] for s in seeds]
                result = paired_tests(x, y)
                rows.append({"kind": "within", "a": p.label, "b": p.label,
                             "window_a": names[0], "window_b": names[w], "metric": metric,
                             "mean_a": _mean_sem(x)[0], "mean_b": _mean_sem(y)[0], **result})
    return rows


def between_tests(data: RunData) -> list[dict[str, Any]]:
    """Between the groups the config compares (every pair of conditions, or each player against
    the reference), in each window that both groups' sessions reach."""
    rows = []
    for a, b in data.config.comparisons():
        for w, name in enumerate(data.window_names):
            if not (data.reaches(a, w) and data.reaches(b, w)):
                continue
            for metric, _, _ in METRICS:
                va, vb = data.values(a, w, metric), data.values(b, w, metric)
                result = compare_groups(va, vb)
                rows.append({"kind": "between", "a": a, "b": b, "window_a": name,
                             "window_b": name, "metric": metric,
                             "mean_a": _mean_sem(list(va.values()))[0],
                             "mean_b": _mean_sem(list(vb.values()))[0], **result})
    return rows


# --------------------------------------------------------------------------------------------
# Text


def _f(value: float, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def _p(value: float) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _mean_pm(row: dict, metric: str, digits: int) -> str:
    mean, sem = row[metric], row[f"{metric}_sem"]
    if math.isnan(mean):
        return "-"
    return _f(mean, digits) + ("" if math.isnan(sem) else f" ± {_f(sem, digits)}")


_DIGITS = {"arl": 2, "aces_pct": 1, "long_pct": 1}


def format_group_table(rows: Sequence[dict]) -> str:
    """A plain text table of ``group_rows``: group, window, n, ARL, aces %, long % (mean ± SEM)."""
    head = ["group", "window", "n", "rallies"] + [h for _, h, _ in METRICS]
    cells = [head] + [[r["label"], r["window"], str(r["n"]), str(r["rallies"])]
                      + [_mean_pm(r, m, _DIGITS[m]) for m, _, _ in METRICS] for r in rows]
    widths = [max(len(c[j]) for c in cells) for j in range(len(head))]
    lines = []
    for i, c in enumerate(cells):
        lines.append("  ".join(x.ljust(w) if j < 2 else x.rjust(w)
                               for j, (x, w) in enumerate(zip(c, widths))).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _published(reference: list[dict] | None) -> dict[tuple[str, str, str], dict] | None:
    if not reference:
        return None
    return {(r["metric"], r["group"], r["window"]): r for r in reference}


def _load_reference() -> list[dict] | None:
    try:
        return published_reference()
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------------------------
# Figures


def _colors(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def plot_boxplots(data: RunData, path: Path, published: dict | None) -> Path:
    """Per-session values per group and window (boxes and points), published boxes beside them."""
    from matplotlib import cbook
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    names = data.window_names
    labels = data.config.labels
    pub_groups = [g for g, _ in PUBLISHED_GROUPS] if published else []
    n_slots = (len(labels) + len(pub_groups)) * (len(names) + 1)
    fig = Figure(figsize=(max(7.0, 0.32 * n_slots + 2.0), 10.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(METRICS), 1, sharex=True)
    wcolors = _colors(len(names))
    rng = np.random.default_rng(0)
    centers = []
    for ax, (metric, heading, _) in zip(axes, METRICS):
        stats, positions, colors = [], [], []
        centers = []
        for g, label in enumerate(labels):
            base = g * (len(names) + 1)
            centers.append(base + (len(names) - 1) / 2)
            for w in range(len(names)):
                vals = np.array(list(data.values(label, w, metric).values()))
                if vals.size == 0:
                    continue
                s = cbook.boxplot_stats(vals)[0]
                s["label"] = ""
                stats.append(s)
                positions.append(base + w)
                colors.append(wcolors[w])
                ax.scatter(base + w + rng.uniform(-0.15, 0.15, vals.size), vals, s=10,
                           color="k", alpha=0.6, zorder=3)
        offset = len(labels) * (len(names) + 1)
        for g, group in enumerate(pub_groups):
            base = offset + g * (len(names) + 1)
            centers.append(base + (len(names) - 1) / 2)
            # The published first 5 min and minutes 5-20 sit where our first two windows do.
            for w, name in enumerate(PUBLISHED_WINDOWS[:len(names)]):
                r = published.get((metric, group, name))
                if r is None:
                    continue
                stats.append({"med": r["median"], "q1": r["box_lo"], "q3": r["box_hi"],
                              "whislo": r["whisker_lo"], "whishi": r["whisker_hi"],
                              "mean": r["mean"], "fliers": [], "label": ""})
                positions.append(base + w)
                colors.append((*wcolors[w][:3], 0.35))
        if stats:
            boxes = ax.bxp(stats, positions=positions, widths=0.7, patch_artist=True,
                           showmeans=True, showfliers=False, medianprops={"color": "k"},
                           meanprops={"marker": "^", "markerfacecolor": "white",
                                      "markeredgecolor": "k", "markersize": 5})
            for patch, color in zip(boxes["boxes"], colors):
                patch.set_facecolor(color)
        if pub_groups:
            ax.axvline(offset - 1, color="0.6", lw=0.8, ls=":")
        ax.set_ylabel(heading)
        ax.grid(axis="y", alpha=0.3)
    pub_names = "|".join(PUBLISHED_WINDOWS[:len(names)])
    crowded = len(centers) > 6
    axes[-1].set_xticks(centers, labels + [f"{g}\n(Kagan 2022,\n{pub_names} min)"
                                           for g in pub_groups],
                        rotation=30 if crowded else 0, ha="right" if crowded else "center")
    handles = [Patch(facecolor=c, label=f"{n} min") for c, n in zip(wcolors, names)]
    axes[0].legend(handles=handles, loc="upper left", fontsize="small", ncols=len(names))
    axes[0].set_title(f"{data.config.name}: gameplay per window (boxes: sessions; "
                      "triangles: means" + ("; faded: published" if pub_groups else "") + ")")
    fig.savefig(path, dpi=110)
    return path


def curves(data: RunData) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """label -> (bin starts, ARL mean, SEM, n sessions) per learning-curve bin."""
    out = {}
    bin_min = data.config.bin_minutes
    for p in data.config.players:
        rows = []
        starts = None
        for seed in data.config.seeds:
            session = data.sessions.get((p.label, seed))
            if session is None:
                continue
            lc = learning_curve(session, bin_min, until_min=p.minutes,
                                long_threshold=data.config.long_threshold)
            starts = lc.bin_starts_min
            rows.append(lc.arl)
        if not rows:
            continue
        m = np.vstack(rows)
        n = np.sum(~np.isnan(m), axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean = np.nanmean(m, axis=0)
            sem = np.where(n > 1, np.nanstd(m, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1)), np.nan)
        out[p.label] = (starts, mean, sem, n)
    return out


def plot_learning_curve(data: RunData, path: Path, published: dict | None) -> Path:
    """ARL per bin (mean +- SEM over sessions) for every group on one plot."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    lines = curves(data)
    colors = _colors(len(data.config.players))
    bin_min = data.config.bin_minutes
    # A ceiling player (the tracker, ARL ~200) would flatten every other curve to the axis:
    # the y axis is cut at 3x the median group's peak (at least 5), and a group above it says so.
    peaks = [np.nanmax(lines[p.label][1] + np.nan_to_num(lines[p.label][2]))
             for p in data.config.players if p.label in lines and np.isfinite(lines[p.label][1]).any()]
    y_top = max(5.0, 3.0 * float(np.median(peaks))) if peaks else None
    for color, p in zip(colors, data.config.players):
        if p.label not in lines:
            continue
        starts, mean, sem, n = lines[p.label]
        x = starts + bin_min / 2
        label = f"{p.label} (n={int(n.max())})"
        if y_top is not None and np.nanmax(mean, initial=0.0) > y_top:
            label += f" (off scale: up to {np.nanmax(mean):.0f})"
        ax.plot(x, mean, "-o", ms=3, color=color, label=label)
        ax.fill_between(x, mean - np.nan_to_num(sem), mean + np.nan_to_num(sem), color=color,
                        alpha=0.2, lw=0)
    x_max = data.config.max_minutes
    if published:
        styles = {"MCC": ("0.25", "--"), "HCC": ("0.45", "-."), "IS": ("0.65", ":")}
        for group, _ in PUBLISHED_GROUPS:
            color, ls = styles[group]
            first = True
            for name in PUBLISHED_WINDOWS:
                r = published.get(("arl", group, name))
                if r is None:
                    continue
                lo, hi = (float(x) for x in name.split("-"))
                if lo >= x_max:
                    continue
                ax.hlines(r["mean"], lo, min(hi, x_max), colors=color, linestyles=ls, lw=1.5,
                          label=f"Kagan 2022 {group} mean" if first else None)
                first = False
    if x_max > 20:
        ax.axvline(20, color="0.5", lw=0.8, ls=":")
        ax.text(20, 1.0, " one session (20 min)", transform=ax.get_xaxis_transform(),
                va="top", fontsize="small", color="0.4")
    ax.set_xlim(0, x_max)
    if y_top is not None:
        ax.set_ylim(0, y_top)
    ax.set_xlabel("game time (min)")
    ax.set_ylabel(f"ARL (hits per rally), {bin_min:g}-min bins")
    ax.set_title(f"{data.config.name}: learning curves (mean ± SEM over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", ncols=2 if len(lines) > 6 else 1)
    fig.savefig(path, dpi=110)
    return path


# --------------------------------------------------------------------------------------------
# The report


def _write_csv(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    def cell(v):
        if isinstance(v, float):
            return "" if math.isnan(v) else f"{v:.6g}"
        return "" if v is None else v

    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([cell(row.get(c)) for c in columns])


TEST_COLUMNS = ("kind", "a", "b", "window_a", "window_b", "metric", "mean_a", "mean_b", "design",
                "n_a", "n_b", "test", "stat", "p", "test2", "stat2", "p2")


def write_report(run_dir: str | Path, config: RunConfig | None = None) -> Path:
    """Write summary.csv, tests.csv, the figures and report.md into the run folder; returns the
    report's path."""
    run_dir = Path(run_dir)
    data = load_run(run_dir, config)
    config = data.config
    reference = _load_reference()
    published = _published(reference)

    _write_csv(run_dir / SUMMARY_CSV, summary_rows(data), SUMMARY_COLUMNS)
    groups = group_rows(data)
    within = within_tests(data)
    between = between_tests(data)
    _write_csv(run_dir / TESTS_CSV, within + between, TEST_COLUMNS)
    figures = []
    if data.sessions:
        figures.append(plot_boxplots(data, run_dir / BOXPLOT_PNG, published))
        figures.append(plot_learning_curve(data, run_dir / CURVE_PNG, published))

    md = _markdown(data, groups, within, between, published, figures)
    path = run_dir / REPORT_MD
    path.write_text(md, encoding="utf-8")
    return path


def _markdown(data: RunData, groups, within, between, published, figures) -> str:
    c = data.config
    study = ("DishBrain protocol (Kagan et al. 2022, Fig. 5)" if c.kind == "experiment"
             else "players compared (Khajehnejad et al. 2025)")
    n_done = len(data.sessions)
    out = [f"# {c.name}: {study}", ""]
    out.append(f"Generated {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} "
               f"from the session logs in `sessions/` ({n_done} of {len(data.specs)} sessions "
               f"finished). Config: `config.toml`; versions, commit and command: "
               f"`manifest.json`; per-session numbers: `{SUMMARY_CSV}`; every test: `{TESTS_CSV}`. "
               f"Regenerate with `dishbrain report {data.run_dir}`.")
    out.append("")
    if data.missing:
        shown = ", ".join(data.missing[:12]) + (" ..." if len(data.missing) > 12 else "")
        out += [f"**Not finished ({len(data.missing)}):** {shown}. Rerun the same command to "
                "finish them.", ""]
    seeds = f"{c.seeds[0]}..{c.seeds[-1]}" if len(c.seeds) > 1 else str(c.seeds[0])
    out.append(f"Seeds {seeds} ({len(c.seeds)} per group); windows "
               f"{', '.join(n + ' min' for n in data.window_names)}; a long rally has more than "
               f"{c.long_threshold} hits; learning-curve bins of {c.bin_minutes:g} min.")
    out.append("")
    out += ["| group | player | condition | options | minutes |", "|---|---|---|---|---|"]
    for p in c.players:
        opts = ", ".join(f"{k}={v}" for k, v in p.options.items()) or "-"
        rest = f" (+{p.rest_minutes:g} rest)" if p.rest_minutes else ""
        out.append(f"| {p.label} | {p.player} | {p.condition or '-'} | {opts} | "
                   f"{p.minutes:g}{rest} |")
    out.append("")

    out += ["## Gameplay per window", "",
            "Mean ± SEM over sessions; n = sessions with at least one completed rally in the "
            "window (a rally counts in the window in which its miss fell).", ""]
    head = ["group", "window", "n", "rallies"] + [h for _, h, _ in METRICS]
    rows = [[r["label"], r["window"], str(r["n"]), str(r["rallies"])]
            + [_mean_pm(r, m, _DIGITS[m]) for m, _, _ in METRICS] for r in groups]
    out += _md_table(head, rows) + [""]

    if published:
        out += ["### Published biological values (Kagan et al. 2022, Fig. 5)", "",
                "Means (medians in parentheses) digitised from the published box plots "
                "(`shared/reference/kagan2022_fig5.csv`); long rallies there have more than 3 "
                "hits.", ""]
        prow = []
        for group, desc in PUBLISHED_GROUPS:
            for name in PUBLISHED_WINDOWS:
                cells = [f"{group} ({desc})", name]
                for metric, _, _ in METRICS:
                    r = published.get((metric, group, name))
                    d = _DIGITS[metric]
                    cells.append("-" if r is None else f"{_f(r['mean'], d)} ({_f(r['median'], d)})")
                prow.append(cells)
        out += _md_table(["group", "window"] + [h for _, h, _ in METRICS], prow) + [""]
    else:
        out += ["(The published values, `../shared/reference/kagan2022_fig5.csv`, are not on "
                "this machine: shown without them.)", ""]

    if data.rests:
        out += ["### Rest recordings before the sessions", ""]
        rrows = []
        for p in c.players:
            vals = [v for (label, _), s in data.rests.items() if label == p.label
                    for v in [rally_arl(s, c.long_threshold)]]
            if vals:
                mean, sem, n = _mean_sem(vals)
                pm = "" if math.isnan(sem) else f" ± {_f(sem)}"
                rrows.append([p.label, str(n), _f(mean) + pm])
        out += _md_table(["group", "n", "ARL over the recording"], rrows) + [""]

    if len(data.window_names) > 1:
        out += ["## Learning within each group", "",
                "First window against each later one, paired by session. Primary: Wilcoxon "
                "signed-rank; beside it: paired t-test (two-sided, uncorrected).", ""]
        head = ["group", "metric", "windows", "n", "mean first", "mean later", "Δ",
                "p Wilcoxon", "p paired t"]
        rows = []
        for r in within:
            d = _DIGITS[r["metric"]]
            rows.append([r["a"], _heading(r["metric"]), f"{r['window_a']} → {r['window_b']}",
                         str(r["n_a"]), _f(r["mean_a"], d), _f(r["mean_b"], d),
                         _f(r["mean_b"] - r["mean_a"], d), _p(r["p"]), _p(r["p2"])])
        out += _md_table(head, rows) + [""]

    if between:
        what = ("every pair of conditions" if c.reference is None
                else f"each player against **{c.reference}**")
        out += ["## Between groups", "",
                f"Tests of {what} in each window. Paired by seed where both groups have the same "
                "seeds (Wilcoxon signed-rank primary, paired t beside it); otherwise unpaired "
                "(Mann-Whitney U primary, Welch t beside it). p primary (secondary); two-sided, "
                "uncorrected.", ""]
        head = ["comparison", "window", "design", "n"] + [f"{h}: means, p" for _, h, _ in METRICS]
        rows = []
        for i in range(0, len(between), len(METRICS)):
            chunk = between[i:i + len(METRICS)]
            r0 = chunk[0]
            n = str(r0["n_a"]) if r0["design"] == "paired" else f"{r0['n_a']} / {r0['n_b']}"
            cells = [f"{r0['a']} vs {r0['b']}", r0["window_a"], r0["design"], n]
            for r in chunk:
                d = _DIGITS[r["metric"]]
                cells.append(f"{_f(r['mean_a'], d)} vs {_f(r['mean_b'], d)}, "
                             f"{_p(r['p'])} ({_p(r['p2'])})")
            rows.append(cells)
        out += _md_table(head, rows) + [""]

    if figures:
        out += ["## Figures", ""]
        for f in figures:
            out += [f"![{f.stem}]({f.name})", ""]
    out += ["## Definitions", ""]
    out += [f"- {h}: {desc}." for _, h, desc in METRICS]
    out += ["- A rally is the run of hits that ends with a miss; only completed rallies count "
            "(a rally cut by the session's end counts if it had hits).", ""]
    return "\n".join(out)


def _heading(metric: str) -> str:
    return next(h for m, h, _ in METRICS if m == metric)


def rally_arl(session: Session, long_threshold: int) -> float:
    """ARL over a whole recording (NaN without a rally)."""
    return rally_metrics(session, 0.0, None, long_threshold).arl
