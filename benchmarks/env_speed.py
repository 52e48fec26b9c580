"""Steps per second of a 20-minute (120,000-step) session without rendering.

    python benchmarks/env_speed.py [--agents random tracker] [--repeats 3]

Measures the whole session path (env + TimeLimit + SessionLog wrapper + player), as a user runs it,
and the bare env for reference. Prints the median of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from dishbrain.player import make_agent
from dishbrain.session import play_session
from envs.pong import PongEnv


def bare_env(steps: int) -> float:
    env = PongEnv()
    env.reset(seed=0)
    actions = np.random.default_rng(0).integers(3, size=steps).tolist()
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", nargs="+", default=["random", "tracker", "static"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=20.0)
    args = parser.parse_args()
    steps = int(args.minutes * 6000)
    print(f"{'path':<28}{'steps/s (median of ' + str(args.repeats) + ')':>28}")
    bare = statistics.median(bare_env(steps) for _ in range(args.repeats))
    print(f"{'bare PongEnv.step':<28}{bare:>28,.0f}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.agents:
            rates = []
            for r in range(args.repeats):
                result = play_session(make_agent(name, seed=r),
                                      log_path=Path(tmp) / f"{name}{r}.jsonl",
                                      minutes=args.minutes, seed=r, progress=False)
                rates.append(result.steps_per_s)
            print(f"{'session, ' + name:<28}{statistics.median(rates):>28,.0f}")


if __name__ == "__main__":
    main()
