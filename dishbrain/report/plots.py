"""The report's figures: Fig. 5-style box plots per group and window (published boxes beside
them), learning curves (ARL per bin, mean +- SEM) and, for a compare run with players longer than
its reference, sample efficiency (ARL per sessions' worth of game time against the reference's
and the published levels, `dishbrain.report.efficiency`). matplotlib, off-screen (Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dishbrain.report.loading import METRICS, PUBLISHED_GROUPS, PUBLISHED_WINDOWS, RunData
from dishbrain.report.statistics import column_mean_sem

__all__ = ["curves", "plot_boxplots", "plot_learning_curve", "plot_sample_efficiency"]


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
    for p in data.config.players:
        starts, per_seed = data.bin_arl(p.label, data.config.bin_minutes)
        if per_seed:
            out[p.label] = (starts, *column_mean_sem(np.vstack(list(per_seed.values()))))
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
             for p in data.config.players
             if p.label in lines and np.isfinite(lines[p.label][1]).any()]
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


def plot_sample_efficiency(eff, path: Path, title: str) -> Path:
    """ARL per block of the reference's session length (mean +- SEM over seeds), log scale, one
    line per player, the reference's own block as a point and each level as a dashed line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 5.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    colors = _colors(len(eff.curves) + 1)
    floor = 0.05        # a block's ARL can be 0 (all aces): drawn at the axis' floor
    for color, cv in zip(colors[1:], eff.curves):
        x = cv.block_starts_min + eff.block_min / 2
        mean, sem = cv.mean, np.nan_to_num(cv.sem)
        ax.plot(x, np.maximum(mean, floor), "-o", ms=3, color=color,
                label=f"{cv.label} (n={int(cv.n.max())})")
        ax.fill_between(x, np.maximum(mean - sem, floor), np.maximum(mean + sem, floor),
                        color=color, alpha=0.15, lw=0)
    if eff.reference_curve is not None:
        rc = eff.reference_curve
        ax.errorbar(rc.block_starts_min + eff.block_min / 2, np.maximum(rc.mean, floor),
                    yerr=np.nan_to_num(rc.sem), fmt="s", ms=7, color=colors[0], capsize=3,
                    label=f"{rc.label} (its session; n={int(rc.n.max())})")
    styles = ["--", "-.", ":"]
    for (name, value), ls in zip(eff.levels, styles * 3):
        ax.axhline(value, color="0.3", ls=ls, lw=1.2, label=f"{name}: {value:.2f}")
    ax.set_yscale("log")
    ax.set_xlim(0, max(cv.block_starts_min[-1] + eff.block_min for cv in eff.curves))
    ax.set_xlabel("game time (min)")
    ax.set_ylabel(f"ARL (hits per rally) per {eff.block_min:g}-min block, log scale")
    ax.set_title(f"{title}: sample efficiency (mean ± SEM over seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.savefig(path, dpi=110)
    return path
