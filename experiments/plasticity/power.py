"""How many cultures a protocol needs: the null's spread, measured from finished runs.

    python experiments/plasticity/power.py results/controls results/controls-fresh

For each run folder (a ``dishbrain experiment`` run with windows 0-5 and 5-20 and a Stimulus
group): the log ratio ARL 5-20 / ARL 0-5 of every session in the control conditions (Yoked,
Frozen, Silent, No-feedback: none of them can learn from contingent feedback) and, per culture,
Stimulus's log ratio minus Frozen's. From their standard deviations: the effect size of the
goal's x1.3, the power of a paired t-test on the log ratios at 16 cultures, and the cultures
needed for 80 % power (two-sided, alpha 0.05; statsmodels ``TTestPower``). A t-test on log
ratios stands in for the Wilcoxon test the report uses (whose asymptotic efficiency against the
t-test is 3/pi = 0.955 for normal data: it needs ~5 % more cultures). ARL below 0.05 is floored
to keep the log finite.
"""

from __future__ import annotations

import argparse
import collections
import csv
import math
import sys
from pathlib import Path

import numpy as np

from dishbrain.report.statistics import CONTROL_CONDITIONS

FLOOR = 0.05
GOAL = 1.3


def log_ratios(run: Path) -> tuple[list[float], list[float]]:
    """(control sessions' log ratios, per-culture Stimulus-minus-Frozen log ratios) of a run."""
    path = run / "summary.csv"
    if not path.exists():
        sys.exit(f"power.py: {path} not found (a finished `dishbrain experiment` run folder?)")
    arl: dict[tuple[str, int], dict[str, float]] = collections.defaultdict(dict)
    for row in csv.DictReader(path.open()):
        arl[(row["condition"], int(row["seed"]))][row["window"]] = float(row["arl"])

    def ratio(key):
        w = arl.get(key, {})
        if "0-5" not in w or "5-20" not in w or math.isnan(w["0-5"]) or math.isnan(w["5-20"]):
            return None
        return math.log(max(w["5-20"], FLOOR) / max(w["0-5"], FLOOR))

    null = [r for key in arl if key[0] in CONTROL_CONDITIONS if (r := ratio(key)) is not None]
    paired = []
    for cond, seed in arl:
        if cond == "stimulus":
            a, b = ratio(("stimulus", seed)), ratio(("frozen", seed))
            if a is not None and b is not None:
                paired.append(a - b)
    return null, paired


def main(argv=None) -> int:
    from statsmodels.stats.power import TTestPower

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="finished experiment run folders")
    parser.add_argument("--cultures", type=int, default=16, help="the protocol's size (16)")
    args = parser.parse_args(argv)
    null, paired = [], []
    for run in args.runs:
        a, b = log_ratios(run)
        null += a
        paired += b
    if len(null) < 3:
        sys.exit("power.py: fewer than 3 control sessions with both windows")
    x = np.array(null)
    print(f"control sessions: {x.size}; ARL 5-20 / 0-5: geometric mean x{math.exp(x.mean()):.2f}, "
          f"5-95 % x{math.exp(np.percentile(x, 5)):.2f} .. x{math.exp(np.percentile(x, 95)):.2f}")
    tp = TTestPower()
    rows = [("Stimulus within its own session", x.std(ddof=1), x.size)]
    if len(paired) >= 3:
        rows.append(("Stimulus against Frozen, paired", np.std(paired, ddof=1), len(paired)))
    for name, sd, n in rows:
        d = math.log(GOAL) / sd
        need = tp.solve_power(effect_size=d, alpha=0.05, power=0.8)
        print(f"{name}: sd of log ratios {sd:.3f} (from {n}); x{GOAL} is d = {d:.2f}; power at "
              f"{args.cultures} cultures {tp.power(d, args.cultures, 0.05):.2f}; "
              f"80 % power needs {math.ceil(need)} cultures")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
