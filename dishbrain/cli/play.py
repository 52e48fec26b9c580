"""`dishbrain play`: one session with any player, its metrics printed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dishbrain.cli.common import (
    UsageError,
    check_output_dir,
    check_output_file,
    minutes,
    positive_int,
    seed_number,
    speed,
    warn_if_no_display,
    writable_dir,
)
from dishbrain.feedback import FEEDBACK_RULES
from dishbrain.player import player_names

_FLAGS = {"obs": "--obs", "condition": "--condition", "state_in": "--load-state",
          "state_out": "--save-state", "n_neurons": "--neurons", "backend": "--backend"}


def cmd_play(args: argparse.Namespace) -> int:
    from dishbrain.metrics import format_table, read_session, summarize
    from dishbrain.player import make_agent, player_accepts, resolve_player
    from dishbrain.session import play_session

    # The culture's and the RL players' flags go to any player whose factory names them; a flag
    # given to a player that does not take it is an error, not silently dropped.
    values = {"obs": args.obs, "condition": args.condition, "state_in": args.load_state,
              "state_out": args.save_state, "n_neurons": args.neurons, "backend": args.backend}
    options = {"seed": args.seed}
    try:
        resolve_player(args.agent)  # an unknown player is refused before anything is written
        for key, value in values.items():
            if value is None:
                continue
            if not player_accepts(args.agent, key):
                raise UsageError(f"{_FLAGS[key]} does not apply to player {args.agent!r} "
                                 f"(its factory takes no {key!r})")
            options[key] = value
    except ValueError as exc:  # no such player: said before anything is written
        raise UsageError(str(exc)) from None
    if args.save_state:  # refused now, not after the session (issue 15)
        check_output_file(Path(args.save_state), "--save-state")
    out = check_output_dir(Path(args.out))
    try:
        agent = make_agent(args.agent, **options)
    except (ImportError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    out = writable_dir(out)
    try:
        return _play(args, agent, out, play_session, format_table, read_session, summarize)
    finally:
        agent.close()


def _play(args, agent, out: Path, play_session, format_table, read_session, summarize) -> int:
    if getattr(agent, "needs_window", False) and not args.render:
        raise UsageError(f"the {args.agent} player needs a window: add --render")
    condition = getattr(agent, "condition", None)
    log_path = out / f"{agent.name}{'-' + condition if condition else ''}-seed{args.seed}.jsonl"
    earlier = [p for p in (log_path, log_path.with_name(log_path.name + ".gz"))
               if p.exists()]
    if earlier and not args.overwrite:
        raise UsageError(f"{str(earlier[0])!r} already holds a session of this player, "
                         "condition and seed: pass --overwrite to replace it, or another --out")
    for path in earlier:
        path.unlink()
    if args.render:
        warn_if_no_display()
    wrappers = []
    if args.render or args.record:
        from dishbrain.viewer import viewer_wrapper

        try:
            wrappers.append(viewer_wrapper(agent, show=args.render, record=args.record,
                                           speed=args.speed))
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    if args.trace:
        from dishbrain.viewer import trace_wrapper

        wrappers.append(trace_wrapper(log_path, agent))
    result = play_session(agent, log_path=log_path, minutes=args.minutes, seed=args.seed,
                          condition=condition, wrappers=wrappers,
                          progress=not args.quiet, agent_config=getattr(agent, "config_dict", None))
    stopped = ", interrupted" if result.interrupted else ", stopped early" if result.stopped else ""
    print(f"log: {result.log_path}  ({result.steps} steps in {result.wall_s:.1f} s wall, "
          f"{result.steps_per_s:,.0f} steps/s{stopped})")
    save_error = getattr(agent, "save_error", None)
    if save_error is not None:  # the session is kept; only the state is lost
        print(f"dishbrain play: error: the session is in {result.log_path}, but the culture "
              f"could not be saved to {args.save_state!r}: {save_error}", file=sys.stderr)
        return 1
    if result.interrupted:
        print(f"dishbrain play: interrupted; the log ends with \"stopped\": true "
              f"({result.log_path})", file=sys.stderr)
        return 130
    print(format_table(summarize([read_session(result.log_path)])))
    return 0


def register(sub) -> None:
    p = sub.add_parser("play", help="play one session with any player and print its metrics")
    p.add_argument("--agent", required=True, metavar="NAME",
                   help=f"the player: {', '.join(player_names())}, or any "
                        "package.module:factory returning a dishbrain.player.Agent")
    p.add_argument("--minutes", type=minutes("minutes"), default=20.0,
                   help="game time of the session (default 20)")
    p.add_argument("--seed", type=seed_number, default=0)
    p.add_argument("--out", default="runs/play",
                   help="folder for the session log (default runs/play)")
    p.add_argument("--render", action="store_true", help="watch it live in a pygame window")
    p.add_argument("--record", metavar="FILE",
                   help="record the view to FILE.gif or FILE.mp4 (headless)")
    p.add_argument("--speed", type=speed, default=1.0,
                   help="with --render: game speed relative to real time (default 1; e.g. 10; "
                        "max: as fast as it goes)")
    p.add_argument("--trace", action="store_true",
                   help="also write a per-tick trace beside the log, for dishbrain replay")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier log of the same player, condition and seed in --out")
    culture = p.add_argument_group("culture player")
    culture.add_argument("--condition", default=None, choices=list(FEEDBACK_RULES),
                         help="feedback condition (default stimulus)")
    culture.add_argument("--neurons", type=positive_int("neurons"), default=None,
                         help="culture size (default 1000)")
    culture.add_argument("--load-state", metavar="FILE", help="start from a saved culture")
    culture.add_argument("--save-state", metavar="FILE", help="save the culture after the session")
    culture.add_argument("--backend", choices=["auto", "standalone", "runtime"], default=None,
                         help="culture simulator: compiled C++ (standalone, fast; built once per "
                              "configuration), Brian2 runtime, or auto (standalone where a C++ "
                              "compiler exists; default, or $DISHBRAIN_CULTURE_BACKEND)")
    rl = p.add_argument_group("RL players (dqn, a2c, ppo)")
    rl.add_argument("--obs", default=None, choices=["image", "positions", "stim"],
                    help="input design: the game image, ball and paddle positions, or the "
                         "8-electrode stimulation the culture gets (default positions)")
    p.set_defaults(func=cmd_play)
