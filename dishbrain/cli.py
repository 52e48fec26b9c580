"""The `dishbrain` command line.

    dishbrain play --agent tracker --minutes 20 --seed 0 --out runs/play
    dishbrain analyze runs/play
    dishbrain culture-check --out runs/check
    dishbrain experiment experiments/dishbrain-quick.toml
    dishbrain compare experiments/compare-quick.toml
    dishbrain sweep experiments/sweep-quick.toml --executor ray
    dishbrain report runs/dishbrain-quick
    dishbrain replay runs/play

Bad input ends with a one-line error and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dishbrain.feedback import FEEDBACK_RULES
from dishbrain.player import player_names


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def no_display_reason() -> str | None:
    """Why a pygame window would not be seen here, or None. SDL falls back to an off-screen
    driver without a word when there is no display, so the user would wait for a window that
    never opens."""
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if driver in ("dummy", "offscreen"):
        return f"SDL_VIDEODRIVER={driver} draws off-screen"
    if (sys.platform.startswith("linux") and not driver
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))):
        return "neither DISPLAY nor WAYLAND_DISPLAY is set"
    return None


def _warn_if_no_display() -> None:
    reason = no_display_reason()
    if reason:
        print(f"dishbrain: no window will be visible ({reason}); the session runs and is "
              "logged without it (--record FILE.gif keeps a video)", file=sys.stderr)


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


def _positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number >= 1, got {text!r}")
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
    from dishbrain.metrics import format_table, read_session, summarize
    from dishbrain.player import make_agent, player_accepts
    from dishbrain.session import play_session

    # The culture's and the RL players' flags go to any player whose factory names them.
    flags = {"obs": args.obs, "condition": args.condition, "state_in": args.load_state,
             "state_out": args.save_state, "n_neurons": args.neurons, "backend": args.backend}
    try:
        options = {"seed": args.seed}
        options.update({k: v for k, v in flags.items() if player_accepts(args.agent, k)})
    except ValueError as exc:  # no such player: said before anything is written
        raise UsageError(str(exc)) from None
    out = _writable_dir(Path(args.out))
    try:
        agent = make_agent(args.agent, **options)
    except (ImportError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    if getattr(agent, "needs_window", False) and not args.render:
        raise UsageError(f"the {args.agent} player needs a window: add --render")
    if args.render:
        _warn_if_no_display()
    wrappers = []
    if args.render or args.record:
        from dishbrain.viewer import viewer_wrapper

        try:
            wrappers.append(viewer_wrapper(agent, show=args.render, record=args.record,
                                           speed=args.speed))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    condition = getattr(agent, "condition", None)
    log_path = out / f"{agent.name}{'-' + condition if condition else ''}-seed{args.seed}.jsonl"
    if args.trace:
        from dishbrain.viewer import trace_wrapper

        wrappers.append(trace_wrapper(log_path, agent))
    result = play_session(agent, log_path=log_path, minutes=args.minutes, seed=args.seed,
                          condition=condition, wrappers=wrappers,
                          progress=not args.quiet, agent_config=getattr(agent, "config_dict", None))
    agent.close()
    print(f"log: {result.log_path}  ({result.steps} steps in {result.wall_s:.1f} s wall, "
          f"{result.steps_per_s:,.0f} steps/s{', stopped early' if result.stopped else ''})")
    print(format_table(summarize([read_session(result.log_path)])))
    return 0


def _speed(text: str) -> float:
    from dishbrain.viewer import parse_speed

    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (0 <= value < float("inf")):
            raise argparse.ArgumentTypeError(f"{name} must be a number >= 0, got {text!r}")
        return value
    return parse


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
    if args.render or not args.record:
        _warn_if_no_display()
    start = args.start if (args.start or not args.png) else source.duration_s / 60.0
    summary = replay(source, speed=args.speed, show=args.render or not args.record,
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
    out = _writable_dir(Path(args.out or Path("runs") / config.name))
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
    from dishbrain.experiment.sweep import load_sweep, plan_text, run_sweep

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
        from dishbrain.experiment.sweep import check_folder

        check_folder(sweep, out)
        out = _writable_dir(out)
        summary = run_sweep(sweep, out, executor, progress=not args.quiet,
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
    if not (run_dir / CONFIG_NAME).is_file():
        raise UsageError(f"{str(run_dir)!r} is not a run folder (no {CONFIG_NAME})")
    try:
        config = load_run_config(run_dir)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    data = load_run(run_dir, config)
    if not data.sessions:
        raise UsageError(f"no finished sessions in {str(run_dir / 'sessions')!r}; "
                         f"run dishbrain {config.kind} to play them")
    try:
        path = write_report(run_dir, config)
    except OSError as exc:
        raise UsageError(f"cannot write the report in {str(run_dir)!r}: {exc.strerror}") from None
    print(format_group_table(group_rows(data)))
    print(f"report: {path}")
    return 0


def cmd_culture_check(args: argparse.Namespace) -> int:
    from dishbrain.culture import ensure_compiled
    from dishbrain.culture_check import culture_check

    out = _writable_dir(Path(args.out))
    ensure_compiled()
    try:
        paths = culture_check(out, n_neurons=args.neurons, seconds=args.seconds, seed=args.seed)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for path in paths:
        print(path)
    return 0


def cmd_grip(args: argparse.Namespace) -> int:
    from dishbrain.grip import GripConfig, format_table, load_grip_toml, run_grip

    try:
        fields = load_grip_toml(args.config) if args.config else {}
        if args.seed_list is not None:
            fields["seeds"] = tuple(args.seed_list)
        elif args.seeds is not None or args.first_seed is not None:
            first = args.first_seed if args.first_seed is not None else 0
            fields["seeds"] = tuple(range(first, first + (args.seeds or 8)))
        for key in ("minutes", "edit", "condition"):
            if getattr(args, key) is not None:
                fields[key] = getattr(args, key)
        options = dict(fields.get("player_options", {}))
        if args.neurons is not None:
            options["n_neurons"] = args.neurons
        if args.backend is not None:
            options["backend"] = args.backend
        fields["player_options"] = options
        config = GripConfig(**fields)
        from dishbrain.grip import check_config
        check_config(config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = _writable_dir(Path(args.out)) if args.out else None
    print(f"grip: {len(config.seeds)} seeds x 4 arms x {config.minutes:g} min, edit "
          f"{config.edit}, up to {args.workers} at a time" + (f" -> {out}" if out else ""))
    try:
        summary = run_grip(config, out, workers=args.workers, progress=not args.quiet)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(format_table(summary))
    if out:
        print(f"results: {out / 'grip.json'}, figure: {out / 'grip.png'}")
    return 0


def cmd_warmup(args: argparse.Namespace) -> int:
    from dishbrain.culture import CultureConfig, ensure_build, standalone_available, warm_cache
    from dishbrain.mea import MEA

    warm_cache(verbose=True)
    available, why = standalone_available()
    if available:  # the default culture's compiled binary (other sizes build on first use)
        ensure_build(CultureConfig(), MEA(), verbose=True)
    else:
        print(f"dishbrain: compiled backend unavailable ({why}); cultures use the runtime backend")
    return 0


def cmd_cl_check(args: argparse.Namespace) -> int:
    """The evoked-response table through Cortical Labs' CL API (needs the [cl] extra)."""
    try:
        from dishbrain.cl.check import evoked_response, format_table
        import dishbrain.cl  # noqa: F401  (the extra's one-line hint on Python 3.11)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    bad = [c for c in args.channels if not 0 <= c < 64]
    if bad:
        raise UsageError(f"--channels must be CL1 channels in [0, 63], got {bad}")
    config = {"n_neurons": args.neurons}
    if args.backend:
        config["backend"] = args.backend
    common = dict(channels=args.channels, repeats=args.repeats, current_ua=args.current_ua,
                  seed=args.seed)
    try:
        rows = evoked_response("culture", config, **common)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(format_table(rows, f"dishbrain.cl:culture_source ({args.neurons} neurons, seed "
                             f"{args.seed}), {args.current_ua:g} uA x 160 us biphasic"))
    if args.stock:
        print()
        print(format_table(evoked_response("stock", **common),
                           f"cl-sdk stock simulator (random source, seed {args.seed})"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dishbrain", description=(
        "An in-silico DishBrain: simulated cortical cultures on a virtual MEA play Pong."))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("play", help="play one session with any player and print its metrics")
    p.add_argument("--agent", required=True, metavar="NAME",
                   help=f"the player: {', '.join(player_names())}, or any "
                        "package.module:factory returning a dishbrain.player.Agent")
    p.add_argument("--minutes", type=_positive_float("minutes"), default=20.0,
                   help="game time of the session (default 20)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", default="runs/play", help="folder for the session log (default runs/play)")
    p.add_argument("--render", action="store_true", help="watch it live in a pygame window")
    p.add_argument("--record", metavar="FILE", help="record the view to FILE.gif or FILE.mp4 (headless)")
    p.add_argument("--speed", type=_speed, default=1.0,
                   help="with --render: game speed relative to real time (default 1; e.g. 10; "
                        "max: as fast as it goes)")
    p.add_argument("--trace", action="store_true",
                   help="also write a per-tick trace beside the log, for dishbrain replay")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    culture = p.add_argument_group("culture player")
    culture.add_argument("--condition", default="stimulus",
                         choices=list(FEEDBACK_RULES))
    culture.add_argument("--neurons", type=_positive_int("neurons"), default=None, help="culture size (default 1000)")
    culture.add_argument("--load-state", metavar="FILE", help="start from a saved culture")
    culture.add_argument("--save-state", metavar="FILE", help="save the culture after the session")
    culture.add_argument("--backend", choices=["auto", "standalone", "runtime"], default=None,
                         help="culture simulator: compiled C++ (standalone, fast; built once per "
                              "configuration), Brian2 runtime, or auto (standalone where a C++ "
                              "compiler exists; default, or $DISHBRAIN_CULTURE_BACKEND)")
    rl = p.add_argument_group("RL players (dqn, a2c, ppo)")
    rl.add_argument("--obs", default="positions", choices=["image", "positions", "stim"],
                    help="input design: the game image, ball and paddle positions, or the "
                         "8-electrode stimulation the culture gets (default positions)")
    p.set_defaults(func=cmd_play)

    p = sub.add_parser("analyze", help="rally metrics of a session log, a folder of logs, or events.txt")
    p.add_argument("path")
    p.add_argument("--windows", default="0-5,5-20", help="time windows in minutes (default 0-5,5-20)")
    p.add_argument("--long-threshold", type=int, default=3,
                   help="a long rally has more than this many hits (default 3)")
    p.set_defaults(func=cmd_analyze)

    for kind, text in (("experiment", "run the DishBrain protocol: cultures x conditions, "
                        "in parallel, resumable, with a Fig. 5 report"),
                       ("compare", "compare players (culture, RL, reference players) over "
                        "seeds, in parallel, resumable, with one report")):
        p = sub.add_parser(kind, help=text)
        p.add_argument("config", metavar="CONFIG.toml",
                       help=f"the {kind} config (see experiments/*.toml)")
        p.add_argument("--out", metavar="DIR",
                       help="run folder (default runs/<name>); rerun to resume it")
        p.add_argument("--workers", type=_positive_int("workers"), default=None,
                       help="parallel sessions (default: the config's workers)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=cmd_experiment if kind == "experiment" else cmd_compare)

    p = sub.add_parser("sweep", help="run variants of an experiment x seeds x conditions as one "
                                     "resumable sweep (local pool or Ray), one comparative report")
    p.add_argument("config", metavar="SWEEP.toml", help="the sweep (see experiments/sweep-quick.toml)")
    p.add_argument("--out", metavar="DIR", help="sweep folder (default runs/<name>); rerun to resume")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local process pool (default) or a Ray cluster (the [cluster] extra)")
    p.add_argument("--address", metavar="auto|HOST:PORT", default=None,
                   help="with --executor ray: join this cluster (default: a local one for the run)")
    p.add_argument("--workers", type=_positive_int("workers"), default=None,
                   help="sessions at a time (default: the sweep's workers; ray: the CPUs)")
    p.add_argument("--dry-run", action="store_true", help="print the plan and its cost only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("replay", help="watch a recorded session again: a trace, a session log, "
                                      "or a Cortical Labs recording (events.txt, spikes.bin)")
    p.add_argument("path", metavar="PATH",
                   help="a session log (.jsonl, with its .trace.npy beside it if any), a trace, "
                        "an events.txt or a SpikeStream folder")
    p.add_argument("--speed", type=_speed, default=1.0,
                   help="game speed relative to real time (default 1; e.g. 20; max)")
    p.add_argument("--start", type=_non_negative_float("start"), default=0.0, metavar="MIN",
                   help="start at this game minute (default 0)")
    p.add_argument("--minutes", type=_positive_float("minutes"), default=None,
                   help="stop after this much game time (default: to the end)")
    p.add_argument("--record", metavar="FILE",
                   help="record the replay to FILE.gif or FILE.mp4 (headless unless --render)")
    p.add_argument("--render", action="store_true", help="with --record: also show the window")
    p.add_argument("--png", metavar="FILE",
                   help="save the picture at --start (default: the end) to FILE.png and exit")
    p.set_defaults(func=cmd_replay)

    p = sub.add_parser("culture-check", help="a culture's spontaneous activity and stimulus "
                                             "responses: raster, firing map, PSTH (PNG + JSON)")
    p.add_argument("--out", default="runs/culture-check", help="folder for the figure")
    p.add_argument("--neurons", type=_positive_int("neurons"), default=1000)
    p.add_argument("--seconds", type=_positive_float("seconds"), default=60.0,
                   help="spontaneous activity to record (default 60)")
    p.add_argument("--seed", type=_seed, default=0)
    p.set_defaults(func=cmd_culture_check)

    p = sub.add_parser("grip", help="how far the synaptic weights alone steer the paddle: "
                                    "weights edited toward / against tracking vs the two "
                                    "vertical layouts (issue 17)")
    p.add_argument("config", metavar="CONFIG.toml", nargs="?",
                   help="[culture] and [game] tables as in experiment configs, optional [grip]")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=_positive_int("seeds"), default=None,
                       help="number of cultures, seeds first-seed.. (default 8)")
    seeds.add_argument("--seed-list", type=_seed, nargs="+", default=None, metavar="SEED")
    p.add_argument("--first-seed", type=_seed, default=None, help="with --seeds (default 0)")
    p.add_argument("--minutes", type=_positive_float("minutes"), default=None,
                   help="game time of each session (default 5)")
    p.add_argument("--edit", choices=["direct", "motor-inputs", "both"], default=None,
                   help="the weight edit of the toward/against arms (default both)")
    p.add_argument("--condition", choices=list(FEEDBACK_RULES), default=None,
                   help="feedback condition of every session (default stimulus)")
    p.add_argument("--neurons", type=_positive_int("neurons"), default=None)
    p.add_argument("--backend", choices=["auto", "standalone", "runtime"], default=None)
    p.add_argument("--workers", type=_positive_int("workers"), default=2,
                   help="parallel sessions (default 2)")
    p.add_argument("--out", metavar="DIR", help="write DIR/grip.json, grip.png and each "
                                                 "session's numbers (rerun to resume)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_grip)

    p = sub.add_parser("cl-check", help="evoked responses through Cortical Labs' CL API "
                                        "(cl-sdk, the [cl] extra, Python >= 3.12)")
    p.add_argument("--neurons", type=_positive_int("neurons"), default=1000)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--channels", type=int, nargs="+", default=[18, 27, 36, 45], metavar="CH")
    p.add_argument("--repeats", type=_positive_int("repeats"), default=10)
    p.add_argument("--current-ua", type=_positive_float("current-ua"), default=1.0)
    p.add_argument("--backend", choices=["auto", "standalone", "runtime"], default=None)
    p.add_argument("--stock", action="store_true",
                   help="also run the protocol on cl-sdk's stock simulator")
    p.set_defaults(func=cmd_cl_check)

    p = sub.add_parser("warmup", help="compile the culture model (Brian2's cache and the default "
                                      "culture's binary) now; otherwise the first culture does it")
    p.set_defaults(func=cmd_warmup)

    p = sub.add_parser("report", help="regenerate a run folder's report from its logs")
    p.add_argument("run", metavar="RUN_FOLDER")
    p.set_defaults(func=cmd_report)
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
