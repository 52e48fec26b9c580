"""Our compiled closed loop against its arithmetic bound: the same spike train replayed in C.

    nice -n 5 python benchmarks/bound.py [--sizes 1000 10000] [--seconds 20] [--repeats 3]

For each size: record the compiled culture's spike train (seed 0, one run of 10 ms, then
--seconds with a tick every 10 ms and the closed-loop stimulation of culture_speed.py,
``ClosedLoopStimulus``) and the stimulation commands the loop issued; hand the structure, the
spike train and the commands to ``benchmarks/bound.c`` (a minimal C loop doing the same
arithmetic per step, spike and synaptic event: see its header), compiled with the flags Brian2
compiles our binary with; then time, interleaved, --repeats times each: our compiled backend
(``culture_speed.py --one N --backend standalone``: a fresh process, the --seconds run after
10 ms, wall time of the run) and the C loop (its own clock around the loop). Prints the CPU, the
load average beside each figure, the medians, and one line per size:

    N=1000 fraction_of_bound=0.45 cpu_fraction_of_bound=0.50

(fraction_of_bound = the bound's median loop wall time / our median run wall time: 1.0 means
we run as fast as the bare arithmetic; cpu_fraction_of_bound: the same with CPU time, ours
counting the Python process and the binary, which is steadier on a loaded machine). Ratios are
what count on a shared machine; run it under ``nice -n 5``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from culture_speed import (  # noqa: E402  (the benchmarks folder is not a package)
    ClosedLoopStimulus,
    load_text,
    machine_line,
    standalone_module,
)


class CommandLog:
    """Forwards stimulate / stop_stimulation to the culture and writes them down with the step."""

    def __init__(self, culture) -> None:
        self.culture = culture
        self.mea = culture.mea
        self.rows: list[tuple[int, int, int, float, float, float]] = []

    def _step(self) -> int:
        return int(round(self.culture.t_ms / self.culture.config.dt_ms))

    def stimulate(self, electrodes, amplitude_mv, rate_hz, duration_ms, random_timing=False):
        if random_timing:
            raise ValueError("bound.c replays periodic trains only")
        for e in electrodes:
            self.rows.append((self._step(), int(e), 0, float(amplitude_mv), float(rate_hz),
                              float(duration_ms)))
        self.culture.stimulate(electrodes, amplitude_mv, rate_hz, duration_ms)

    def stop_stimulation(self, electrodes=None):
        for e in electrodes:
            self.rows.append((self._step(), int(e), 1, 0.0, 0.0, 0.0))
        self.culture.stop_stimulation(electrodes)


def record(n: int, seconds: float, out: Path) -> None:
    """In a fresh process: run the compiled culture as the speed benchmark does, with its spike
    train streamed to disk, and write everything bound.c reads into ``out``."""
    from dishbrain.culture import CultureConfig

    sa = standalone_module()
    config = CultureConfig(n_neurons=n)
    out.mkdir(parents=True, exist_ok=True)
    spikes_path = out / "spikes.bin"
    culture = sa.StandaloneCulture(config, seed=0, spike_file=spikes_path)
    culture.prepare(verbose=False)
    culture.run(10.0)
    step0 = int(round(culture.t_ms / config.dt_ms))
    log = CommandLog(culture)
    schedule = ClosedLoopStimulus(log)
    culture.run(seconds * 1000.0, tick=schedule, tick_ms=10.0)
    step1 = int(round(culture.t_ms / config.dt_ms))
    rate = culture.firing_rate_hz()

    from dishbrain import culture as rt
    dtype = getattr(rt, "SPIKE_RECORD_DTYPE", np.dtype([("t_ms", "<f8"), ("neuron", "<i4")]))
    rec = np.fromfile(spikes_path, dtype=dtype)
    steps = np.rint(rec["t_ms"] / config.dt_ms).astype(np.int64)
    order = np.argsort(steps, kind="stable")
    steps[order].tofile(out / "spike_step.i64")
    rec["neuron"][order].astype(np.int32).tofile(out / "spike_neuron.i32")
    spikes_path.unlink()

    st = culture.structure
    dt = config.dt_ms
    for name, values in (("a", st.a), ("b", st.b), ("c", st.c_mv), ("d", st.d_mv),
                         ("v0", st.v0_mv),
                         ("noise_mean", np.where(st.is_excitatory, config.noise_exc_mean_mv,
                                                 config.noise_inh_mean_mv)),
                         ("noise_sigma", np.where(st.is_excitatory, config.noise_exc_sigma_mv,
                                                  config.noise_inh_sigma_mv)),
                         ("facil", (np.asarray(st.cell_type) == 4).astype(float)),
                         ("w", st.weight)):
        np.asarray(values, dtype="<f8").tofile(out / f"{name}.f64")
    np.asarray(st.pre, dtype="<i4").tofile(out / "pre.i32")
    np.asarray(st.post, dtype="<i4").tofile(out / "post.i32")
    # Brian2 rounds a delay to whole steps: (int)(delay / dt + 0.5).
    np.floor(np.asarray(st.delay_ms) / dt + 0.5).astype("<i4").tofile(out / "delay_steps.i32")
    rows = np.array(log.rows, dtype=float).reshape(-1, 6)
    rows[:, 0].astype("<i8").tofile(out / "cmd_step.i64")
    rows[:, 1].astype("<i4").tofile(out / "cmd_electrode.i32")
    rows[:, 2].astype("<i4").tofile(out / "cmd_kind.i32")
    for k, name in ((3, "amplitude"), (4, "rate"), (5, "duration")):
        rows[:, k].astype("<f8").tofile(out / f"cmd_{name}.f64")
    coupling = culture.mea.stimulation_matrix(st.positions_um).tocsr()
    coupling.indptr.astype("<i4").tofile(out / "stim_row.i32")
    coupling.indices.astype("<i4").tofile(out / "stim_col.i32")
    coupling.data.astype("<f8").tofile(out / "stim_coupling.f64")

    stdp = 1.0 if config.stdp_enabled else 0.0
    meta = {
        "n": n, "n_exc": config.n_exc, "dt_ms": dt, "step0": step0, "step1": step1,
        "noise_steps": round(config.noise_interval_ms / dt),
        "homeo_steps": round(config.homeostasis_interval_ms / dt),
        "tick_steps": round(10.0 / dt), "noise_key": 0 * 8 + 1,
        "tau_exc": config.tau_exc_ms, "tau_inh": config.tau_inh_ms,
        "tau_nmda": config.tau_nmda_ms, "nmda_ratio": config.nmda_ratio,
        "E_exc": config.e_exc_mv, "E_inh": config.e_inh_mv,
        "v_floor": getattr(rt, "V_FLOOR_MV", -85.0), "v_ceiling": 1e6,
        "stp_on": 1.0 if config.stp_enabled else 0.0, "U_dep": config.stp_dep_u,
        "tau_rec_dep": config.stp_dep_tau_rec_ms, "U_fac": config.stp_fac_u,
        "tau_rec_fac": config.stp_fac_tau_rec_ms, "tau_facil_fac": config.stp_fac_tau_facil_ms,
        "tau_plus": config.stdp_tau_plus_ms, "tau_minus": config.stdp_tau_minus_ms,
        "A_plus": stdp * config.stdp_a_plus * config.g_ee_max_per_ms,
        "A_minus": stdp * config.stdp_a_plus * config.stdp_a_minus_ratio
        * config.g_ee_max_per_ms,
        "w_min": 0.0, "w_max": config.g_ee_max_per_ms,
        "tau_homeo": config.homeostasis_tau_s * 1000.0,
        "homeo_target": config.homeostasis_target_hz * 1e-3,
        "homeo_rate": config.homeostasis_rate,
        "homeo_on": 1.0 if config.homeostasis_enabled else 0.0,
        "stim_gain": config.stim_gain, "rate_init": config.homeostasis_target_hz * 1e-3,
        "n_electrodes": culture.n_electrodes,
    }
    (out / "meta.txt").write_text("".join(f"{k} {float(v)!r}\n" for k, v in meta.items()))
    (out / "recorded.json").write_text(json.dumps({"rate_hz": rate, "spikes": int(len(rec)),
                                                   "commands": len(log.rows),
                                                   "seconds": seconds}))


def compile_bound(folder: Path) -> Path:
    """bound.c with the flags Brian2 compiles the culture's binary with (plus the vectoriser
    parameter the build adds)."""
    from brian2 import prefs
    flags = [f for f in prefs.codegen.cpp.extra_compile_args_gcc if not f.startswith("-std=")]
    flags += ["--param=vect-max-version-for-alias-checks=64"]
    exe = folder / "bound"
    cc = os.environ.get("CC", "gcc")
    subprocess.run([cc, *flags, "-o", str(exe), str(HERE / "bound.c"), "-lm"], check=True)
    print(f"bound.c compiled: {cc} {' '.join(flags)}", flush=True)
    return exe


def time_ours(n: int, seconds: float) -> dict:
    out = subprocess.run([sys.executable, str(HERE / "culture_speed.py"), "--one", str(n),
                          "--seconds", str(seconds), "--backend", "standalone"],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"culture_speed.py failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_bound(exe: Path, folder: Path) -> dict:
    out = subprocess.run([str(exe), str(folder)], capture_output=True, text=True, check=True)
    words = out.stdout.split()
    return {words[k]: float(words[k + 1]) for k in range(0, len(words) - 1, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path,
                        help="keep the recordings and the bound's binary here (a recording of "
                             "the same size and --seconds found there is reused)")
    parser.add_argument("--record", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.record is not None:
        record(args.record, args.seconds, args.out)
        return

    print(machine_line(), flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="dishbrain_bound_") as tmp:
        tmp = Path(tmp) if args.work is None else args.work
        tmp.mkdir(parents=True, exist_ok=True)
        exe = compile_bound(tmp)
        for n in args.sizes:
            folder = tmp / f"n{n}"
            done = folder / "recorded.json"
            if not (done.exists() and json.loads(done.read_text()).get("seconds")
                    == args.seconds):
                subprocess.run([sys.executable, __file__, "--record", str(n), "--seconds",
                                str(args.seconds), "--out", str(folder)], check=True)
            rec = json.loads(done.read_text())
            print(f"N={n}: recorded {rec['spikes']} spikes ({rec['rate_hz']:.2f} Hz), "
                  f"{rec['commands']} stimulation commands; {load_text()}", flush=True)
            ours, bound, ours_cpu, bound_cpu = [], [], [], []
            for k in range(args.repeats):
                r = time_ours(n, args.seconds)
                ours.append(r["wall_s"])
                ours_cpu.append(r["cpu_s"])
                print(f"  N={n} run {k + 1}: ours {r['wall_s']:.3f} s "
                      f"({r['realtime_factor']:.2f}x real time, {r['firing_rate_hz']:.2f} Hz, "
                      f"CPU {r['cpu_s']:.3f} s); {load_text()}", flush=True)
                b = time_bound(exe, folder)
                bound.append(b["loop_s"])
                bound_cpu.append(b["cpu_s"])
                print(f"  N={n} run {k + 1}: bound {b['loop_s']:.3f} s (CPU {b['cpu_s']:.3f} s, "
                      f"{args.seconds / b['loop_s']:.2f}x real time, {int(b['spikes'])} spikes, "
                      f"{int(b['events'])} synaptic events); {load_text()}", flush=True)
            results[n] = [statistics.median(x) for x in (ours, bound, ours_cpu, bound_cpu)]
            print(f"N={n}: median wall ours {results[n][0]:.3f} s, bound {results[n][1]:.3f} s; "
                  f"median CPU ours {results[n][2]:.3f} s, bound {results[n][3]:.3f} s; "
                  f"{load_text()}; N={n} fraction_of_bound={results[n][1] / results[n][0]:.2f} "
                  f"cpu_fraction_of_bound={results[n][3] / results[n][2]:.2f}", flush=True)
    print(f"summary ({load_text()}):")
    for n, (ours_s, bound_s, ours_cpu_s, bound_cpu_s) in results.items():
        print(f"N={n} fraction_of_bound={bound_s / ours_s:.2f} "
              f"cpu_fraction_of_bound={bound_cpu_s / ours_cpu_s:.2f}")


if __name__ == "__main__":
    main()
