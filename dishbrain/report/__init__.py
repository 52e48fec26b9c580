"""The report of a run folder, in the form of Kagan et al. 2022 Fig. 5, regenerated from the logs.

Kagan et al. 2022 (Neuron 110:3952, Fig. 5) compare the gameplay of cultures in the first 5
minutes of a 20-minute session with minutes 5-20: average rally length (ARL, hits per rally),
aces (% rallies with no hit) and long rallies (% rallies with more than 3 hits), per condition.
Khajehnejad et al. 2025 (Cyborg and Bionic Systems 6:0336) put DQN, A2C and PPO beside the
cultures on the same metrics. This package writes, for a run folder of ``dishbrain.experiment``:

- ``summary.csv``: one row per session (and rest recording) x window;
- ``tests.csv``: every statistical test below, one row each;
- ``report.md``: per group and window mean, SEM and n of each metric; the published biological
  values beside them (``shared/reference/kagan2022_fig5.csv``, where present); a paired test of
  the first window against each later one within each group; tests between groups in each
  window; each Stimulus group against its controls (Yoked, Frozen, Silent, No-feedback) on ARL
  in the last window and on its change, Holm-corrected over the controls; the figures;
- ``fig5_boxplots.png`` (per-session values per group and window, published boxes beside them)
  and ``learning_curve.png`` (ARL per bin, mean +- SEM per group, published means beside it);
- for a compare run whose players play longer than its reference (sample efficiency,
  Khajehnejad et al. 2025): a table of the game time each player needs to reach the reference's
  and the published cultures' ARL, and ``sample_efficiency.png`` (``efficiency``).

Tests. Within a group, windows are paired by session: the Wilcoxon signed-rank test is primary
(small n, bounded and skewed metrics), the paired t-test is reported beside it. Between groups:
where both groups have values for the same seeds (the same culture under two conditions, or two
players on the same serves) the same paired pair of tests; otherwise Mann-Whitney U (primary) and
Welch's t-test. p-values are two-sided and not corrected for multiple comparisons, except in
the Stimulus-against-controls table (Holm over the controls, stated there).

    dishbrain report runs/dishbrain-quick

Modules: ``loading`` (RunData, load_run: the run folder's finished sessions), ``statistics``,
``efficiency``, ``plots``, ``markdown``; this file writes them out. The report depends on the run
folder (``dishbrain.experiment.runfolder``), never on the runner.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

from dishbrain.experiment.config import RunConfig
from dishbrain.report.efficiency import sample_efficiency
from dishbrain.report.loading import (
    METRICS,
    SUMMARY_COLUMNS,
    RunData,
    load_published,
    load_run,
    summary_rows,
)
from dishbrain.report.markdown import format_group_table, markdown, rally_arl
from dishbrain.report.plots import (
    curves,
    plot_boxplots,
    plot_learning_curve,
    plot_sample_efficiency,
)
from dishbrain.report.statistics import (
    between_tests,
    compare_groups,
    control_tests,
    group_rows,
    paired_tests,
    unpaired_tests,
    within_tests,
)

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
    "control_tests",
    "curves",
    "format_group_table",
    "plot_boxplots",
    "plot_learning_curve",
    "plot_sample_efficiency",
    "sample_efficiency",
    "rally_arl",
    "summary_rows",
    "write_report",
]

SUMMARY_CSV = "summary.csv"
TESTS_CSV = "tests.csv"
REPORT_MD = "report.md"
BOXPLOT_PNG = "fig5_boxplots.png"
CURVE_PNG = "learning_curve.png"
EFFICIENCY_PNG = "sample_efficiency.png"


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
                "n_a", "n_b", "test", "stat", "p", "test2", "stat2", "p2", "higher", "p_holm")


def write_report(run_dir: str | Path, config: RunConfig | None = None,
                 data: RunData | None = None) -> Path:
    """Write summary.csv, tests.csv, the figures and report.md into the run folder; returns the
    report's path. ``data``: the run folder's `load_run`, where the caller has it already (the
    logs are then not read again)."""
    run_dir = Path(run_dir)
    if data is None:
        data = load_run(run_dir, config)
    config = data.config
    published = load_published()

    _write_csv(run_dir / SUMMARY_CSV, summary_rows(data), SUMMARY_COLUMNS)
    groups = group_rows(data)
    within = within_tests(data)
    between = between_tests(data)
    controls = control_tests(data)
    _write_csv(run_dir / TESTS_CSV, within + between + controls, TEST_COLUMNS)
    figures = []
    efficiency = sample_efficiency(data, published) if data.sessions else None
    if data.sessions:
        figures.append(plot_boxplots(data, run_dir / BOXPLOT_PNG, published))
        figures.append(plot_learning_curve(data, run_dir / CURVE_PNG, published))
    if efficiency is not None:
        figures.append(plot_sample_efficiency(efficiency, run_dir / EFFICIENCY_PNG, config.name))

    md = markdown(data, groups, within, between, published, figures,
                  {"summary": SUMMARY_CSV, "tests": TESTS_CSV}, controls, efficiency)
    path = run_dir / REPORT_MD
    path.write_text(md, encoding="utf-8")
    return path
