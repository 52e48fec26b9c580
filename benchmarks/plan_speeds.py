"""The speeds behind `dishbrain sweep --dry-run`'s estimate, measured on this machine in one run.

    python benchmarks/plan_speeds.py [--sizes 1000 5000 10000] [--rl-steps 20000]

Measures the culture's game loop in x real time (a Stimulus session, seed 0, compiled backend
per size, and the runtime backend at 1,000 neurons; builds done before timing), a random
player's session steps/s, and each RL player's steady steps/s on one core (DQN, A2C, PPO x
positions, stim, image over --rl-steps steps; DQN trains from its 1,000th step), one at a time.
Every measurement is bracketed by two runs of the probe (`dishbrain.experiment.sweep.
machine_probe`), printed beside it; the constants to put in dishbrain/experiment/plan.py are
printed last, the speeds as measured and the run's median probe as PROBE_AT_MEASUREMENT. A
virtual machine's speed drifts: on the 2-core machine of 2026-12-02 the probe ranged 130,000-
229,000 within one 8-minute run and did not track the measurements closely enough to correct
them one by one (scaling each by its own probe made DQN's two identical designs differ 1.5x),
so the plan it feeds is good to about +-50 % there. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from culture_speed import cpu_model  # noqa: E402  (the benchmarks folder is not a package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--culture-minutes", type=float, default=0.5)
    parser.add_argument("--rl-steps", type=int, default=20000)
    args = parser.parse_args()

    import torch

    from agents.rl import SB3Agent
    from dishbrain.experiment.plan import machine_probe
    from dishbrain.player import make_agent
    from dishbrain.session import play_session

    torch.set_num_threads(1)
    print(f"CPU: {cpu_model()}; load average {os.getloadavg()[0]:.2f}")
    rows: list[tuple[str, float, float]] = []   # (what, raw speed, mean of its two probes)

    def measured(what: str, agent, minutes: float, per: str, tmp: Path) -> None:
        before = machine_probe()
        start = time.perf_counter()
        result = play_session(agent, log_path=tmp / f"{what}.jsonl", minutes=minutes, seed=0,
                              progress=False)
        wall = time.perf_counter() - start
        probe = (before + machine_probe()) / 2
        speed = minutes * 60.0 / wall if per == "x" else result.steps / wall
        rows.append((what, speed, probe))
        print(f"{what:<22} {speed:>10.1f} {'x real time' if per == 'x' else 'steps/s':<12} "
              f"probe {probe:,.0f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for n, backend in [(n, "standalone") for n in args.sizes] + [(1000, "runtime")]:
            options = {"n_neurons": n, "backend": backend}
            # A short warm-up session first: the build (once per size) is not timed.
            play_session(make_agent("culture", seed=0, **options),
                         log_path=tmp / f"warm-{n}-{backend}.jsonl", minutes=0.02, seed=0,
                         progress=False)
            measured(f"culture-{n}-{backend}", make_agent("culture", seed=0, **options),
                     args.culture_minutes, "x", tmp)
        measured("random", make_agent("random", seed=0), 20.0, "steps", tmp)
        for algorithm in ("dqn", "a2c", "ppo"):
            for design in ("positions", "stim", "image"):
                measured(f"{algorithm}-{design}", SB3Agent(algorithm, design, seed=0),
                         args.rl_steps / 6000.0, "steps", tmp)

    ref = statistics.median(p for _, _, p in rows)
    speeds = {what: speed for what, speed, _ in rows}
    print(f"\nprobes {min(p for *_, p in rows):,.0f}-{max(p for *_, p in rows):,.0f}; "
          f"load average {os.getloadavg()[0]:.2f}. For dishbrain/experiment/plan.py:")
    print(f"PROBE_AT_MEASUREMENT = {ref:.0f}")
    print("CULTURE_X_REALTIME = (" + ", ".join(
        f"({n}, {speeds[f'culture-{n}-standalone']:.1f})" for n in args.sizes) + ")")
    print(f"CULTURE_RUNTIME_X_REALTIME_1000 = {speeds['culture-1000-runtime']:.1f}")
    print("RL_STEPS_PER_S = {")
    for algorithm in ("dqn", "a2c", "ppo"):
        cells = ", ".join(f'"{d}": {speeds[f"{algorithm}-{d}"]:.0f}'
                          for d in ("positions", "stim", "image"))
        print(f'    "{algorithm}": {{{cells}}},')
    print("}")
    print(f"SIMPLE_STEPS_PER_S = {speeds['random']:.0f}")


if __name__ == "__main__":
    main()
