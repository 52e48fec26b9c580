"""Does DQN learn DishBrain Pong given more game time than a culture gets? ARL per block.

Khajehnejad et al. 2025 (arXiv 2405.16946) found that DQN, A2C and PPO do not beat the cultures
within one 20-minute session. This benchmark checks that our DQN player is a fair baseline, i.e.
that it does learn the game when the budget is longer: it plays one long session (default 10
sessions' worth, 200 game minutes), learning online from the positions input, and prints the
average rally length (ARL) per block of game time, next to the random player's ARL on the same
game (the chance level, ~0.8) and the scripted tracker's (the ceiling). Then the trained model
plays a 20-minute session greedily (no exploration, no learning).

    python benchmarks/dqn_long.py --sessions 10 --out runs/dqn-long

One process, torch on one thread. Options `--set NAME=VALUE` override DQN hyperparameters
(values are JSON, e.g. --set gamma=0.99 --set 'policy_kwargs={"net_arch": [64, 64]}').
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

SESSION_MIN = 20.0


def _override(text: str) -> tuple[str, object]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--set takes NAME=VALUE, got {text!r}")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def _fmt(x: float, digits: int = 2) -> str:
    return "  nan" if math.isnan(x) else f"{x:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=float, default=10.0,
                        help="training budget in 20-minute sessions (default 10 = 200 game min)")
    parser.add_argument("--obs", default="positions", help="input design (default positions)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--block-min", type=float, default=SESSION_MIN,
                        help="game minutes per row of the table (default 20)")
    parser.add_argument("--random-min", type=float, default=100.0,
                        help="game minutes of the random and tracker references (default 100)")
    parser.add_argument("--greedy-min", type=float, default=SESSION_MIN,
                        help="game minutes the trained model plays greedily (0: skip)")
    parser.add_argument("--out", default="runs/dqn-long", help="folder for the session logs")
    parser.add_argument("--set", dest="overrides", type=_override, action="append", default=[],
                        metavar="NAME=VALUE", help="override a DQN hyperparameter")
    parser.add_argument("--obs-set", dest="obs_options", type=_override, action="append",
                        default=[], metavar="NAME=VALUE",
                        help="an input-design option, e.g. velocity=false")
    args = parser.parse_args()

    import torch

    from agents.rl import make_dqn
    from agents.simple import RandomAgent, TrackerAgent
    from dishbrain.metrics import learning_curve, rally_metrics, read_session
    from dishbrain.session import play_session

    torch.set_num_threads(1)
    out = Path(args.out)
    minutes = args.sessions * SESSION_MIN

    refs = {}
    for ref in (RandomAgent(seed=args.seed), TrackerAgent()):
        result = play_session(ref, log_path=out / f"{ref.name}-seed{args.seed}.jsonl",
                              minutes=args.random_min, seed=args.seed, progress=False)
        refs[ref.name] = rally_metrics(read_session(result.log_path))

    agent = make_dqn(seed=args.seed, obs=args.obs, obs_options=dict(args.obs_options),
                     **dict(args.overrides))
    print(f"{agent.name}, seed {args.seed}: learning online for {minutes:g} game min "
          f"({minutes * 6000:,.0f} steps)")
    print("hyperparameters:", json.dumps(agent.hyperparameters))
    log = out / f"{agent.name}-seed{args.seed}.jsonl"
    start = time.perf_counter()
    result = play_session(agent, log_path=log, minutes=minutes, seed=args.seed, progress=False,
                          agent_config=agent.config_dict)
    wall = time.perf_counter() - start
    print(f"log: {log}  {result.steps:,} steps in {wall:.0f} s wall = "
          f"{result.steps / wall:,.0f} steps/s (one core)")

    session = read_session(log)
    curve = learning_curve(session, bin_min=args.block_min, until_min=minutes)
    rnd = refs["random"]
    print(f"\nrandom  ARL {rnd.arl:.2f} ({rnd.rallies} rallies in {args.random_min:g} min)   "
          f"tracker ARL {refs['tracker'].arl:.2f} ({refs['tracker'].rallies} rallies)")
    print(f"{'game min':>11} {'rallies':>8} {'ARL':>6} {'aces %':>7} {'long %':>7} "
          f"{'ARL/random':>11}")
    for start_min, m in zip(curve.bin_starts_min, curve.bins):
        ratio = m.arl / rnd.arl if rnd.arl else math.nan
        print(f"{start_min:5g}-{start_min + args.block_min:<5g} {m.rallies:>8} {_fmt(m.arl):>6} "
              f"{_fmt(m.aces_pct, 1):>7} {_fmt(m.long_pct, 1):>7} {_fmt(ratio):>11}")

    if args.greedy_min > 0:
        agent.learn_online = False
        greedy = play_session(agent, log_path=out / f"{agent.name}-seed{args.seed}-greedy.jsonl",
                              minutes=args.greedy_min, seed=args.seed + 1000, progress=False)
        g = rally_metrics(read_session(greedy.log_path))
        print(f"\ntrained model, greedy, no learning, {args.greedy_min:g} min: ARL {_fmt(g.arl)} "
              f"({g.rallies} rallies, aces {_fmt(g.aces_pct, 1)} %, long {_fmt(g.long_pct, 1)} %)")


if __name__ == "__main__":
    main()
