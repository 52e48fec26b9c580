"""`dishbrain analyze` and `dishbrain replay`: reading sessions back."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dishbrain.cli.common import (
    UsageError,
    non_negative_float,
    non_negative_int,
    positive_float,
    speed,
    warn_if_no_display,
)


def cmd_analyze(args: argparse.Namespace) -> int:
    from dishbrain.metrics import format_table, load_sessions, summarize

    windows = tuple(_parse_windows(args.windows))
    taus = tuple(_parse_taus(args.tau_ms))
    path = Path(args.path)
    if not path.exists():
        raise UsageError(f"no such file or folder: {str(path)!r}")
    if args.visibility:
        return _analyze_visibility(path, taus)
    try:
        sessions = load_sessions(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not sessions:
        raise UsageError(f"no session logs (*.jsonl or events.txt) under {str(path)!r}")
    from dishbrain.logs import log_finished

    for session in sessions:  # unreadable: an error; unfinished: counted, with a warning
        if session.format == "jsonl" and not session.header:
            raise UsageError(f"{session.source}: no header line; not a readable session log")
        if session.format == "jsonl" and not log_finished(session.source):
            print(f"dishbrain analyze: warning: {session.source} did not finish (no end line, "
                  "or stopped early); counted up to its last event", file=sys.stderr)
    print(format_table(summarize(sessions, bounds_min=windows, long_threshold=args.long_threshold)))
    return 0


def _analyze_visibility(path: Path, taus: tuple[float, ...]) -> int:
    """`analyze --visibility`: the push's share of the motor co-activity (dishbrain.visibility)
    of every culture session with a trace at `path` (a log, or a folder searched recursively)."""
    from dishbrain.logs import trace_paths
    from dishbrain.visibility import format_visibility, visibility_of_log

    logs = [path] if path.is_file() else sorted(
        p for p in path.rglob("*.jsonl*") if p.name.endswith((".jsonl", ".jsonl.gz")))
    traced = [log for log in logs if trace_paths(log)[0].exists()]
    if not traced:
        raise UsageError(f"--visibility: no session log with a trace under {str(path)!r} (play "
                         "a culture with --trace: dishbrain play --agent culture --trace)")
    results = []
    for log in traced:
        try:
            results += visibility_of_log(log, taus)
        except ValueError as exc:
            if path.is_file():
                raise UsageError(str(exc)) from None
            print(f"dishbrain analyze: skipped {log}: {exc}", file=sys.stderr)
    if not results:
        raise UsageError(f"--visibility: no culture session's trace under {str(path)!r}")
    print(format_visibility(results))
    return 0


def _parse_taus(text: str):
    try:
        for part in text.split(","):
            tau = float(part)
            if not 0 < tau < float("inf"):
                raise ValueError
            yield tau
    except ValueError:
        raise UsageError(f"--tau-ms must be time constants in ms > 0, comma-separated, e.g. "
                         f"'100,1000'; got {text!r}") from None


def _parse_windows(text: str):
    try:
        for part in text.split(","):
            lo, hi = part.split("-")
            lo_f, hi_f = float(lo), float(hi)
            if not 0 <= lo_f < hi_f:
                raise ValueError
            yield (lo_f, hi_f)
    except ValueError:
        raise UsageError(
            f"--windows must look like '0-5,5-20' (minutes, start < end), got {text!r}") from None


def cmd_replay(args: argparse.Namespace) -> int:
    from dishbrain.viewer import check_record_path, open_source, replay

    if args.png and not args.png.lower().endswith(".png"):
        raise UsageError(f"--png must name a .png file, got {args.png!r}")
    try:
        if args.record:
            check_record_path(args.record)
        source = open_source(args.path)
    except (FileNotFoundError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if args.start * 60.0 > source.duration_s:
        raise UsageError(f"--start {args.start:g} min is past the end of the session "
                         f"({source.duration_s / 60.0:.2f} min)")
    show = args.render or not (args.record or args.png)  # --png draws off-screen
    if show:
        warn_if_no_display()
    start = args.start if (args.start or not args.png) else source.duration_s / 60.0
    summary = replay(source, speed=args.speed, show=show,
                     record=args.record, start_min=start, png=args.png,
                     max_s=None if args.minutes is None else args.minutes * 60.0)
    arl = summary["arl"]
    line = (f"replayed {summary['label']}: {summary['t_s']:.1f} s of game time, "
            f"{summary['rallies']} rallies, ARL {'-' if arl != arl else format(arl, '.2f')}")
    if summary["stopped"]:
        line += ", stopped early"
    if args.record:
        line += f"; {summary['frames_recorded']} frames recorded to {args.record}"
    if args.png:
        line += f"; picture at {summary['t_s']:.1f} s saved to {args.png}"
    print(line)
    return 0


def register(sub) -> None:
    p = sub.add_parser("analyze",
                       help="rally metrics of a session log, a folder of logs, or events.txt")
    p.add_argument("path")
    p.add_argument("--windows", default="0-5,5-20",
                   help="time windows in minutes (default 0-5,5-20)")
    p.add_argument("--long-threshold", type=non_negative_int("long-threshold"), default=3,
                   help="a long rally has more than this many hits (default 3)")
    p.add_argument("--visibility", action="store_true",
                   help="instead: how much of a push the co-activity of the synapses onto the "
                        "motor regions shows, per ball band (culture sessions played with "
                        "--trace; dishbrain/visibility.py)")
    p.add_argument("--tau-ms", default="100,1000", metavar="MS,MS",
                   help="with --visibility: time constants of the co-activity traces "
                        "(default 100,1000: the readout's and a tag's)")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("replay", help="watch a recorded session again: a trace, a session log, "
                                      "or a Cortical Labs recording (events.txt, spikes.bin)")
    p.add_argument("path", metavar="PATH",
                   help="a session log (.jsonl, with its .trace.npy beside it if any), a trace, "
                        "an events.txt or a SpikeStream folder")
    p.add_argument("--speed", type=speed, default=1.0,
                   help="game speed relative to real time (default 1; e.g. 20; max)")
    p.add_argument("--start", type=non_negative_float("start"), default=0.0, metavar="MIN",
                   help="start at this game minute (default 0)")
    p.add_argument("--minutes", type=positive_float("minutes"), default=None,
                   help="stop after this much game time (default: to the end)")
    p.add_argument("--record", metavar="FILE",
                   help="record the replay to FILE.gif or FILE.mp4 (headless unless --render)")
    p.add_argument("--render", action="store_true", help="with --record: also show the window")
    p.add_argument("--png", metavar="FILE",
                   help="save the picture at --start (default: the end) to FILE.png and exit")
    p.set_defaults(func=cmd_replay)
