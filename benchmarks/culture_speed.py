"""Speed and memory of the culture in the closed loop, per network size.

    python benchmarks/culture_speed.py [--sizes 1000 5000 10000] [--seconds 20] [--dt-ms 0.5]
                                       [--cold-cache] [--spike-file]
                                       [--backends runtime standalone]

For each size, in a fresh process: build the culture (timed: "build"), run 10 ms (timed:
"first run"; this compiles the Cython code unless Brian2's cache already has it), then one long
run of --seconds simulated seconds with a tick every 10 ms that reads the electrode counts and
calls ``stimulate`` on one sensory electrode, as the place/rate encoder does. Prints the
real-time factor (simulated s / wall s), the firing rate, the resident memory at the first tick
and at the end, its range over the run (sampled every simulated second) and the process's peak.
``--cold-cache`` points Brian2's Cython cache at an empty folder to time the first compile.

``--backends``: "runtime" (Brian2 runtime/Cython, ``Culture``) and/or "standalone" (compiled C++
in lock-step with Python, ``dishbrain.culture.standalone.StandaloneCulture``), side by side. For
the standalone backend "compile s" is the one-off build of the binary (0.0 when cached; with
--cold-cache into an empty cache folder), CPU s counts this process and the binary (its child),
and the peak memory is the larger of the two processes' peaks. The load average is printed with
each row: on a busy machine, compare CPU time rather than wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def standalone_module():
    """The compiled backend's module (dishbrain.culture.standalone; dishbrain.culture_standalone
    before the culture became a package)."""
    import importlib
    try:
        return importlib.import_module("dishbrain.culture.standalone")
    except ImportError:
        return importlib.import_module("dishbrain.culture_standalone")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo) and the number of cores this process may use."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {len(os.sched_getaffinity(0))} cores"


def load_text() -> str:
    """The 1/5/15-minute load averages, for printing beside every figure."""
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def machine_line() -> str:
    import platform
    return (f"machine: {cpu_model()}; {platform.python_implementation()} "
            f"{platform.python_version()}; nice {os.nice(0)}; {load_text()}")


class ClosedLoopStimulus:
    """The benchmarks' closed-loop stimulation, the same in every benchmark and reference.

    Call it every 10 ms tick with (t_ms, counts): it sums the counts and does what the place/rate
    encoder does every game step: when the ball's band or distance changed, restart the train on
    one sensory electrode, at the old train's next pulse. The ball changes band every 1 s and
    comes closer every 100 ms (4 -> 40 Hz over 3 s). ``culture`` needs ``mea``, ``stimulate``
    and ``stop_stimulation`` (a recording proxy or a NEST replica will do).
    """

    AMPLITUDE_MV = 75.0

    def __init__(self, culture) -> None:
        self.culture = culture
        self.sensory = culture.mea.sensory
        self.k = 0
        self.total = 0
        self.cmd = None
        self.t0 = 0.0
        self.issued = 0

    def __call__(self, t_ms: float, counts) -> None:
        self.total += int(counts.sum())
        k = self.k
        electrode = self.sensory[(k // 100) % len(self.sensory)]
        rate = 4.0 + 36.0 * ((k // 10 % 30) / 30.0)
        cmd = (electrode, rate)
        if self.cmd is None:
            due = True
        else:
            period = 1000.0 / self.cmd[1]
            next_pulse = self.t0 + math.ceil((t_ms - self.t0) / period - 1e-9) * period
            due = cmd != self.cmd and next_pulse < t_ms + 10.0
        if due:
            if self.cmd is not None and self.cmd[0] != electrode:
                self.culture.stop_stimulation([self.cmd[0]])
            self.culture.stimulate([electrode], amplitude_mv=self.AMPLITUDE_MV, rate_hz=rate,
                                   duration_ms=1e6)
            self.cmd, self.t0 = cmd, t_ms
            self.issued += 1
        self.k = k + 1


def one_size(n: int, seconds: float, dt_ms: float, cold_cache: bool, spike_file: bool,
             backend: str = "runtime") -> dict:
    if cold_cache and backend == "standalone":
        import atexit
        import shutil
        cache = tempfile.mkdtemp(prefix="dishbrain_standalone_")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["DISHBRAIN_STANDALONE_CACHE"] = cache
    if cold_cache:
        import atexit
        import shutil

        from brian2 import prefs
        cache = tempfile.mkdtemp(prefix="brian_cache_")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        prefs.codegen.runtime.cython.cache_dir = cache

    from dishbrain.culture import Culture, CultureConfig

    t0 = time.perf_counter()
    tmp = tempfile.TemporaryDirectory()
    cls = Culture
    if backend == "standalone":
        cls = standalone_module().StandaloneCulture
    culture = cls(CultureConfig(n_neurons=n, dt_ms=dt_ms), seed=0,
                  spike_file=os.path.join(tmp.name, "spikes.bin") if spike_file else None)
    build_s = time.perf_counter() - t0
    compile_s = 0.0
    if backend == "standalone":
        import dishbrain.culture as dc
        ensure_build = getattr(dc, "ensure_build", None) or standalone_module().ensure_build
        t0 = time.perf_counter()
        ensure_build(culture.config, culture.mea, 10.0, spike_file, verbose=False)
        compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    culture.run(10.0)
    first_run_s = time.perf_counter() - t0

    schedule = ClosedLoopStimulus(culture)
    state = {"rss": [], "rss_first": None}

    def tick(t_ms: float, counts) -> None:
        schedule(t_ms, counts)
        if state["rss_first"] is None:
            state["rss_first"] = rss_mb()
        if (schedule.k - 1) % 100 == 0:
            state["rss"].append(rss_mb())

    t_start = culture.t_ms
    ch0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    culture.run(seconds * 1000.0, tick=tick, tick_ms=10.0)
    wall = time.perf_counter() - t0
    ch1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (time.process_time() - cpu0 + ch1.ru_utime - ch0.ru_utime + ch1.ru_stime
           - ch0.ru_stime)
    simulated_s = (culture.t_ms - t_start) / 1000.0
    return {
        "n_neurons": n,
        "dt_ms": dt_ms,
        "simulated_s": simulated_s,
        "wall_s": wall,
        "realtime_factor": simulated_s / wall,
        "build_s": build_s,
        "first_run_s": first_run_s,
        "ticks": schedule.k,
        "stimulate_calls": schedule.issued,
        "firing_rate_hz": culture.firing_rate_hz(),
        "rss_first_tick_mb": state["rss_first"],
        "rss_end_mb": rss_mb(),
        "rss_min_mb": min(state["rss"]),
        "rss_max_mb": max(state["rss"]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        # The compiled binary's own peak (the children's peak would include the compiler).
        "child_peak_rss_mb": getattr(culture, "last_run_info", {}).get("peak_rss_mb_binary", 0.0),
        "cpu_s": cpu,
        "python_cpu_s": getattr(culture, "last_run_info", {}).get("cpu_s_python", cpu),
        "cpu_realtime_factor": simulated_s / cpu,
        "compile_s": compile_s,
        "backend": backend,
        "loadavg": os.getloadavg()[0],
        "n_synapses": int(len(culture.structure.pre)),
        "cold_cache": cold_cache,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--dt-ms", type=float, default=0.5)
    parser.add_argument("--cold-cache", action="store_true",
                        help="compile into an empty Cython cache (times the first build)")
    parser.add_argument("--spike-file", action="store_true", help="also stream spikes to disk")
    parser.add_argument("--backends", nargs="+", default=["runtime", "standalone"],
                        choices=["runtime", "standalone"])
    parser.add_argument("--backend", default="runtime", help=argparse.SUPPRESS)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.one is not None:
        print(json.dumps(one_size(args.one, args.seconds, args.dt_ms, args.cold_cache,
                                  args.spike_file, args.backend)))
        return

    header = (f"{'neurons':>8} {'synapses':>9} {'dt ms':>6} {'x real time':>11} {'rate Hz':>8} "
              f"{'build s':>8} {'1st run s':>9} {'RSS start->end MB':>18} {'range MB':>14} "
              f"{'peak MB':>8} {'backend':>10} {'compile s':>9} {'CPU s':>6} {'x (CPU)':>7} "
              f"{'load':>5}")
    print(machine_line())
    print(f"closed loop: one run of {args.seconds:g} s, tick every 10 ms (counts + stimulate)")
    print(header)
    for n, backend in [(n, b) for n in args.sizes for b in args.backends]:
        cmd = [sys.executable, __file__, "--one", str(n), "--seconds", str(args.seconds),
               "--dt-ms", str(args.dt_ms), "--backend", backend]
        if args.cold_cache:
            cmd.append("--cold-cache")
        if args.spike_file:
            cmd.append("--spike-file")
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{n:>8} {backend} failed:\n{out.stderr[-2000:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{r['n_neurons']:>8} {r['n_synapses']:>9} {r['dt_ms']:>6g} "
              f"{r['realtime_factor']:>11.2f} {r['firing_rate_hz']:>8.2f} {r['build_s']:>8.1f} "
              f"{r['first_run_s']:>9.1f} {r['rss_first_tick_mb']:>8.0f} -> {r['rss_end_mb']:<7.0f} "
              f"{r['rss_min_mb']:>6.0f}-{r['rss_max_mb']:<6.0f} "
              f"{max(r['peak_rss_mb'], r['child_peak_rss_mb']):>8.0f} {r['backend']:>10} "
              f"{r['compile_s']:>9.1f} {r['cpu_s']:>6.1f} {r['cpu_realtime_factor']:>7.2f} "
              f"{r['loadavg']:>5.2f}", flush=True)


if __name__ == "__main__":
    main()
