"""Where the compiled closed loop's time goes outside the arithmetic: launch, Python, the exchange.

    nice -n 5 python benchmarks/exchange_cost.py [--neurons 1000] [--seconds 20] [--repeats 5]

``benchmarks/bound.py`` compares our closed loop's wall time with a C loop doing the same
arithmetic. This splits ours, on one culture (seed 0) in one process, interleaved, medians of
--repeats runs of each kind:

- "launch": a run of 10 ms (one tick): writing the run's files, starting the binary, reading
  its state back — paid once per ``run()``;
- "empty tick": --seconds with a tick every 10 ms that does nothing (the lock-step exchange
  alone: the binary's counts, Python's reply);
- "closed loop": the same with the benchmarks' closed-loop stimulation (``ClosedLoopStimulus``
  of culture_speed.py, as bound.py runs it).

For each: wall time, this process's CPU (Python) and the binary's CPU (from wait4). Per tick,
after the launch is subtracted: the binary's CPU, Python's CPU, and the rest of the wall time
(neither process running: the wake-ups of the two context switches per tick). Prints the CPU and
load average; the figures that travel between machines are the shares, not the seconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from culture_speed import (  # noqa: E402  (the benchmarks folder is not a package)
    ClosedLoopStimulus,
    load_text,
    machine_line,
    standalone_module,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.neurons < 1 or args.seconds <= 0 or args.repeats < 1:
        parser.error("--neurons, --seconds and --repeats must be positive")

    from dishbrain.culture import CultureConfig

    print(machine_line())
    culture = standalone_module().StandaloneCulture(CultureConfig(n_neurons=args.neurons), seed=0)
    culture.run(10.0)   # builds the binary if needed; not timed
    ticks = int(round(args.seconds * 100))
    kinds = {"launch": 10.0, "empty tick": args.seconds * 1000.0,
             "closed loop": args.seconds * 1000.0}
    runs: dict[str, list[tuple[float, float, float]]] = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for kind, ms in kinds.items():
            if kind == "closed loop":
                schedule = ClosedLoopStimulus(culture)
                tick = schedule
            else:
                def tick(t_ms, counts):
                    return None
            culture.run(ms, tick=tick, tick_ms=10.0)
            info = culture.last_run_info
            runs[kind].append((info["wall_s"], info["cpu_s_python"], info["cpu_s_binary"]))
    med = {k: tuple(statistics.median(r[j] for r in v) for j in range(3)) for k, v in runs.items()}
    print(f"{args.neurons} neurons, {args.seconds:g} s simulated ({ticks} ticks of 10 ms), medians "
          f"of {args.repeats}; {load_text()}")
    print(f"{'run':<12} {'wall s':>8} {'Python CPU s':>13} {'binary CPU s':>13}")
    for kind, (wall, py, binary) in med.items():
        print(f"{kind:<12} {wall:>8.3f} {py:>13.3f} {binary:>13.3f}")
    lw, lp, lb = med["launch"]
    for kind in ("empty tick", "closed loop"):
        wall, py, binary = med[kind]
        loop = wall - lw
        b, p = (binary - lb) / ticks * 1e6, (py - lp) / ticks * 1e6
        rest = loop / ticks * 1e6 - b - p
        print(f"{kind}: per tick {loop / ticks * 1e6:.0f} us wall = binary {b:.0f} us + Python "
              f"{p:.0f} us + neither {rest:.0f} us; launch {lw / wall:.0%} of the run's wall")
    wall, py, binary = med["closed loop"]
    print(f"N={args.neurons} launch_s={lw:.4f} python_us_per_tick={(py - lp) / ticks * 1e6:.1f} "
          f"binary_us_per_tick={(binary - lb) / ticks * 1e6:.1f} "
          f"wait_us_per_tick={((wall - lw) - (py - lp) - (binary - lb)) / ticks * 1e6:.1f}")


if __name__ == "__main__":
    main()
