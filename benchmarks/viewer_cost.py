"""What the live viewer costs the simulation: steps/s with and without it.

The viewer draws at a fixed 30 frames per second of wall time, so its cost is about
30 x (time to draw a frame) of every wall second, whatever the player's speed, plus a small
per-step bookkeeping cost (events, ring buffers). Target: at most 10 % of the simulation's speed.

Each configuration plays the same seeded session at full speed (``speed`` max) through
``play_session``; the viewer draws off-screen (a pygame Surface, the window's code path without
a display), or to the window of SDL's dummy video driver with ``--window``. Repeats alternate
plain and viewer runs and report the best of each. Speeds are steps per second of the process's
CPU time between the session's reset and its last step (wall-clock figures swing with whatever
else the machine runs; CPU time is what the viewer takes from the simulation); wall-clock
figures are printed beside them. Also printed: the trace recorder's cost, and the time to draw
one frame.

    python benchmarks/viewer_cost.py                       # tracker, 5 game minutes, 7 repeats
    python benchmarks/viewer_cost.py --culture-neurons 1000 # and the default Brian2 culture
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dishbrain import viewer as v  # noqa: E402
from dishbrain.session import play_session  # noqa: E402
from dishbrain.viewer import trace_wrapper  # noqa: E402


class StepClock(gym.Wrapper):
    """CPU and wall time from the reset to the last step (the innermost wrapper)."""

    def reset(self, **kwargs):
        out = self.env.reset(**kwargs)
        self.cpu0, self.wall0, self.steps = time.process_time(), time.perf_counter(), 0
        return out

    def step(self, action):
        out = self.env.step(action)
        self.steps += 1
        self.cpu1, self.wall1 = time.process_time(), time.perf_counter()
        return out


def run(make_agent, minutes: float, mode: str, window: bool, folder: Path) -> dict:
    agent = make_agent()
    log = folder / f"{mode}.jsonl"
    holder = {}

    def clock(env):
        holder["clock"] = StepClock(env)
        return holder["clock"]

    wrappers = [clock]
    if mode == "viewer":
        wrap = v.viewer_wrapper(agent, show=window, offscreen=not window, speed=0, fps=v.FPS)

        def keep(env):
            holder["viewer"] = wrap(env)
            return holder["viewer"]

        wrappers.append(keep)
    elif mode == "trace":
        wrappers.append(trace_wrapper(log, agent))
    play_session(agent, log_path=log, minutes=minutes, seed=0, progress=False,
                 wrappers=wrappers)
    agent.close()
    c = holder["clock"]
    out = {"steps_per_s": c.steps / max(c.cpu1 - c.cpu0, 1e-9),
           "wall_steps_per_s": c.steps / max(c.wall1 - c.wall0, 1e-9),
           "wall_s": c.wall1 - c.wall0}
    if "viewer" in holder:
        out["frames"] = holder["viewer"].frames_drawn
    return out


def measure_paint_ms(make_agent, n: int = 60) -> float:
    """Mean ms to draw one frame of a session in progress (off-screen)."""
    import pygame

    from dishbrain.session import make_env
    from envs.pong import PongConfig

    agent = make_agent()
    env = v.LiveViewer(make_env(PongConfig(), 10_000), agent, show=False, offscreen=True, speed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(200):
        obs, *_ = env.step(0)
    surface = pygame.Surface(env.painter.size)
    start = time.perf_counter()
    for _ in range(n):
        env.step(0)
        env.painter.paint(surface, env.model, 0.0)
    ms = (time.perf_counter() - start) / n * 1000.0
    env.close()
    return ms


def bench(name: str, make_agent, minutes: float, repeats: int, window: bool,
          paint: bool = True) -> None:
    best = {"plain": None, "viewer": None, "trace": None}
    wall = {"plain": 0.0, "viewer": 0.0, "trace": 0.0}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            for mode in ("plain", "viewer", "trace"):
                r = run(make_agent, minutes, mode, window, Path(tmp))
                if best[mode] is None or r["steps_per_s"] > best[mode]["steps_per_s"]:
                    best[mode] = r
                wall[mode] = max(wall[mode], r["wall_steps_per_s"])
    plain = best["plain"]["steps_per_s"]
    where = "window (dummy driver)" if window else "off-screen"
    print(f"{name}: {minutes:g} game min per session, best of {repeats}")
    print(f"  {'':40s} {'CPU steps/s':>12s} {'cost':>7s}   {'wall steps/s':>12s}")
    rows = [("without viewer", "plain"), (f"viewer at {v.FPS} fps, {where}", "viewer"),
            ("trace recorder (--trace)", "trace")]
    for label, mode in rows:
        sps = best[mode]["steps_per_s"]
        cost = "" if mode == "plain" else f"{100 * (1 - sps / plain):6.1f}%"
        extra = ""
        if mode == "viewer":
            extra = (f"   ({best[mode]['frames']} frames in {best[mode]['wall_s']:.2f} s wall)")
        print(f"  {label:40s} {sps:12,.0f} {cost:>7s}   {wall[mode]:12,.0f}{extra}")
    if paint:
        ms = measure_paint_ms(make_agent)
        print(f"  one frame takes {ms:.2f} ms to draw "
              f"(x {v.FPS} fps = {ms * v.FPS / 10:.1f} % of a wall second)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="tracker session (game min)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--window", action="store_true",
                        help="draw to the (dummy-driver) window instead of an off-screen surface")
    parser.add_argument("--culture-neurons", type=int, default=0,
                        help="also a Brian2 culture of this many neurons (0: skip)")
    parser.add_argument("--culture-minutes", type=float, default=0.5)
    parser.add_argument("--culture-repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from agents.simple import TrackerAgent

    bench("tracker", TrackerAgent, args.minutes, args.repeats, args.window)
    if args.culture_neurons:
        try:
            from agents.culture import make_culture_agent

            def make():
                return make_culture_agent(seed=0, n_neurons=args.culture_neurons)

            bench(f"culture ({args.culture_neurons} neurons)", make, args.culture_minutes,
                  args.culture_repeats, args.window)
        except Exception as exc:  # noqa: BLE001  (a benchmark reports, it does not stop)
            print(f"culture: not measured ({type(exc).__name__}: {str(exc).splitlines()[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
