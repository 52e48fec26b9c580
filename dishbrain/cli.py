"""The `dishbrain` command line.

    dishbrain play --agent tracker --minutes 20 --seed 0 --out runs/play
    dishbrain analyze runs/play
    dishbrain culture-check --out runs/check
    dishbrain experiment experiments/dishbrain-quick.toml
    dishbrain compare experiments/compare-quick.toml
    dishbrain replay runs/play

Bad input ends with a one-line error and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agents.registry import player_names


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def _positive_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number > 0, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be a number > 0, got {text!r}")
        return value
    return parse


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"seed must be a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be a whole number >= 0, got {text!r}")
    return value


def _writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {str(path)!r}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"output folder {str(path)!r} is not writable")
    return path


def cmd_play(args: argparse.Namespace) -> int:
    from agents.registry import make_agent
    from dishbrain.metrics import format_table, read_session, summarize
    from dishbrain.session import play_session

    out = _writable_dir(Path(args.out))
    options = {"seed": args.seed}
    if args.agent == "culture":
        options.update(condition=args.condition, state_in=args.load_state,
                       state_out=args.save_state, n_neurons=args.neurons)
    try:
        agent = make_agent(args.agent, **options)
    except (ImportError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if getattr(agent, "needs_window", False) and not args.render:
        raise UsageError(f"the {args.agent} player needs a window: add --render")
    wrappers = []
    render_mode = None
    viewer = None
    if args.render or args.record:
        from dishbrain.viewer import viewer_wrapper

        viewer = viewer_wrapper(agent, show=args.render, record=args.record, speed=args.speed)
        wrappers.append(viewer)
    condition = getattr(agent, "condition", None)
    log_path = out / f"{args.agent}{'-' + condition if condition else ''}-seed{args.seed}.jsonl"
    result = play_session(agent, log_path=log_path, minutes=args.minutes, seed=args.seed,
                          condition=condition, render_mode=render_mode, wrappers=wrappers,
                          progress=not args.quiet, agent_config=getattr(agent, "config_dict", None))
    agent.close()
    print(f"log: {result.log_path}  ({result.steps} steps in {result.wall_s:.1f} s wall, "
          f"{result.steps_per_s:,.0f} steps/s{', stopped early' if result.stopped else ''})")
    print(format_table(summarize([read_session(result.log_path)])))
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from dishbrain.metrics import format_table, load_sessions, summarize

    windows = tuple(_parse_windows(args.windows))
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"no such file or folder: {str(path)!r}")
    try:
        sessions = load_sessions(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not sessions:
        raise UsageError(f"no session logs (*.jsonl or events.txt) under {str(path)!r}")
    print(format_table(summarize(sessions, bounds_min=windows, long_threshold=args.long_threshold)))
    return 0


def _parse_windows(text: str):
    try:
        for part in text.split(","):
            lo, hi = part.split("-")
            lo_f, hi_f = float(lo), float(hi)
            if not 0 <= lo_f < hi_f:
                raise ValueError
            yield (lo_f, hi_f)
    except ValueError:
        raise UsageError(f"--windows must look like '0-5,5-20' (minutes, start < end), got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dishbrain", description=(
        "An in-silico DishBrain: simulated cortical cultures on a virtual MEA play Pong."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("play", help="play one session with any player and print its metrics")
    p.add_argument("--agent", required=True, choices=player_names(), metavar="NAME",
                   help=f"the player: {', '.join(player_names())}")
    p.add_argument("--minutes", type=_positive_float("minutes"), default=20.0,
                   help="game time of the session (default 20)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", default="runs/play", help="folder for the session log (default runs/play)")
    p.add_argument("--render", action="store_true", help="watch it live in a pygame window")
    p.add_argument("--record", metavar="FILE", help="record the view to FILE.gif or FILE.mp4 (headless)")
    p.add_argument("--speed", type=_positive_float("speed"), default=1.0,
                   help="with --render: game speed relative to real time (default 1; e.g. 10)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    culture = p.add_argument_group("culture player")
    culture.add_argument("--condition", default="stimulus",
                         choices=["stimulus", "silent", "no-feedback", "rest"])
    culture.add_argument("--neurons", type=int, default=None, help="culture size (default 1000)")
    culture.add_argument("--load-state", metavar="FILE", help="start from a saved culture")
    culture.add_argument("--save-state", metavar="FILE", help="save the culture after the session")
    p.set_defaults(func=cmd_play)

    p = sub.add_parser("analyze", help="rally metrics of a session log, a folder of logs, or events.txt")
    p.add_argument("path")
    p.add_argument("--windows", default="0-5,5-20", help="time windows in minutes (default 0-5,5-20)")
    p.add_argument("--long-threshold", type=int, default=3,
                   help="a long rally has more than this many hits (default 3)")
    p.set_defaults(func=cmd_analyze)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        print(f"dishbrain {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dishbrain {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
