"""The `dishbrain` command line.

    dishbrain play --agent tracker --minutes 20 --seed 0 --out runs/play
    dishbrain analyze runs/play
    dishbrain culture-check --out runs/check
    dishbrain experiment experiments/dishbrain-quick.toml
    dishbrain compare experiments/compare-quick.toml
    dishbrain sweep experiments/sweep-quick.toml --executor ray
    dishbrain report runs/dishbrain-quick
    dishbrain replay runs/play

One module per command group (play; view: analyze, replay; study: experiment, compare,
sweep, report; tools: culture-check, grip, cl-check, warmup), each registering its own
subcommands; common holds the argument types. Bad input ends with a one-line error and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from dishbrain.cli import play, study, tools, view
from dishbrain.cli.common import UsageError, no_display_reason

__all__ = ["UsageError", "build_parser", "main", "no_display_reason"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dishbrain", description=(
        "An in-silico DishBrain: simulated cortical cultures on a virtual MEA play Pong."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (play, view, study, tools):
        group.register(sub)
    return parser


def _ignore(signum, frame) -> None:
    pass


def keep_sigint_ignored() -> None:
    """A process started with SIGINT ignored (a shell's background job, ``cmd &``) keeps it
    ignored. Brian2 wraps the previous SIGINT handler when it is imported and calls it outside a
    simulation; the ignored handler is not callable, so a SIGINT there ended the run with a
    TypeError traceback. A callable that ignores the signal keeps the convention."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, _ignore)


def main(argv: list[str] | None = None) -> int:
    keep_sigint_ignored()
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
    except BrokenPipeError:  # `dishbrain ... | head -1`: the reader left; no traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's final flush would fail again
        return 141  # 128 + SIGPIPE, as a shell reports a process killed by it


if __name__ == "__main__":
    sys.exit(main())
