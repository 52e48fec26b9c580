"""`dishbrain experiment`, `compare`, `sweep` and `report`: many sessions in a run folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dishbrain.cli.common import UsageError, positive_int, writable_dir


def cmd_experiment(args: argparse.Namespace) -> int:
    return _run_study(args, "experiment")


def cmd_compare(args: argparse.Namespace) -> int:
    return _run_study(args, "compare")


def _run_study(args: argparse.Namespace, kind: str) -> int:
    from dishbrain.experiment import ConfigError, LocalExecutor, load_config, run

    path = Path(args.config)
    if not path.exists():
        raise UsageError(f"no such config file: {str(path)!r}")
    try:
        config = load_config(path, kind=kind)
        config_text = path.read_text(encoding="utf-8")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if args.dry_run:  # the plan of the same sessions, as `dishbrain sweep --dry-run` prints it
        from dishbrain.experiment.plan import plan_text
        from dishbrain.experiment.sweep import load_sweep

        try:
            sweep = load_sweep(path)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        out = Path(args.out or Path("runs") / config.name)
        print(plan_text(sweep, out, args.workers or config.workers))
        return 0
    out = writable_dir(Path(args.out or Path("runs") / config.name))
    executor = LocalExecutor(args.workers or config.workers)
    n = len(config.seeds) * len(config.players)
    print(f"{kind} {config.name!r}: {len(config.players)} groups x {len(config.seeds)} seeds = "
          f"{n} sessions, up to {executor.workers} at a time -> {out}")
    try:
        summary = run(config, out, executor, progress=not args.quiet, config_text=config_text,
                      command=[Path(sys.argv[0]).name, *sys.argv[1:]])
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        from dishbrain.experiment import session_finished

        done = sum(session_finished(s.log_path) for s in config.sessions(out))
        print(f"dishbrain {kind}: interrupted with {done} of {n} sessions finished; "
              f"run the same command again to resume", file=sys.stderr)
        return 130
    return _print_run(summary, kind)


def _print_run(summary, kind: str) -> int:
    from dishbrain.report import format_group_table, group_rows, load_run

    print(f"sessions: {len(summary.ran)} played, {summary.skipped} already finished, "
          f"{len(summary.failed)} failed ({summary.wall_s:.1f} s wall)")
    print(format_group_table(group_rows(load_run(summary.run_dir))))
    print(f"report: {summary.report}")
    for key, error in summary.failed:
        trace = Path("sessions") / f"{key}.error.txt"
        where = f" (traceback in {trace})" if (summary.run_dir / trace).exists() else ""
        print(f"dishbrain {kind}: session {key} failed: {error}{where}", file=sys.stderr)
    return 1 if summary.failed else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from dishbrain.experiment import ConfigError, LocalExecutor
    from dishbrain.experiment.plan import plan_text
    from dishbrain.experiment.sweep import load_sweep
    from dishbrain.experiment.sweep_runner import check_folder, run_sweep

    if args.address is not None and args.executor != "ray":
        raise UsageError("--address applies to --executor ray")
    try:  # the whole sweep is checked before anything is written
        sweep = load_sweep(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    out = Path(args.out or Path("runs") / sweep.name)
    workers = args.workers or sweep.workers
    if args.executor == "ray":
        from dishbrain.experiment.ray_executor import RayExecutor, import_ray

        try:
            import_ray()
        except ImportError as exc:
            raise UsageError(str(exc)) from None
        executor = RayExecutor(address=args.address,
                               num_cpus=args.workers if args.address is None else None)
    else:
        executor = LocalExecutor(workers)
    print(plan_text(sweep, out, workers if args.address is None else executor.workers))
    if args.dry_run:
        return 0
    if args.executor == "ray":
        executor.start()
    try:
        check_folder(sweep, out)
        out = writable_dir(out)
        summary = run_sweep(sweep, out, executor, progress=not args.quiet, order=args.order,
                            command=[Path(sys.argv[0]).name, *sys.argv[1:]])
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    except KeyboardInterrupt:
        print("dishbrain sweep: interrupted; finished sessions are kept: run the same command "
              "again to resume", file=sys.stderr)
        return 130
    finally:
        if args.executor == "ray":
            executor.stop()
    print(f"sessions: {len(summary.ran)} played, {summary.skipped} already finished, "
          f"{len(summary.failed)} failed ({summary.wall_s:.1f} s wall on {executor.workers} "
          f"workers, {args.executor})")
    for key, error in summary.failed:
        print(f"dishbrain sweep: session {key} failed: {error}", file=sys.stderr)
    print(f"report: {summary.report}")
    return 1 if summary.failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from dishbrain.experiment import CONFIG_NAME, ConfigError, load_run_config
    from dishbrain.report import format_group_table, group_rows, load_run, write_report

    run_dir = Path(args.run)
    if not run_dir.is_dir():
        raise UsageError(f"no such run folder: {str(run_dir)!r}")
    from dishbrain.experiment.sweep import INDEX_NAME
    if (run_dir / INDEX_NAME).is_file() and not (run_dir / CONFIG_NAME).is_file():
        return _sweep_report(run_dir)
    if not (run_dir / CONFIG_NAME).is_file():
        raise UsageError(f"{str(run_dir)!r} is not a run folder (no {CONFIG_NAME}) nor a "
                         f"sweep folder (no {INDEX_NAME})")
    try:
        config = load_run_config(run_dir)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    data = load_run(run_dir, config)
    if not data.sessions:
        raise UsageError(f"no finished sessions in {str(run_dir / 'sessions')!r}; "
                         f"run dishbrain {config.kind} to play them")
    try:
        path = write_report(run_dir, config, data)
    except OSError as exc:
        raise UsageError(f"cannot write the report in {str(run_dir)!r}: {exc.strerror}") from None
    print(format_group_table(group_rows(data)))
    print(f"report: {path}")
    return 0


def _sweep_report(out: Path) -> int:
    """`dishbrain report SWEEP_FOLDER`: every variant's report and the sweep's, from the logs
    (nothing is played, unlike rerunning `dishbrain sweep`)."""
    import json

    from dishbrain.experiment import ConfigError
    from dishbrain.experiment.sweep import INDEX_NAME
    from dishbrain.report import load_run
    from dishbrain.report.sweep import write_reports

    try:
        folders = [str(r["folder"]) for r in
                   json.loads((out / INDEX_NAME).read_text(encoding="utf-8"))["runs"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{str(out / INDEX_NAME)!r} is not a sweep index: {exc}") from None
    loaded = {}   # each variant's logs read once, for its report and the sweep's
    for folder in folders:
        try:
            loaded[folder] = load_run(out / folder)
        except (ConfigError, OSError) as exc:
            raise UsageError(f"{str(out / folder)!r}: {exc}") from None
    if not any(data.sessions for data in loaded.values()):
        raise UsageError(f"no finished sessions in the sweep folder {str(out)!r}; run dishbrain "
                         "sweep to play them")
    written, sweep_report = write_reports(out, loaded)
    for path in written:
        print(f"report: {path}")
    print(f"sweep report: {sweep_report}")
    return 0


def register(sub) -> None:
    for kind, text in (("experiment", "run the DishBrain protocol: cultures x conditions, "
                        "in parallel, resumable, with a Fig. 5 report"),
                       ("compare", "compare players (culture, RL, reference players) over "
                        "seeds, in parallel, resumable, with one report")):
        p = sub.add_parser(kind, help=text)
        p.add_argument("config", metavar="CONFIG.toml",
                       help=f"the {kind} config (see experiments/*.toml)")
        p.add_argument("--out", metavar="DIR",
                       help="run folder (default runs/<name>); rerun to resume it")
        p.add_argument("--workers", type=positive_int("workers"), default=None,
                       help="parallel sessions (default: the config's workers)")
        p.add_argument("--dry-run", action="store_true",
                       help="print the plan (sessions, those already finished in --out, "
                            "CPU-hours) and write nothing")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=cmd_experiment if kind == "experiment" else cmd_compare)

    p = sub.add_parser("sweep", help="run variants of an experiment x seeds x conditions as one "
                                     "resumable sweep (local pool or Ray), one comparative report")
    p.add_argument("config", metavar="SWEEP.toml",
                   help="the sweep (see experiments/sweep-quick.toml), or an experiment TOML")
    p.add_argument("--out", metavar="DIR",
                   help="sweep folder (default runs/<name>); rerun to resume")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local process pool (default) or a Ray cluster (the [cluster] extra)")
    p.add_argument("--address", metavar="auto|HOST:PORT", default=None,
                   help="with --executor ray: join this cluster (default: a local one for the run)")
    p.add_argument("--workers", type=positive_int("workers"), default=None,
                   help="sessions at a time (default: the sweep's workers; ray: the CPUs)")
    p.add_argument("--order", choices=["seed", "cost"], default="seed",
                   help="queue the sessions seed-major (default: early results cover every "
                        "variant) or cheapest first (a run stopped early keeps the most "
                        "finished sessions)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its cost only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="regenerate a run folder's report (or a sweep folder's "
                       "reports) from its logs")
    p.add_argument("run", metavar="RUN_FOLDER",
                   help="a run folder (experiment, compare) or a sweep folder (dishbrain sweep)")
    p.set_defaults(func=cmd_report)
