"""The comparative report of a sweep folder: one row per variant, the held-out block apart.

Reads ``sweep.json`` (the variants, their blocks and run folders, written by
``dishbrain.experiment.sweep``) and each variant's run folder through `load_run`, and reuses the
run report's tests (`within_tests`, `between_tests`: Wilcoxon signed-rank, paired by culture).
Per variant and group (a condition, or a player in a comparison):

- ARL in the first window -> the last window the group reaches, and their ratio (mean late /
  mean early over the cultures with rallies in both), with a 95 % bootstrap CI (percentile,
  cultures resampled in pairs; scipy.stats.bootstrap, 9,999 resamples, fixed seed);
- p of the paired first-vs-last test (within the group);
- the group against the reference (Stimulus against each control condition, or a player against
  the comparison's reference) in the last window, paired by culture;
- aces % and long-rally % in the first and last window.

Multiple comparisons: within each block (tuning, held-out) the primary p-values of the table
(every within-group and every between-group test in it) are one family, corrected with Holm's
step-down method (statsmodels.stats.multitest.multipletests, method "holm"; Holm 1979, Scand J
Statist 6:65), which controls the family-wise error rate; both raw and adjusted p are shown.
The held-out block is a separate family: it tests what the tuning block suggested.

Writes ``report.md``, ``sweep.csv`` (every number of the tables) and ``sweep_ratios.png``.
Never imports the runner.
"""

from __future__ import annotations

import csv
import datetime as _dt
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dishbrain.report.loading import RunData, load_run
from dishbrain.report.statistics import between_tests, holm, mean_sem, within_tests

__all__ = ["SweepRow", "holm", "ratio_ci", "sweep_rows", "write_sweep_report"]

INDEX_NAME = "sweep.json"   # written by dishbrain.experiment.sweep
REPORT_MD = "report.md"
CSV_NAME = "sweep.csv"
FIGURE = "sweep_ratios.png"
BOOTSTRAP_RESAMPLES = 9999


@dataclass
class SweepRow:
    block: str
    variant: str
    group: str
    window_a: str
    window_b: str
    n: int
    arl_a: float
    arl_b: float
    ratio: float
    ci_lo: float
    ci_hi: float
    p_within: float
    versus: str
    p_versus: float
    aces_a: float
    aces_b: float
    long_a: float
    long_b: float
    p_within_holm: float = math.nan
    p_versus_holm: float = math.nan


def ratio_ci(early: list[float], late: list[float]) -> tuple[float, float, float]:
    """mean(late) / mean(early) and its 95 % percentile bootstrap CI (pairs resampled)."""
    from scipy import stats

    x, y = np.asarray(early, float), np.asarray(late, float)
    if x.size == 0 or x.mean() <= 0:
        return math.nan, math.nan, math.nan
    ratio = float(y.mean() / x.mean())
    if x.size < 3:
        return ratio, math.nan, math.nan

    def statistic(a, b, axis=-1):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.mean(b, axis=axis) / np.mean(a, axis=axis)

    res = stats.bootstrap((x, y), statistic, paired=True, vectorized=True,
                          n_resamples=BOOTSTRAP_RESAMPLES, confidence_level=0.95,
                          method="percentile", rng=np.random.default_rng(0))
    lo, hi = res.confidence_interval
    return ratio, float(lo), float(hi)


def _reached(data: RunData, label: str) -> list[int]:
    return [w for w in range(len(data.window_names)) if data.reaches(label, w)]


def _reference(data: RunData) -> str | None:
    c = data.config
    if c.reference is not None:
        return c.reference
    return "stimulus" if "stimulus" in c.labels else None


def _rows_of(block: str, variant: str, data: RunData) -> list[SweepRow]:
    names = data.window_names
    within = {(r["a"], r["window_b"], r["metric"]): r for r in within_tests(data)}
    between = {(r["a"], r["b"], r["window_a"], r["metric"]): r for r in between_tests(data)}
    ref = _reference(data)
    rows = []
    for p in data.config.players:
        reached = _reached(data, p.label)
        if not reached:
            continue
        a, b = reached[0], reached[-1]
        early, late = data.values(p.label, a, "arl"), data.values(p.label, b, "arl")
        seeds = sorted(set(early) & set(late))
        ratio, lo, hi = ratio_ci([early[s] for s in seeds], [late[s] for s in seeds])
        w = within.get((p.label, names[b], "arl")) if b != a else None
        versus, p_versus = "", math.nan
        if ref is not None and p.label != ref:
            t = between.get((ref, p.label, names[b], "arl"))
            if t is None:  # the reference does not reach this window: the last both reach
                common = [x for x in reached if data.reaches(ref, x)]
                t = between.get((ref, p.label, names[common[-1]], "arl")) if common else None
            if t is not None:
                versus, p_versus = f"{ref} vs {p.label} ({t['window_a']})", t["p"]

        def m(metric, w_index, label=p.label):
            return mean_sem(list(data.values(label, w_index, metric).values()))[0]

        rows.append(SweepRow(
            block=block, variant=variant, group=p.label, window_a=names[a], window_b=names[b],
            n=len(seeds), arl_a=m("arl", a), arl_b=m("arl", b), ratio=ratio, ci_lo=lo, ci_hi=hi,
            p_within=w["p"] if w else math.nan, versus=versus, p_versus=p_versus,
            aces_a=m("aces_pct", a), aces_b=m("aces_pct", b),
            long_a=m("long_pct", a), long_b=m("long_pct", b)))
    return rows


def sweep_rows(out: str | Path, loaded: dict[str, RunData] | None = None
               ) -> tuple[dict[str, Any], list[SweepRow], dict[str, RunData]]:
    """The sweep's index, its rows (Holm-adjusted per block) and each run's data (``loaded``:
    runs already read, by folder name, which are not read again)."""
    out = Path(out)
    index = json.loads((out / INDEX_NAME).read_text(encoding="utf-8"))
    rows: list[SweepRow] = []
    datas = {}
    for run in index["runs"]:
        data = (loaded or {}).get(run["folder"])
        if data is None:
            data = load_run(out / run["folder"])
        datas[run["folder"]] = data
        rows += _rows_of(run["block"], run["name"], data)
    for block in {r.block for r in rows}:
        part = [r for r in rows if r.block == block]
        family = [r.p_within for r in part] + [r.p_versus for r in part]
        adjusted = holm(family)
        for r, q in zip(part, adjusted[:len(part)]):
            r.p_within_holm = q
        for r, q in zip(part, adjusted[len(part):]):
            r.p_versus_holm = q
    return index, rows, datas


def _f(v: float, d: int = 2) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.{d}f}"


def _p(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else ("<0.001" if v < 0.001 else f"{v:.3f}")


def _ratio(r: SweepRow) -> str:
    ci = "" if math.isnan(r.ci_lo) else f" [{_f(r.ci_lo)}, {_f(r.ci_hi)}]"
    return f"x{_f(r.ratio)}{ci}"


def _family_size(rows: list[SweepRow]) -> int:
    return sum(not math.isnan(p) for r in rows for p in (r.p_within, r.p_versus))


def _wide_table(rows: list[SweepRow], groups: list[str]) -> list[str]:
    """Experiment sweeps: a row per variant, the conditions side by side."""
    head = ["variant", "n"]
    for g in groups:
        head.append(f"{g}: ARL early → late, ratio [95% CI], p (Holm)")
    head += ["vs controls, late window: p (Holm)", f"aces % ({groups[0]})",
             f"long % ({groups[0]})"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant in dict.fromkeys(r.variant for r in rows):
        mine = {r.group: r for r in rows if r.variant == variant}
        n = max((r.n for r in mine.values()), default=0)
        cells = [variant, str(n)]
        for g in groups:
            r = mine.get(g)
            cells.append("-" if r is None else
                         f"{_f(r.arl_a)} → {_f(r.arl_b)}, {_ratio(r)}, "
                         f"{_p(r.p_within)} ({_p(r.p_within_holm)})")
        vs = [f"{r.group}: {_p(r.p_versus)} ({_p(r.p_versus_holm)})"
              for r in mine.values() if r.versus]
        cells.append("; ".join(vs) or "-")
        first = mine.get(groups[0])
        cells.append("-" if first is None else f"{_f(first.aces_a, 1)} → {_f(first.aces_b, 1)}")
        cells.append("-" if first is None else f"{_f(first.long_a, 1)} → {_f(first.long_b, 1)}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _long_table(rows: list[SweepRow]) -> list[str]:
    """Comparison sweeps: a row per variant and player."""
    head = ["variant", "player", "n", "windows", "ARL early → late", "ratio [95% CI]",
            "p (Holm)", "vs reference: p (Holm)", "aces %", "long %"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r.variant, r.group, str(r.n), f"{r.window_a} → {r.window_b}",
            f"{_f(r.arl_a)} → {_f(r.arl_b)}", _ratio(r),
            f"{_p(r.p_within)} ({_p(r.p_within_holm)})",
            f"{_p(r.p_versus)} ({_p(r.p_versus_holm)})" if r.versus else "-",
            f"{_f(r.aces_a, 1)} → {_f(r.aces_b, 1)}", f"{_f(r.long_a, 1)} → {_f(r.long_b, 1)}",
        ]) + " |")
    return lines


def plot_ratios(rows: list[SweepRow], path: Path, title: str) -> Path:
    """ARL ratio (last / first window) with its 95 % CI, per variant and group; held-out apart."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    blocks = [b for b in ("tuning", "heldout") if any(r.block == b for r in rows)]
    groups = list(dict.fromkeys(r.group for r in rows))
    cmap = colormaps["tab10" if len(groups) <= 10 else "tab20"]
    widths = [max(1, len({r.variant for r in rows if r.block == b})) for b in blocks]
    fig = Figure(figsize=(max(6.0, 0.9 * sum(widths) + 3), 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(blocks), squeeze=False, sharey=True,
                        gridspec_kw={"width_ratios": widths})[0]
    step = 0.8 / max(1, len(groups))
    for ax, block in zip(axes, blocks):
        part = [r for r in rows if r.block == block]
        variants = list(dict.fromkeys(r.variant for r in part))
        for g_i, g in enumerate(groups):
            xs, ys, lo, hi = [], [], [], []
            for v_i, v in enumerate(variants):
                r = next((r for r in part if r.variant == v and r.group == g), None)
                if r is None or math.isnan(r.ratio):
                    continue
                xs.append(v_i - 0.4 + step * (g_i + 0.5))
                ys.append(r.ratio)
                lo.append(r.ratio - r.ci_lo if not math.isnan(r.ci_lo) else 0.0)
                hi.append(r.ci_hi - r.ratio if not math.isnan(r.ci_hi) else 0.0)
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o", capsize=3, color=cmap(g_i % cmap.N),
                        label=g)
        ax.axhline(1.0, color="0.5", lw=0.8, ls="--")
        if all(r.ratio > 0 and (math.isnan(r.ci_lo) or r.ci_lo > 0) for r in rows
               if not math.isnan(r.ratio)):
            ax.set_yscale("log")  # ratios: x2 and x0.5 are the same distance from 1
        ax.set_xticks(range(len(variants)), variants, rotation=30 if len(variants) > 4 else 0,
                      ha="right" if len(variants) > 4 else "center")
        ax.set_title("held-out seeds" if block == "heldout" else "tuning seeds")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("ARL ratio, last / first window (95% CI)")
    axes[0].legend(fontsize="small")
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    return path


def write_reports(out: str | Path, loaded: dict[str, RunData]) -> tuple[list[Path], Path]:
    """Each variant's report (``dishbrain.report.write_report``, for the variants with finished
    sessions) and the sweep's, from the variants' loaded logs (``loaded``: folder name under
    ``out`` -> its RunData, each read once). Returns (the variants' reports, the sweep report).
    Used by `run_sweep` and by `dishbrain report SWEEP_FOLDER`."""
    from dishbrain.report import write_report

    out = Path(out)
    written = [write_report(out / folder, data.config, data)
               for folder, data in loaded.items() if data.sessions]
    return written, write_sweep_report(out, loaded)


def write_sweep_report(out: str | Path, loaded: dict[str, RunData] | None = None) -> Path:
    """Write report.md, sweep.csv and sweep_ratios.png into the sweep folder (``loaded``: as
    `sweep_rows`)."""
    out = Path(out)
    index, rows, datas = sweep_rows(out, loaded)
    with open(out / CSV_NAME, "w", newline="", encoding="utf-8") as f:
        fields = list(SweepRow.__dataclass_fields__)
        writer = csv.writer(f)
        writer.writerow(fields)
        for r in rows:
            writer.writerow(["" if isinstance(v, float) and math.isnan(v) else
                             (f"{v:.6g}" if isinstance(v, float) else v)
                             for v in (getattr(r, k) for k in fields)])
    figure = plot_ratios(rows, out / FIGURE, f"{index['name']}: ARL ratio per variant") \
        if rows else None

    kind = index["kind"]
    done = sum(len(d.sessions) for d in datas.values())
    planned = sum(len(d.specs) for d in datas.values())
    md = [f"# Sweep {index['name']}", "",
          f"Generated {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} from "
          f"{len(index['runs'])} run folders ({done} of {planned} sessions finished). The sweep: "
          f"`sweep.toml`; every number below: `{CSV_NAME}`; each variant's full report: "
          f"`<folder>/report.md`. Regenerate with `dishbrain report {out}` (from the logs, "
          f"nothing played); `dishbrain sweep <SWEEP.toml> --out {out}` plays what is left "
          "and regenerates them too.", ""]
    md += ["| variant | block | folder | seeds | overrides |", "|---|---|---|---|---|"]
    for run in index["runs"]:
        s = run["seeds"]
        sets = ", ".join(f"`{k} = {json.dumps(v)}`" for k, v in run["overrides"].items()) or "-"
        md.append(f"| {run['name']} | {run['block']} | `{run['folder']}` | "
                  f"{s[0]}..{s[-1]} ({len(s)}) | {sets} |")
    md.append("")
    missing = [m for d in datas.values() for m in d.missing]
    if missing:
        md += [f"**Not finished ({len(missing)} sessions):** rerun the same command to finish "
               "them.", ""]
    md += ["ARL = hits per rally (Kagan et al. 2022, Fig. 5). Ratio = mean ARL in the last "
           "window / mean ARL in the first, over the cultures with rallies in both; 95 % CI: "
           f"percentile bootstrap, cultures resampled in pairs ({BOOTSTRAP_RESAMPLES:,} "
           "resamples, seed 0). p: Wilcoxon signed-rank, paired by culture, two-sided; in "
           "parentheses the Holm-adjusted p over the family of every p in the block's table "
           "(statsmodels multipletests, method holm: family-wise error rate).", ""]
    for block, title in (("tuning", "Tuning seeds"), ("heldout", "Held-out seeds")):
        part = [r for r in rows if r.block == block]
        if not part:
            continue
        md += [f"## {title}", "", f"Holm family: {_family_size(part)} p-values.", ""]
        if kind == "experiment":
            groups = list(dict.fromkeys(r.group for r in part))
            md += _wide_table(part, groups)
            md += ["", "Stimulus vs controls: paired Wilcoxon of the late window's ARL, Stimulus "
                   "against each other condition on the same cultures.", ""]
        else:
            md += _long_table(part) + [""]
    if figure is not None:
        md += ["## Figure", "", f"![ARL ratio per variant]({figure.name})", ""]
    path = out / REPORT_MD
    path.write_text("\n".join(md), encoding="utf-8")
    return path
