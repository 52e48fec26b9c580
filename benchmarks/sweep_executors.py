"""The same sweep on the local pool and on a local Ray cluster: wall time, sessions per CPU-hour,
and whether every session is the same (README "Sweeps").

    python benchmarks/sweep_executors.py benchmarks/sweep-bench.toml --workers 2 --out /tmp/bench

Before timing, each variant's compiled culture is built (a culture of every variant is made and
closed), so that neither executor pays for it. Then the sweep runs into OUT/local with
`LocalExecutor(workers)` and into OUT/ray with `RayExecutor(num_cpus=workers)` (Ray's start-up
included in its wall time, and printed apart). Sessions are compared line by line, every field of
every log line except the two wall-clock ones (the header's ``started``, the end's ``wall_s``),
with each run folder's own path (in a saved culture's path) written alike.
The load average is printed before and after each run: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

from dishbrain.experiment import LocalExecutor
from dishbrain.experiment.plan import plan_text
from dishbrain.experiment.sweep import load_sweep
from dishbrain.experiment.sweep_runner import run_sweep
from dishbrain.logs import read_jsonl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from culture_speed import cpu_model  # noqa: E402  (the benchmarks folder is not a package)


def events(path: Path, root: Path) -> list[dict]:
    """A log's records but the wall-clock fields, the run folder's path written as ROOT."""
    out = []
    for r in read_jsonl(path):
        text = json.dumps({k: v for k, v in r.items() if k not in ("started", "wall_s")})
        out.append(json.loads(text.replace(json.dumps(str(root.resolve()))[1:-1], "ROOT")))
    return out


def logs(out: Path) -> dict[str, list[dict]]:
    return {str(p.relative_to(out)): events(p, out)
            for p in sorted(out.rglob("sessions/*.jsonl"))}


def load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="/tmp/sweep-executors")
    parser.add_argument("--keep", action="store_true", help="resume OUT instead of clearing it")
    parser.add_argument("--only", choices=["local", "ray"], default=None,
                        help="time one executor (its folder cleared), compare with the other's")
    args = parser.parse_args()
    sweep = load_sweep(args.sweep)
    out = Path(args.out)
    if args.only:
        shutil.rmtree(out / args.only, ignore_errors=True)
    elif out.exists() and not args.keep:
        shutil.rmtree(out)
    print(f"CPU: {cpu_model()}; workers {args.workers}")
    print(plan_text(sweep, out / "local", args.workers))

    from dishbrain.player import make_agent

    t = time.perf_counter()
    for v in sweep.runs:  # build (or find) each variant's compiled culture before timing
        p = v.config.players[0]
        if p.player == "culture":
            make_agent("culture", **p.options, seed=0).close()
    print(f"builds ready in {time.perf_counter() - t:.1f} s")

    n = len(sweep.sessions(out / "local"))
    walls = {}
    for name in [args.only] if args.only else ["local", "ray"]:
        before = load()
        t0 = time.perf_counter()
        if name == "local":
            executor = LocalExecutor(args.workers)
        else:
            from dishbrain.experiment.ray_executor import RayExecutor

            executor = RayExecutor(num_cpus=args.workers)
            executor.start()
            print(f"ray: local cluster started in {time.perf_counter() - t0:.1f} s")
        try:
            summary = run_sweep(sweep, out / name, executor, progress=False, report=False)
        finally:
            if name == "ray":
                executor.stop()
        wall = time.perf_counter() - t0
        walls[name] = wall
        per_cpu_h = len(summary.ran) / (wall * args.workers / 3600.0)
        print(f"{name}: {len(summary.ran)} played, {summary.skipped} already finished, "
              f"{len(summary.failed)} failed in {wall:.1f} s wall on {args.workers} workers "
              f"= {per_cpu_h:.0f} sessions per CPU-hour; load average before {before}, "
              f"after {load()}")
    a, b = logs(out / "local"), logs(out / "ray")
    same = sum(a.get(k) == b.get(k) for k in set(a) | set(b))
    lines = sum(len(v) for v in a.values())
    print(f"identical logs: {same} of {len(set(a) | set(b))} ({n} sessions planned; "
          f"{lines} log lines compared, all fields but started/wall_s)")
    if len(walls) == 2:
        print(f"ray / local wall: {walls['ray'] / walls['local']:.2f}")


if __name__ == "__main__":
    main()
