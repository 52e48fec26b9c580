"""Our compiled closed loop against NEST 3.x simulating a replica of our culture.

    pip install -e ".[bench]"      # nest-simulator (pip wheel)
    nice -n 5 python benchmarks/nest_reference.py [--sizes 1000 5000 10000] [--seconds 20]
                                                  [--repeats 3] [--scale-ms 1.1]

The replica, built from the same ``CultureStructure`` (seed 0) and MEA:
- neurons: NEST's ``izhikevich`` with each neuron's own a, b, c, d and initial v, u = b v, the
  published two-half-step numerics (``consistent_integration=False``, as our model) and the
  same floor (``V_min`` -85 mV); 1 thread, resolution = our dt (0.5 ms);
- noise: a ``noise_generator`` per population (mean 0, sd 2.4 for E / 1.0 for I, redrawn every
  ``noise_interval_ms``, independent per neuron), our background current;
- wiring: every synapse of the structure with its delay (rounded to the resolution);
- synapses: NEST's izhikevich takes delta inputs (a jump of v), not conductances, so each weight
  is mapped to a jump: w * (E_rev - v_ref) * ``--scale-ms`` (v_ref = -60 mV; inhibitory jumps
  also times tau_inh / tau_exc); --scale-ms is fitted so that the replica fires at our rate
  (printed side by side; the default was fitted at 1,000 neurons over 20 s, ``--fit``);
- plasticity: NEST has no synapse with both STDP and STP, and with every E->E synapse plastic and
  none depressing nothing ends a burst (the replica is either near-silent or runs away, at any
  scale), so a quarter of the E->E synapses (spread evenly over the index) are ``stdp_synapse``
  (additive pair STDP of Song et al. 2000: lambda = our A+ / g_max, alpha = A- / A+, tau+ =
  tau- = 20 ms, W_max = our g_max mapped) and the rest depress as ours (``tsodyks2_synapse``,
  U 0.5, tau_rec 800 ms); E->I ``tsodyks2_synapse`` with our STP parameters (depressing onto FS,
  facilitating onto LTS; weight / U, so that a rested synapse gives the mapped weight); I->*
  static. No homeostatic scaling (ours rescales E->E weights once per second). The event count,
  which sets the cost, is matched through the rate;
- stimulation: one ``spike_generator`` per sensory electrode, connected to the neurons its
  pulses reach with weight stim_gain * coupling and the pulse amplitude as spike weight; the
  pulse times of each 10 ms tick are set before the tick runs;
- the closed loop: ``nest.RunManager()`` and ``nest.Run(10 ms)`` per tick; each tick reads the
  spike recorder's events, counts them per electrode (the recording matrix) and calls the same
  ``ClosedLoopStimulus`` as ``culture_speed.py`` (which our backend runs in the same way).

For each size, interleaved --repeats times: our compiled backend (``culture_speed.py --one N
--backend standalone``, a fresh process, wall time of the --seconds run) and the replica (a
fresh process, wall time of the same --seconds of ticks; building the network is not timed, as
ours is not). Prints the CPU, the load beside each figure, both firing rates, and one line per
size: ``N=1000 ratio_vs_nest=6.9 cpu_ratio_vs_nest=7.2`` (NEST's median wall time / ours; the
same with CPU time, ours counting the Python process and the binary, steadier on a loaded
machine).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from culture_speed import (  # noqa: E402  (the benchmarks folder is not a package)
    ClosedLoopStimulus,
    load_text,
    machine_line,
)

# Fitted at 1,000 neurons over 20 s (seed 0): 3.2 ms with a quarter of the E->E synapses
# plastic gives 3.91 Hz against our 4.01 Hz (2.6 ms with half of them: 1.98 Hz, 2.7 ms: 15.7 Hz;
# all of them plastic: no rate between 0.5 Hz and runaway, since nothing ends a burst).
DEFAULT_SCALE_MS = 3.2
DEFAULT_STDP_FRACTION = 0.25
V_REF_MV = -60.0


class NestCulture:
    """The replica: the culture's structure in NEST, with the culture's stimulation API."""

    def __init__(self, n: int, scale_ms: float = DEFAULT_SCALE_MS,
                 stdp_fraction: float = DEFAULT_STDP_FRACTION, seed: int = 0) -> None:
        import nest

        from dishbrain.culture import CultureConfig, generate_structure
        from dishbrain.mea import MEA

        self.config = cfg = CultureConfig(n_neurons=n)
        self.mea = MEA()
        st = generate_structure(cfg, self.mea, seed)
        self.structure = st
        self.n_neurons = n
        if hasattr(nest, "VerbosityLevel"):
            nest.verbosity = nest.VerbosityLevel.ERROR
        else:
            nest.set_verbosity("M_ERROR")
        nest.ResetKernel()
        nest.SetKernelStatus({"resolution": cfg.dt_ms, "local_num_threads": 1,
                              "rng_seed": seed + 1, "print_time": False})
        self.nest = nest
        dt = cfg.dt_ms
        neurons = nest.Create("izhikevich", n, params={
            "consistent_integration": False, "V_min": -85.0, "V_th": 30.0, "I_e": 0.0,
            "tau_minus": cfg.stdp_tau_minus_ms})
        neurons.set({"a": st.a.tolist(), "b": st.b.tolist(), "c": st.c_mv.tolist(),
                     "d": st.d_mv.tolist(), "V_m": st.v0_mv.tolist(),
                     "U_m": (st.b * st.v0_mv).tolist()})
        self.neurons = neurons
        n_exc = cfg.n_exc
        for ids, sigma, mean in ((neurons[:n_exc], cfg.noise_exc_sigma_mv, cfg.noise_exc_mean_mv),
                                 (neurons[n_exc:], cfg.noise_inh_sigma_mv, cfg.noise_inh_mean_mv)):
            if len(ids) and sigma > 0:
                gen = nest.Create("noise_generator", params={"mean": mean, "std": sigma,
                                                             "dt": cfg.noise_interval_ms})
                nest.Connect(gen, ids)

        pre, post = st.pre.astype(np.int64), st.post.astype(np.int64)
        exc = st.is_excitatory
        delay = np.maximum(np.round(st.delay_ms / dt) * dt, dt)
        exc_jump = scale_ms * (cfg.e_exc_mv - V_REF_MV)
        inh_jump = -scale_ms * (V_REF_MV - cfg.e_inh_mv) * cfg.tau_inh_ms / cfg.tau_exc_ms
        ids = np.asarray(neurons.tolist())
        ee = exc[pre] & exc[post]
        ei = exc[pre] & ~exc[post]
        lts = np.asarray(st.cell_type) == 4
        # NEST has no synapse with both STDP and STP: a share stdp_fraction of the E->E synapses
        # (spread evenly over the index) is pair-STDP, the rest depresses as ours do.
        ee_k = np.cumsum(ee)
        ee_stdp = ee & (np.floor(ee_k * stdp_fraction) > np.floor((ee_k - 1) * stdp_fraction))
        ee_stp = ee & ~ee_stdp
        groups = [
            (ee_stp, exc_jump, {"synapse_model": "tsodyks2_synapse", "U": cfg.stp_dep_u,
                                "u": cfg.stp_dep_u, "tau_rec": cfg.stp_dep_tau_rec_ms,
                                "tau_fac": 0.0}, cfg.stp_dep_u),
            (ee_stdp, exc_jump, {"synapse_model": "stdp_synapse", "tau_plus": cfg.stdp_tau_plus_ms,
                            "lambda": cfg.stdp_a_plus, "alpha": cfg.stdp_a_minus_ratio,
                            "mu_plus": 0.0, "mu_minus": 0.0,
                            "Wmax": exc_jump * cfg.g_ee_max_per_ms}, 1.0),
            (ei & ~lts[post], exc_jump, {"synapse_model": "tsodyks2_synapse",
                                         "U": cfg.stp_dep_u, "u": cfg.stp_dep_u,
                                         "tau_rec": cfg.stp_dep_tau_rec_ms, "tau_fac": 0.0},
             cfg.stp_dep_u),
            (ei & lts[post], exc_jump, {"synapse_model": "tsodyks2_synapse",
                                        "U": cfg.stp_fac_u, "u": cfg.stp_fac_u,
                                        "tau_rec": cfg.stp_fac_tau_rec_ms,
                                        "tau_fac": cfg.stp_fac_tau_facil_ms}, cfg.stp_fac_u),
            (~exc[pre], inh_jump, {"synapse_model": "static_synapse"}, 1.0),
        ]
        if not cfg.stp_enabled:
            for g in groups[:3]:
                g[2].clear()
                g[2]["synapse_model"] = "static_synapse"
        for mask, jump, spec, u_div in groups:
            k = np.flatnonzero(mask)
            if k.size == 0:
                continue
            syn = dict(spec)
            syn["weight"] = st.weight[k] * jump / u_div
            syn["delay"] = delay[k]
            nest.Connect(ids[pre[k]], ids[post[k]], "one_to_one", syn)

        # One spike generator per electrode that the benchmark stimulates (the sensory ones).
        coupling = self.mea.stimulation_matrix(st.positions_um).tocsr()
        self.generators = {}
        for e in self.mea.sensory:
            row = slice(coupling.indptr[e], coupling.indptr[e + 1])
            targets = coupling.indices[row]
            gen = nest.Create("spike_generator")
            if targets.size:
                nest.Connect(gen, ids[targets], "all_to_all",
                             {"weight": (cfg.stim_gain * coupling.data[row])[:, None],
                              "delay": dt})
            self.generators[e] = gen
        self.trains: dict[int, list[float]] = {}   # electrode -> [amplitude, period, next, end]
        # Recorder parameters (n_events) cannot be reset inside RunManager, and reading the
        # memory backend returns every event so far (quadratic over a run): the ascii backend,
        # flushed after each Run, is read incrementally instead.
        self._tmp = tempfile.TemporaryDirectory(prefix="dishbrain_nest_")
        nest.SetKernelStatus({"data_path": self._tmp.name, "overwrite_files": True})
        self.recorder = nest.Create("spike_recorder", params={"record_to": "ascii",
                                                               "label": "spikes"})
        nest.Connect(neurons, self.recorder)
        self._events_file = None
        self._partial = ""
        self._record = self.mea.recording_matrix(st.positions_um).tocsr()
        self.first_id = int(ids[0])
        self.t_ms = 0.0
        self.total_spikes = 0

    # -- the culture's stimulation API -------------------------------------------------------
    def stimulate(self, electrodes, amplitude_mv, rate_hz, duration_ms, random_timing=False):
        if random_timing:
            raise ValueError("the replica plays periodic trains only")
        for e in electrodes:
            if e not in self.generators:
                raise ValueError(f"the replica stimulates the sensory electrodes only, got {e}")
            self.trains[e] = [amplitude_mv, 1000.0 / rate_hz, self.t_ms, self.t_ms + duration_ms]

    def stop_stimulation(self, electrodes=None):
        for e in (electrodes if electrodes is not None else list(self.trains)):
            if e in self.trains:
                self.trains[e][3] = self.t_ms

    # -- one tick ----------------------------------------------------------------------------
    def _schedule(self, t0: float, t1: float) -> None:
        """Set each generator's pulses in [t0, t1) (NEST emits a spike at a time T > now)."""
        dt = self.config.dt_ms
        for e, gen in self.generators.items():
            train = self.trains.get(e)
            times, weights = [], []
            if train is not None:
                amp, period, nxt, end = train
                while nxt < t1 - 0.25 * dt and nxt < end - 0.25 * dt:
                    # our pulse at step s lands in step s; NEST's at T + delay, so send at T
                    # one step later than the pulse minus the connection's delay = T itself
                    step = math.ceil(nxt / dt - 0.25)
                    times.append(max(step * dt, t0) + dt)
                    weights.append(amp)
                    nxt += period
                train[2] = nxt
            gen.set({"spike_times": times, "spike_weights": weights})

    def counts(self) -> np.ndarray:
        if self._events_file is None:
            self._events_file = open(self.recorder.get("filenames")[0])
        text = self._partial + self._events_file.read()
        cut = text.rfind("\n") + 1
        self._partial = text[cut:]
        fields = [line.split("\t", 1)[0] for line in text[:cut].splitlines()]
        senders = np.array([f for f in fields if f.isdigit()], dtype=np.int64)
        self.total_spikes += senders.size
        per_neuron = np.bincount(senders - self.first_id, minlength=self.n_neurons)
        return self._record @ per_neuron

    def closed_loop(self, seconds: float, tick_ms: float = 10.0) -> float:
        """--seconds of 10 ms ticks; returns the wall time."""
        nest = self.nest
        schedule = ClosedLoopStimulus(self)
        n_ticks = int(round(seconds * 1000.0 / tick_ms))
        counts = np.zeros(self.mea.n_electrodes, dtype=np.int64)
        t0 = time.perf_counter()
        with nest.RunManager():
            for _ in range(n_ticks):
                schedule(self.t_ms, counts)
                self._schedule(self.t_ms, self.t_ms + tick_ms)
                nest.Run(tick_ms)
                self.t_ms += tick_ms
                counts = self.counts()
        wall = time.perf_counter() - t0
        self.counts()   # what the last Run's flush left
        return wall

    def firing_rate_hz(self) -> float:
        return self.total_spikes / self.n_neurons / (self.t_ms / 1000.0)


def one_nest(n: int, seconds: float, scale_ms: float) -> dict:
    t0 = time.perf_counter()
    replica = NestCulture(n, scale_ms)
    build_s = time.perf_counter() - t0
    cpu0 = time.process_time()
    wall = replica.closed_loop(seconds)
    return {"n_neurons": n, "wall_s": wall, "cpu_s": time.process_time() - cpu0,
            "build_s": build_s, "firing_rate_hz": replica.firing_rate_hz(),
            "realtime_factor": seconds / wall, "loadavg": os.getloadavg()[0]}


def run_json(cmd: list[str]) -> dict:
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_nest(n: int, seconds: float, scale_ms: float) -> dict:
    return run_json([sys.executable, __file__, "--one", str(n), "--seconds", str(seconds),
                     "--scale-ms", repr(scale_ms)])


def time_ours(n: int, seconds: float) -> dict:
    return run_json([sys.executable, str(HERE / "culture_speed.py"), "--one", str(n),
                     "--seconds", str(seconds), "--backend", "standalone"])


def fit(n: int, seconds: float) -> None:
    """Bisect --scale-ms until the replica's rate is within 5 % of ours (printed as it goes)."""
    target = time_ours(n, seconds)["firing_rate_hz"]
    lo, hi = 1.0, 6.0
    for _ in range(12):
        mid = math.sqrt(lo * hi)
        rate = time_nest(n, seconds, mid)["firing_rate_hz"]
        print(f"scale_ms {mid:.4f}: replica {rate:.3f} Hz, ours {target:.3f} Hz", flush=True)
        if abs(rate / target - 1.0) < 0.05:
            break
        if rate > target:
            hi = mid
        else:
            lo = mid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scale-ms", type=float, default=DEFAULT_SCALE_MS,
                        help="synaptic weight -> jump of v (see the module notes)")
    parser.add_argument("--fit", type=int, metavar="N",
                        help="fit --scale-ms to our firing rate at N neurons and exit")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        print(json.dumps(one_nest(args.one, args.seconds, args.scale_ms)))
        return
    try:
        import nest  # noqa: F401
    except ImportError:
        sys.exit("nest_reference.py needs NEST: pip install -e \".[bench]\"")
    print(machine_line(), flush=True)
    if args.fit is not None:
        fit(args.fit, args.seconds)
        return
    results = {}
    for n in args.sizes:
        ours, ref = [], []
        for k in range(args.repeats):
            r = time_ours(n, args.seconds)
            ours.append(r)
            print(f"  N={n} run {k + 1}: ours {r['wall_s']:.3f} s ({r['realtime_factor']:.2f}x "
                  f"real time, CPU {r['cpu_s']:.3f} s, {r['firing_rate_hz']:.2f} Hz); "
                  f"{load_text()}", flush=True)
            q = time_nest(n, args.seconds, args.scale_ms)
            ref.append(q)
            print(f"  N={n} run {k + 1}: NEST {q['wall_s']:.3f} s ({q['realtime_factor']:.2f}x "
                  f"real time, CPU {q['cpu_s']:.3f} s, {q['firing_rate_hz']:.2f} Hz); "
                  f"{load_text()}", flush=True)
        ours_s = statistics.median(r["wall_s"] for r in ours)
        ref_s = statistics.median(q["wall_s"] for q in ref)
        rate_ours = statistics.median(r["firing_rate_hz"] for r in ours)
        rate_ref = statistics.median(q["firing_rate_hz"] for q in ref)
        match = abs(rate_ref / rate_ours - 1.0) if rate_ours > 0 else float("inf")
        results[n] = (ours_s, ref_s, statistics.median(r["cpu_s"] for r in ours),
                      statistics.median(q["cpu_s"] for q in ref))
        print(f"N={n}: median ours {ours_s:.3f} s, NEST {ref_s:.3f} s; rates ours "
              f"{rate_ours:.2f} Hz, NEST {rate_ref:.2f} Hz ({100 * match:.0f} % apart"
              f"{'' if match <= 0.10 else ', NOT matched within 10 %: refit with --fit'}); "
              f"N={n} ratio_vs_nest={ref_s / ours_s:.1f} "
              f"cpu_ratio_vs_nest={results[n][3] / results[n][2]:.1f}", flush=True)
    print(f"summary ({load_text()}):")
    for n, (ours_s, ref_s, ours_cpu, ref_cpu) in results.items():
        print(f"N={n} ratio_vs_nest={ref_s / ours_s:.1f} "
              f"cpu_ratio_vs_nest={ref_cpu / ours_cpu:.1f}")


if __name__ == "__main__":
    main()
