"""The tests of a run: within each group (first window against each later one, paired by
session) and between the groups the config compares (paired by seed where both have the same
seeds, unpaired otherwise). Within a pair: Wilcoxon signed-rank (primary) and the paired t-test;
unpaired: Mann-Whitney U (primary) and Welch's t-test. Two-sided, uncorrected.

Beside them, ``control_tests``: how issue 17 judges learning. Each Stimulus group against the
control groups of the same player (Yoked, Frozen, Silent, No-feedback), paired by culture, on ARL
in the last window and on its change from the first window; Holm's correction over the controls,
one family per measure (``holm``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from dishbrain.report.loading import METRICS, RunData

__all__ = ["between_tests", "column_mean_sem", "compare_groups", "control_tests", "group_rows",
           "holm", "mean_sem",
           "paired_tests", "unpaired_tests", "within_tests"]

# The conditions a Stimulus group is judged against (issue 17, Stage 1b), in the report's order.
CONTROL_CONDITIONS = ("yoked", "frozen", "silent", "no-feedback")


def mean_sem(values: Sequence[float]) -> tuple[float, float, int]:
    x = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    n = int(x.size)
    if n == 0:
        return math.nan, math.nan, 0
    sem = float(np.std(x, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(np.mean(x)), sem, n


def column_mean_sem(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`mean_sem` of each column of a (sessions x bins) array, NaNs left out: (mean, SEM, n)."""
    cols = [mean_sem(col) for col in np.asarray(rows, dtype=float).T]
    return (np.array([c[0] for c in cols]), np.array([c[1] for c in cols]),
            np.array([c[2] for c in cols], dtype=int))


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
                mean, sem, n = mean_sem(list(data.values(p.label, w, metric).values()))
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
            for metric, _, _ in METRICS:
                early = data.values(p.label, 0, metric)
                late = data.values(p.label, w, metric)
                seeds = sorted(set(early) & set(late))
                x = [early[s] for s in seeds]
                y = [late[s] for s in seeds]
                result = paired_tests(x, y)
                rows.append({"kind": "within", "a": p.label, "b": p.label,
                             "window_a": names[0], "window_b": names[w], "metric": metric,
                             "mean_a": mean_sem(x)[0], "mean_b": mean_sem(y)[0], **result})
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
                             "mean_a": mean_sem(list(va.values()))[0],
                             "mean_b": mean_sem(list(vb.values()))[0], **result})
    return rows


def holm(pvalues: list[float]) -> list[float]:
    """Holm-adjusted p-values (statsmodels); NaN stays NaN and is not counted in the family."""
    from statsmodels.stats.multitest import multipletests

    idx = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    out = [math.nan] * len(pvalues)
    if idx:
        adjusted = multipletests([pvalues[i] for i in idx], method="holm")[1]
        for i, p in zip(idx, adjusted):
            out[i] = float(p)
    return out


def control_tests(data: RunData, metric: str = "arl") -> list[dict[str, Any]]:
    """Each Stimulus group against the controls of the same player, paired by culture: the
    metric in the last window (kind ``control-level``) and its change from the first window
    (``control-change``). Wilcoxon signed-rank (primary) and paired t; ``p_holm``: the Wilcoxon
    p adjusted by Holm over the controls, one family per kind; ``higher``: the cultures on which
    Stimulus is higher. Empty without a Stimulus group, a control, or two windows."""
    names = data.window_names
    if len(names) < 2:
        return []
    rows = []
    for stim in data.config.players:
        if stim.condition != "stimulus":
            continue
        controls = [p for c in CONTROL_CONDITIONS for p in data.config.players
                    if p.condition == c and p.player == stim.player]
        last = max((w for w in range(1, len(names)) if data.reaches(stim.label, w)), default=None)
        if last is None:
            continue
        controls = [ctl for ctl in controls if data.reaches(ctl.label, last)]
        # seed -> value per group and measure: the last window, and its change from the first
        measures = {}
        for label in [stim.label] + [ctl.label for ctl in controls]:
            late, early = data.values(label, last, metric), data.values(label, 0, metric)
            measures[label] = {"control-level": late,
                               "control-change": {s: late[s] - early[s]
                                                  for s in set(late) & set(early)}}
        for kind in ("control-level", "control-change"):
            family = []
            a = measures[stim.label][kind]
            for ctl in controls:
                b = measures[ctl.label][kind]
                seeds = sorted(set(a) & set(b))
                x = [a[s] for s in seeds]
                y = [b[s] for s in seeds]
                family.append({"kind": kind, "a": stim.label, "b": ctl.label,
                               "window_a": names[0] if kind == "control-change" else names[last],
                               "window_b": names[last], "metric": metric,
                               "mean_a": mean_sem(x)[0], "mean_b": mean_sem(y)[0],
                               "higher": sum(u > v for u, v in zip(x, y)),
                               **paired_tests(x, y)})
            for row, p in zip(family, holm([r["p"] for r in family])):
                row["p_holm"] = p
            rows += family
    return rows
