"""experiments/plasticity/power.py: the null's spread and the cultures a protocol needs."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "plasticity" / "power.py"


def _run_folder(path: Path, ratios: dict[str, list[float]]) -> Path:
    path.mkdir()
    with open(path / "summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "condition", "seed", "window", "arl"])
        for cond, values in ratios.items():
            for seed, r in enumerate(values):
                w.writerow([cond, cond, seed, "0-5", 1.0])
                w.writerow([cond, cond, seed, "5-20", r])
    return path


def test_power_from_the_spread_of_the_controls(tmp_path):
    null = [0.5, 2.0, 1.0, 0.8, 1.25, 1.0]
    run = _run_folder(tmp_path / "r", {"stimulus": [1.0] * 6, "frozen": null, "silent": null})
    out = subprocess.run([sys.executable, str(SCRIPT), str(run)], capture_output=True, text=True,
                         check=True).stdout
    sd = float(__import__("numpy").std([math.log(x) for x in null * 2], ddof=1))
    assert "control sessions: 12;" in out
    assert f"sd of log ratios {sd:.3f} (from 12)" in out
    assert f"x1.3 is d = {math.log(1.3) / sd:.2f}" in out
    # Stimulus flat against these Frozen ratios: the paired spread is that of the Frozen ratios
    assert "Stimulus against Frozen, paired" in out and "(from 6)" in out


def test_a_folder_without_a_summary_is_named(tmp_path):
    out = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True,
                         text=True)
    assert out.returncode != 0 and "summary.csv not found" in out.stderr
