"""A sweep's plan and its price: the sessions of every variant, how many already finished, and
the CPU-hours they cost on this machine (`plan_text`, printed by ``dishbrain sweep`` and its
``--dry-run``).

The price comes from speeds measured in one run on one machine (`benchmarks/plan_speeds.py`),
scaled by this machine's speed relative to that one (`machine_probe`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from dishbrain.experiment.sweep import SweepConfig
from dishbrain.experiment.tasks import SessionSpec, session_finished

__all__ = ["PROBE_AT_MEASUREMENT", "estimate_seconds", "machine_probe", "plan_text"]

#: Measured speeds used for the plan's estimate, all in one run on one machine (`python
#: benchmarks/plan_speeds.py`, AMD EPYC, 2 cores, quiet, 2026-12-02), with that run's median
#: `machine_probe()` (PROBE_AT_MEASUREMENT): the plan scales every figure by this machine's
#: probe / that one, since absolute speeds differ ~3x between machines of one class (the figures
#: used before, from an earlier machine of this class ~4x faster, priced the sample-efficiency
#: sweep at 8.2 CPU-hours; these at 27.5). The culture:
#: x real time of a Stimulus session's game loop (seed 0, 0.5 game minutes, build not timed),
#: compiled backend by size; the runtime backend at 1,000 neurons. RL players: steady steps/s on
#: one core over 20,000 steps, by input design (DQN trains from its 1,000th step). Reference
#: players: a random player's 20-minute session.
PROBE_AT_MEASUREMENT = 167832
CULTURE_X_REALTIME = ((1000, 18.6), (5000, 4.3), (10000, 2.0))
CULTURE_RUNTIME_X_REALTIME_1000 = 4.6
RL_STEPS_PER_S = {
    "dqn": {"positions": 663, "stim": 741, "image": 168},
    "a2c": {"positions": 1063, "stim": 1282, "image": 508},
    "ppo": {"positions": 1102, "stim": 1102, "image": 463},
}
SIMPLE_STEPS_PER_S = 95860
SIMPLE_PLAYERS = ("random", "static", "tracker")
#: Seconds a culture session spends before its game loop: make_agent("culture", n_neurons=1000)
#: with the build cached took 1.97 s at load average 15 on the 2-core machine (docs/sweeps.md).
CULTURE_SETUP_S = 2.0
#: The compiled culture's build, once per configuration and node: 8-12 s on the quiet machine
#: (README table) to 134 s at load average 15 (docs/sweeps.md).
CULTURE_BUILD_S = (8.0, 134.0)


def machine_probe(seconds: float = 0.3) -> float:
    """This machine's speed: steps per second of the bare Pong env under a fixed action cycle,
    the best of three slices of `seconds` / 3 after a warm-up slice (pure Python, as the players'
    loops are; ~0.4 s in all). The plan scales the measured speeds above by machine_probe() /
    PROBE_AT_MEASUREMENT."""
    import time

    from envs.pong import PongEnv

    env = PongEnv()
    env.reset(seed=0)
    best, k = 0.0, 0
    for slice_ in range(4):  # slice 0 warms up (not counted)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 3:
            for _ in range(200):
                _, _, terminated, truncated, _ = env.step(k % 3)
                k += 1
                if terminated or truncated:
                    env.reset()
            n += 200
        if slice_ > 0:
            best = max(best, n / (time.perf_counter() - start))
    env.close()
    return best


def _culture_x_realtime(n: int) -> float:
    import math

    pts = CULTURE_X_REALTIME
    if n <= pts[0][0]:  # smaller cultures: the 1,000 -> 5,000 slope (no faster than 300x)
        (n0, x0), (n1, x1) = pts[0], pts[1]
    else:
        i = next((i for i in range(1, len(pts)) if n <= pts[i][0]), len(pts) - 1)
        (n0, x0), (n1, x1) = pts[i - 1], pts[i]
    slope = math.log(x1 / x0) / math.log(n1 / n0)
    return min(300.0, x0 * (n / n0) ** slope)


def estimate_seconds(spec: SessionSpec, speed: float = 1.0) -> float | None:
    """One core's seconds for a session (and its rest recording), from the measured speeds
    above on a machine `speed` times as fast as theirs (machine_probe() / PROBE_AT_MEASUREMENT);
    None for a player whose speed was never measured."""
    seconds = _estimate_at_measurement(spec)
    return None if seconds is None else seconds / speed


def _estimate_at_measurement(spec: SessionSpec) -> float | None:
    game_min = spec.minutes + (spec.rest.minutes if spec.rest is not None else 0.0)
    tick_ms = float(spec.game.get("tick_ms", 10.0))
    steps = game_min * 60_000.0 / tick_ms
    if spec.player == "culture":
        n = spec.options.get("n_neurons") or spec.options.get("culture_config", {}).get(
            "n_neurons", 1000)
        backend = spec.options.get("backend") or os.environ.get("DISHBRAIN_CULTURE_BACKEND")
        x = (CULTURE_RUNTIME_X_REALTIME_1000 * 1000 / n if backend == "runtime"
             else _culture_x_realtime(int(n)))
        return game_min * 60.0 / x + CULTURE_SETUP_S
    if spec.player in RL_STEPS_PER_S:
        obs = spec.options.get("obs", "positions")
        rate = RL_STEPS_PER_S[spec.player].get(obs)
        return None if rate is None else steps / rate
    if spec.player in SIMPLE_PLAYERS:
        return steps / SIMPLE_STEPS_PER_S
    return None


def _cpu(seconds: float) -> str:
    return f"{seconds / 3600:.2f} CPU-h" if seconds >= 360 else f"{seconds / 60:.1f} CPU-min"


def plan_text(sweep: SweepConfig, out: str | Path, workers: int,
              speed: float | None = None) -> str:
    """The plan: variants, sessions (finished already), and the CPU-hours estimate for a machine
    `speed` times as fast as the one that measured the speeds (None: probe this one)."""
    pairs = sweep.sessions(out)
    probe = machine_probe() if speed is None else None
    if speed is None:
        speed = probe / PROBE_AT_MEASUREMENT
    lines = [f"sweep {sweep.name!r} ({sweep.kind}, base {sweep.base}) -> {out}"]
    unknown = set()
    total_cpu = todo_cpu = 0.0
    n_todo = 0
    for block, runs in (("tuning", sweep.variants), ("held-out", sweep.heldout)):
        if not runs:
            continue
        lines.append(f"{block} block:")
        for v in runs:
            specs = [s for w, s in pairs if w is v]
            done = sum(session_finished(s.log_path) for s in specs)
            cpu = 0.0
            for s in specs:
                est = estimate_seconds(s, speed)
                if est is None:
                    unknown.add(s.player)
                    continue
                cpu += est
                if not session_finished(s.log_path):
                    todo_cpu += est
            total_cpu += cpu
            n_todo += len(specs) - done
            seeds = v.config.seeds
            sets = ", ".join(f"{k}={json.dumps(x)}" for k, x in v.overrides.items()) or "(base)"
            lines.append(f"  {v.name}: {sets}; {len(v.config.players)} groups x {len(seeds)} "
                         f"seeds ({seeds[0]}..{seeds[-1]}) = {len(specs)} sessions"
                         f"{f', {done} finished' if done else ''}; ~{_cpu(cpu)}")
    lines.append(f"total: {len(pairs)} sessions, {n_todo} to play; estimate {_cpu(total_cpu)} "
                 f"({total_cpu / 3600:.3f} CPU-hours; {_cpu(todo_cpu)} to play), "
                 f"~{todo_cpu / workers / 60:.1f} min wall on {workers} workers")
    lines.append("  (from the speeds measured in dishbrain/experiment/plan.py, scaled by this "
                 f"machine's speed: x{speed:.2f}"
                 + (f", probe {probe:,.0f} env steps/s against {PROBE_AT_MEASUREMENT:,.0f}"
                    if probe is not None else "")
                 + "; +-50 % on a machine whose speed drifts; a loaded one plays slower)")
    if unknown:
        lines.append(f"  (no measured speed for {', '.join(sorted(unknown))}: not counted)")
    if any(s.player == "culture" for _, s in pairs):
        lines.append("  (plus, once per culture configuration and node, the compiled culture's "
                     f"build: {CULTURE_BUILD_S[0]:g}-{CULTURE_BUILD_S[1]:g} s measured)")
    return "\n".join(lines)
