"""The report as text: report.md, and the plain table the CLI prints."""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence

from dishbrain.metrics import Session, rally_metrics
from dishbrain.report.loading import METRICS, PUBLISHED_GROUPS, PUBLISHED_WINDOWS, RunData
from dishbrain.report.statistics import mean_sem

__all__ = ["efficiency_lines", "format_group_table", "markdown", "rally_arl"]


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


def markdown(data: RunData, groups, within, between, published, figures, files,
             controls=(), efficiency=None) -> str:
    """report.md; `files` names the CSVs it points to (summary, tests)."""
    c = data.config
    study = ("DishBrain protocol (Kagan et al. 2022, Fig. 5)" if c.kind == "experiment"
             else "players compared (Khajehnejad et al. 2025)")
    n_done = len(data.sessions)
    out = [f"# {c.name}: {study}", ""]
    out.append(f"Generated {_dt.datetime.now().astimezone().isoformat(timespec='seconds')} "
               f"from the session logs in `sessions/` ({n_done} of {len(data.specs)} sessions "
               f"finished). Config: `config.toml`; versions, commit and command: "
               f"`manifest.json`; per-session numbers: `{files['summary']}`; every test: "
               f"`{files['tests']}`. "
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
                mean, sem, n = mean_sem(vals)
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

    if controls:
        out += ["## Stimulus against its controls", "",
                "How learning is judged (issue 17): each Stimulus group against the controls of "
                "the same player, paired by culture, on ARL in the last window and on its change "
                "from the first. Wilcoxon signed-rank (paired t beside it); Holm's correction over "
                "the controls, one family per measure; \"higher\": the cultures on which "
                "Stimulus is higher.", ""]
        head = ["comparison", "measure", "n", "means", "higher", "p Wilcoxon", "p Holm",
                "p paired t"]
        rows = []
        for r in controls:
            measure = (f"ARL {r['window_b']}" if r["kind"] == "control-level"
                       else f"ARL change {r['window_a']} → {r['window_b']}")
            rows.append([f"{r['a']} vs {r['b']}", measure, str(r["n_a"]),
                         f"{_f(r['mean_a'])} vs {_f(r['mean_b'])}", f"{r['higher']} of {r['n_a']}",
                         _p(r["p"]), _p(r["p_holm"]), _p(r["p2"])])
        out += _md_table(head, rows) + [""]

    if efficiency is not None:
        out += efficiency_lines(efficiency)

    if figures:
        out += ["## Figures", ""]
        for f in figures:
            out += [f"![{f.stem}]({f.name})", ""]
    out += ["## Definitions", ""]
    out += [f"- {h}: {desc}." for _, h, desc in METRICS]
    out += ["- A rally is the run of hits that ends with a miss; only completed rallies count "
            "(a rally cut by the session's end counts if it had hits).", ""]
    return "\n".join(out)


def efficiency_lines(eff) -> list[str]:
    """The sample-efficiency section (`dishbrain.report.efficiency.Efficiency`)."""
    b = eff.block_min
    out = ["## Sample efficiency", "",
           f"Game time each player needs to reach a level of play (Khajehnejad et al. 2025): ARL "
           f"per block of {b:g} minutes (the length of {eff.reference}'s session), mean over "
           "seeds; a rally counts in the block in which its miss fell. \"mean curve\": the end of "
           "the first block whose mean ARL reaches the level, and (\"for good\") of the first "
           "from which every later block stays there; \"seeds\": how many seeds reach it within "
           "their session, and the median of their first such block's end.", ""]
    if not eff.levels:
        return out + ["(No level to read: the reference has no rally in a window within its "
                      "session and the published values are not on this machine.)", ""]
    out += ["Levels: " + "; ".join(f"{name} = {value:.2f}" for name, value in eff.levels)
            + ".", ""]
    head = ["player", "blocks", f"ARL first {b:g} min", f"ARL last {b:g} min"]
    for name, value in eff.levels:
        head.append(f"to reach {value:.2f} ({name.split(',')[0].split(' (')[0]}): mean curve; "
                    "seeds")
    rows = []
    for cv in eff.curves:
        mean, sem = cv.mean, cv.sem
        cells = [cv.label, str(len(mean)), f"{_f(mean[0])} ± {_f(sem[0])}",
                 f"{_f(mean[-1])} ± {_f(sem[-1])}"]
        for _, value in eff.levels:
            r = cv.reach(value, b)
            first = "not within" if r["mean_min"] is None else f"{r['mean_min']:g} min"
            stays = ("" if r["mean_min"] is None else ", for good: not" if r["stays_min"] is None
                     else f", for good {r['stays_min']:g} min")
            med = "" if r["median_min"] is None else f", median {r['median_min']:g} min"
            cells.append(f"{first}{stays}; {r['seeds_reaching']} of {r['seeds']}{med}")
        rows.append(cells)
    return out + _md_table(head, rows) + [""]


def _heading(metric: str) -> str:
    return next(h for m, h, _ in METRICS if m == metric)


def rally_arl(session: Session, long_threshold: int) -> float:
    """ARL over a whole recording (NaN without a rally)."""
    return rally_metrics(session, 0.0, None, long_threshold).arl
