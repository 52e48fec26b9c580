"""`dishbrain culture-check`, `grip`, `cl-check` and `warmup`: the culture on its own."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dishbrain.cli.common import (
    UsageError,
    positive_float,
    positive_int,
    seed_number,
    writable_dir,
)
from dishbrain.feedback import FEEDBACK_RULES


def cmd_culture_check(args: argparse.Namespace) -> int:
    from dishbrain.culture import ensure_compiled
    from dishbrain.culture_check import culture_check

    try:
        config, mea_config = culture_check_configs(args.config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = writable_dir(Path(args.out))
    ensure_compiled()
    try:
        paths = culture_check(out, n_neurons=args.neurons, seconds=args.seconds, seed=args.seed,
                              config=config, mea_config=mea_config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    for path in paths:
        print(path)
    summary = json.loads(paths[1].read_text())
    ok = summary["within_target"]
    print("calibration target (dishbrain/culture/config.py): " + ", ".join(
        f"{k} {summary['calibration_target'][k][0]:g}-{summary['calibration_target'][k][1]:g}: "
        f"{'in' if ok[k] else 'OUT'}" for k in ok))
    return 0


def culture_check_configs(path: str | None):
    """(CultureConfig, MEAConfig) from a config file's ``[culture]`` table (its ``n_neurons``,
    ``culture_config`` and ``mea_config``; the readout's settings do not shape the culture and
    are not read), or (None, None) without a file: the defaults."""
    if path is None:
        return None, None
    import dataclasses

    from dishbrain.culture import CultureConfig
    from dishbrain.grip import load_grip_toml
    from dishbrain.mea import MEAConfig

    table = load_grip_toml(path).get("player_options", {})
    config = CultureConfig.from_dict(dict(table.get("culture_config") or {}))
    if "n_neurons" in table:
        config = dataclasses.replace(config, n_neurons=table["n_neurons"])
    return config, MEAConfig.from_dict(dict(table.get("mea_config") or {}))


def cmd_grip(args: argparse.Namespace) -> int:
    from dishbrain.grip import GripConfig, format_table, load_grip_toml, run_grip

    try:
        fields = load_grip_toml(args.config) if args.config else {}
        if args.seed_list is not None:
            fields["seeds"] = tuple(args.seed_list)
        elif args.seeds is not None or args.first_seed is not None:
            first = args.first_seed if args.first_seed is not None else 0
            fields["seeds"] = tuple(range(first, first + (args.seeds or 8)))
        for key in ("minutes", "edit", "condition", "dose"):
            if getattr(args, key) is not None:
                fields[key] = getattr(args, key)
        options = dict(fields.get("player_options", {}))
        if args.neurons is not None:
            options["n_neurons"] = args.neurons
        if args.backend is not None:
            options["backend"] = args.backend
        if args.layout is not None:
            options["layout"] = args.layout
        fields["player_options"] = options
        config = GripConfig(**fields)
        from dishbrain.grip import check_config
        check_config(config)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = writable_dir(Path(args.out)) if args.out else None
    print(f"grip: {len(config.seeds)} seeds x {len(config.arms)} arms x {config.minutes:g} "
          f"min, edit {config.edit}, up to {args.workers} at a time"
          + (f" -> {out}" if out else ""))
    try:
        summary = run_grip(config, out, workers=args.workers, progress=not args.quiet)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except RuntimeError as exc:  # sessions failed; the finished ones are kept for the rerun
        print(f"dishbrain grip: {exc}", file=sys.stderr)
        return 1
    print(format_table(summary))
    if out:
        print(f"results: {out / 'grip.json'}, figure: {out / 'grip.png'}")
    return 0


def cmd_cl_check(args: argparse.Namespace) -> int:
    """The evoked-response table through Cortical Labs' CL API (needs the [cl] extra)."""
    try:
        import dishbrain.cl  # noqa: F401  (the extra's one-line hint on Python 3.11)
        from dishbrain.cl.check import evoked_response, format_table
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


def cmd_warmup(args: argparse.Namespace) -> int:
    from dishbrain.culture import (
        CultureConfig,
        ensure_build,
        standalone_available,
        warm_cache,
    )
    from dishbrain.mea import MEA

    warm_cache(verbose=True)
    available, why = standalone_available()
    if available:  # the default culture's compiled binary (other sizes build on first use)
        ensure_build(CultureConfig(), MEA(), verbose=True)
    else:
        print(f"dishbrain: compiled backend unavailable ({why}); cultures use the runtime backend")
    return 0


def register(sub) -> None:
    p = sub.add_parser("culture-check", help="a culture's spontaneous activity and stimulus "
                                             "responses: raster, firing map, PSTH (PNG + JSON)")
    p.add_argument("config", metavar="CONFIG.toml", nargs="?",
                   help="the culture of an experiment or grip config: its [culture] table's "
                        "n_neurons, culture_config and mea_config (default: the default culture)")
    p.add_argument("--out", default="runs/culture-check", help="folder for the figure")
    p.add_argument("--neurons", type=positive_int("neurons"), default=None,
                   help="replaces the config's (default 1000)")
    p.add_argument("--seconds", type=positive_float("seconds"), default=60.0,
                   help="spontaneous activity to record (default 60)")
    p.add_argument("--seed", type=seed_number, default=0)
    p.set_defaults(func=cmd_culture_check)

    p = sub.add_parser("grip", help="how far the synaptic weights alone steer the paddle: "
                                    "weights edited toward / against tracking vs the two "
                                    "vertical layouts (issue 17)")
    p.add_argument("config", metavar="CONFIG.toml", nargs="?",
                   help="[culture] and [game] tables as in experiment configs, optional [grip]")
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", type=positive_int("seeds"), default=None,
                       help="number of cultures, seeds first-seed.. (default 8)")
    seeds.add_argument("--seed-list", type=seed_number, nargs="+", default=None, metavar="SEED")
    p.add_argument("--first-seed", type=seed_number, default=None, help="with --seeds (default 0)")
    p.add_argument("--minutes", type=positive_float("minutes"), default=None,
                   help="game time of each session (default 5)")
    p.add_argument("--edit", choices=["direct", "motor-inputs", "both"], default=None,
                   help="the weight edit of the toward/against arms (default both)")
    p.add_argument("--condition", choices=list(FEEDBACK_RULES), default=None,
                   help="feedback condition of every session (default stimulus)")
    p.add_argument("--dose", type=positive_float("dose"), default=None,
                   help="also two arms with the direct route's right / wrong ratio scaled by "
                        "e^DOSE per band, and the map's sensitivity to it (default: none)")
    p.add_argument("--neurons", type=positive_int("neurons"), default=None)
    p.add_argument("--backend", choices=["auto", "standalone", "runtime"], default=None)
    p.add_argument("--layout", default=None, metavar="NAME",
                   help="the player's motor layout, which the edits follow (default: the MEA's "
                        "first, dishbrain; e.g. dishbrain_swapped)")
    p.add_argument("--workers", type=positive_int("workers"), default=2,
                   help="parallel sessions (default 2)")
    p.add_argument("--out", metavar="DIR", help="write DIR/grip.json, grip.png and each "
                                                 "session's numbers (rerun to resume)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_grip)

    p = sub.add_parser("cl-check", help="evoked responses through Cortical Labs' CL API "
                                        "(cl-sdk, the [cl] extra, Python >= 3.12)")
    p.add_argument("--neurons", type=positive_int("neurons"), default=1000)
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--channels", type=int, nargs="+", default=[18, 27, 36, 45], metavar="CH")
    p.add_argument("--repeats", type=positive_int("repeats"), default=10)
    p.add_argument("--current-ua", type=positive_float("current-ua"), default=1.0)
    p.add_argument("--backend", choices=["auto", "standalone", "runtime"], default=None)
    p.add_argument("--stock", action="store_true",
                   help="also run the protocol on cl-sdk's stock simulator")
    p.set_defaults(func=cmd_cl_check)

    p = sub.add_parser("warmup", help="compile the culture model (Brian2's cache and the default "
                                      "culture's binary) now; otherwise the first culture does it")
    p.set_defaults(func=cmd_warmup)
