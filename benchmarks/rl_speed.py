"""Steps per second of each deep-RL player (DQN, A2C, PPO x image, positions, stim), one core.

Each player learns online for `--steps` game steps through `dishbrain.session.play_session`
(session log included), with its default hyperparameters (agents/rl.py), torch on one thread.
DQN trains only after `learning_starts` (1,000 steps), so its figure over 5,000 steps is ~20%
above its steady rate.

    python benchmarks/rl_speed.py --steps 5000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000,
                        help="game steps per player (default 5000)")
    parser.add_argument("--algorithms", default="dqn,a2c,ppo")
    parser.add_argument("--designs", default="positions,stim,image")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import torch

    from agents.rl import SB3Agent
    from dishbrain.session import play_session

    torch.set_num_threads(1)
    minutes = args.steps / 6000.0  # 10 ms steps
    print(f"load average before: {os.getloadavg()[0]:.2f} (other processes share the cores)")
    print(f"{'player':<16} {'steps':>7} {'wall s':>8} {'steps/s':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        # Warm-up (torch's first calls), not timed.
        play_session(SB3Agent("dqn", "image", learning_starts=0), progress=False,
                     log_path=Path(tmp) / "warmup.jsonl", minutes=0.02, seed=args.seed)
        for algorithm in args.algorithms.split(","):
            for design in args.designs.split(","):
                agent = SB3Agent(algorithm, design, seed=args.seed)
                start = time.perf_counter()
                result = play_session(agent, log_path=Path(tmp) / f"{agent.name}.jsonl",
                                      minutes=minutes, seed=args.seed, progress=False,
                                      agent_config=agent.config_dict)
                wall = time.perf_counter() - start
                print(f"{agent.name:<16} {result.steps:>7} {wall:>8.1f} "
                      f"{result.steps / wall:>9.0f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
