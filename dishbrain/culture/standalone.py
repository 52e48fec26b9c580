"""`StandaloneCulture`, the compiled backend: the culture as C++ (cpp_standalone), in lock-step.

``StandaloneCulture`` has the API of the runtime ``Culture`` (`dishbrain.culture.runtime`:
``stimulate``, ``stop_stimulation``, ``run(duration_ms, tick, tick_ms)``, ``t_ms``,
``firing_rate_hz``, ``electrode_counts``, ``record``, ``save`` / ``load``) and simulates the same
model, built by the same ``CultureNetwork``, but the simulation runs as a compiled binary:

- The binary is generated and compiled once per (config, MEA size, tick_ms, monitor) and cached
  (`dishbrain.culture.build`). The seed, the wiring and every state variable are not part of the
  build: they are handed to the binary at launch (Brian2's run_args files and our own static
  array files), so every culture of a configuration shares one build.
- Each ``run`` launches the binary once. Every ``tick_ms`` it writes the spikes each electrode
  recorded since the counts were last taken (summed in C++) and the total spike count to a pipe
  and blocks reading the reply: the stimulation commands the tick callback issued (per electrode
  and field, NaN = unchanged) and flags (stop; counts taken). The message layout and the C++ side
  are in `dishbrain.culture.link`.
- The state lives between runs in a never-run runtime ``Culture`` (the "shadow"), which gives
  structure, stimulation bookkeeping and the save format: files saved on either backend load on
  either backend.

Differences from the runtime backend: spikes in flight in the synaptic queues (< the longest
axonal delay, a few ms) are dropped at the end of each ``run`` (the runtime backend keeps them);
the stimulation pathway is all-to-all (electrodes x neurons, coupling 0 where the runtime has no
synapse), which adds exactly 0 mV. Everything else is the same code and random numbers.

``make_culture`` picks the backend (``BACKENDS``) for a new or saved culture.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dishbrain.culture.build import build_seconds, ensure_build, standalone_available, wiring_values
from dishbrain.culture.config import CultureConfig
from dishbrain.culture.link import FIELDS, MESSAGE_HEADER, STOP, TAKEN
from dishbrain.culture.runtime import (
    SPIKE_RECORD_DTYPE,
    Culture,
    TickCallback,
    check_run_arguments,
)
from dishbrain.mea import MEA

_SKIP_VARS = {"_spikespace", "i", "N", "N_incoming", "N_outgoing", "_synaptic_pre",
              "_synaptic_post"}


def _vm_hwm_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return 0.0


class _DeferredInterrupt:
    """SIGINT held back while the lock-step loop talks to the binary.

    A KeyboardInterrupt raised between a pipe read and its bookkeeping would lose bytes of the
    stream: both sides would then wait for each other forever (issue 15). Inside, SIGINT only
    sets ``pending`` (an interrupted read is retried, PEP 475); the loop sends the binary its
    stop flag at the next tick, and ``deliver`` hands the signal to the previous handler after
    the run (KeyboardInterrupt for Python's default). Outside the main thread (where signals
    cannot be handled) nothing changes.
    """

    def __init__(self) -> None:
        self.pending = False
        self._previous = None

    def _flag(self, signum, frame) -> None:
        self.pending = True

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._flag)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def deliver(self) -> None:
        """Act on a held-back SIGINT as the handler in place before the run would have."""
        self.pending = False
        handler = signal.getsignal(signal.SIGINT)
        if handler is signal.SIG_IGN:
            return
        if callable(handler):
            handler(signal.SIGINT, None)  # Python's default raises KeyboardInterrupt
        else:
            raise KeyboardInterrupt


class StandaloneCulture:
    """``Culture`` with the simulation compiled to C++ (see the module notes); same API."""

    backend = "standalone"

    def __init__(self, config: CultureConfig = CultureConfig(), mea: MEA | None = None,
                 seed: int = 0, spike_file: str | Path | None = None,
                 _shadow: Culture | None = None, tick_ms: float = 10.0) -> None:
        ok, why = standalone_available()
        if not ok:
            raise RuntimeError(f"standalone culture backend unavailable: {why}")
        self._shadow = _shadow if _shadow is not None else Culture(config, mea, seed)
        sh = self._shadow
        self.config, self.mea, self.seed = sh.config, sh.mea, sh.seed
        self.n_neurons = sh.n_neurons
        self.structure = sh.structure
        self.neuron_positions_um = sh.neuron_positions_um
        self.is_excitatory = sh.is_excitatory
        self.cell_type = sh.cell_type
        self._default_tick_ms = float(tick_ms)
        # During a run: the total spike count and the electrode counts not yet taken (from the
        # binary's last message), and whether the tick took them.
        self._live_total: int | None = None
        self._live_counts: np.ndarray | None = None
        self._taken = False
        self._touched: np.ndarray | None = None       # (n_electrodes, 5) during a run
        self._spike_file = Path(spike_file) if spike_file is not None else None
        if self._spike_file is not None:
            self._spike_file.parent.mkdir(parents=True, exist_ok=True)
            self._spike_file.write_bytes(b"")
        self.last_run_info: dict = {}
        self.last_profile = ""

    def prepare(self, tick_ms: float | None = None, verbose: bool = True) -> Path:
        """Build (or find cached) the binary that ``run`` with this ``tick_ms`` will use."""
        return ensure_build(self.config, self.mea, tick_ms or self._default_tick_ms,
                            self._spike_file is not None, verbose=verbose)

    # -- time, rates, counts ----------------------------------------------------------------
    @property
    def t_ms(self) -> float:
        return self._shadow.t_ms

    @property
    def n_electrodes(self) -> int:
        return self.mea.n_electrodes

    def firing_rate_hz(self) -> float:
        t_s = self.t_ms * 1e-3
        if t_s <= 0:
            return 0.0
        total = self._live_total
        if total is None:
            total = int(self._shadow._n_spikes.sum(dtype=np.int64))
        return float(total) / self.n_neurons / t_s

    def electrode_counts(self) -> np.ndarray:
        """Spikes recorded per electrode since the last call (or tick); int64 (n_electrodes,)."""
        if self._live_counts is not None:   # inside a run: the binary summed them
            counts = self._live_counts
            self._live_counts = np.zeros_like(counts)
            self._taken = True
            return counts
        sh = self._shadow
        now = sh._n_spikes.astype(np.int64)
        delta = now - sh._last_counts
        sh._last_counts = now
        return sh._record @ delta

    # -- stimulation (the shadow's bookkeeping; inside a run also sent to the binary) --------
    def stimulate(self, electrodes: Sequence[int], amplitude_mv: float, rate_hz: float,
                  duration_ms: float, random_timing: bool = False) -> None:
        idx = self._shadow._electrode_index(electrodes)
        self._shadow.stimulate(electrodes, amplitude_mv, rate_hz, duration_ms, random_timing)
        if self._touched is not None:
            self._touched[idx, :] = True

    def stop_stimulation(self, electrodes: Sequence[int] | None = None) -> None:
        idx = self._shadow._electrode_index(electrodes)
        self._shadow.stop_stimulation(electrodes)
        if self._touched is not None:
            self._touched[idx, 2] = True

    # -- running ----------------------------------------------------------------------------
    def run(self, duration_ms: float, tick: TickCallback | None = None, tick_ms: float = 10.0,
            progress: bool = False) -> None:
        """As ``Culture.run``: one launch of the compiled binary, ``tick`` every ``tick_ms``."""
        self._run(duration_ms, tick, tick_ms, monitor=self._spike_file is not None)

    def record(self, duration_ms: float, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        return self._run(duration_ms, None, self._default_tick_ms, monitor=True, keep=True)

    def _run(self, duration_ms, tick, tick_ms, monitor, keep=False):
        check_run_arguments(self.config, duration_ms, tick, tick_ms)
        if tick is None:
            tick_ms = self._default_tick_ms
        empty = (np.empty(0), np.empty(0, np.int32))
        if duration_ms == 0:
            return empty if keep else None
        folder = ensure_build(self.config, self.mea, tick_ms, monitor)
        manifest = json.loads((folder / "manifest.json").read_text())
        sh, st = self._shadow, self.structure
        wiring = {}   # static array file -> this culture's values
        for S, idx in sh._b.recurrent:
            info = manifest["synapses"].get(S.name, {"n": 0})
            if info["n"] != idx.size:
                raise RuntimeError("standalone build does not fit this culture's wiring")
            if idx.size:
                for key, values in wiring_values(st, idx).items():
                    fname, dtype = info[key]
                    wiring[fname] = np.asarray(values, dtype=dtype)
        variables = manifest["variables"]
        ne = self.n_electrodes
        wall0, cpu0 = time.perf_counter(), time.process_time()
        with tempfile.TemporaryDirectory(prefix="dishbrain_run_") as tmp:
            tmp = Path(tmp)
            static = tmp / "static_arrays"
            static.mkdir()
            for f in (folder / "project" / "static_arrays").iterdir():
                os.symlink(f, static / f.name)
            for name, arr in wiring.items():
                (static / name).unlink(missing_ok=True)
                arr.tofile(static / name)
            args_dir = tmp / "args"
            args_dir.mkdir()
            results = tmp / "results"
            results.mkdir()
            args = [str(folder / "project" / "main"), "--results_dir", str(results) + "/"]
            passed = []
            for oname, obj in sh._stateful_objects().items():
                if oname == "culture_stim":
                    continue
                for var in obj.variables:
                    key = f"{oname}.{var}"
                    info = variables.get(key)
                    if info is None or info["read_only"] or var in _SKIP_VARS:
                        continue
                    values = np.asarray(obj.variables[var].get_value())
                    f = args_dir / key
                    values.astype(info["dtype"]).tofile(f)
                    args.append(f"{key}={f}")
                    passed.append((obj, var, info))
            coupling = np.asarray(sh._stim_coupling.todense(), dtype="<f8").ravel()
            coupling.tofile(args_dir / "coupling")
            args.append(f"culture_stim.coupling={args_dir / 'coupling'}")
            # The recording matrix by neuron and the counters at the counts last taken, for the
            # counts the binary sums (dishbrain.culture.link).
            by_neuron = sh._record.T.tocsr()
            np.concatenate([by_neuron.indptr, by_neuron.indices, by_neuron.data]).astype(
                "<i4").tofile(args_dir / "record")
            sh._last_counts.astype("<i4").tofile(args_dir / "last_counts")

            t0_s = sh._net_t_s()
            with _DeferredInterrupt() as interrupt:  # Ctrl-C: stop at the next tick
                r_out, w_out = os.pipe()   # binary -> us
                r_in, w_in = os.pipe()     # us -> binary
                env = dict(os.environ, DISHBRAIN_FD_OUT=str(w_out), DISHBRAIN_FD_IN=str(r_in),
                           DISHBRAIN_SEED=str(self.seed), DISHBRAIN_T0=repr(t0_s),
                           DISHBRAIN_DURATION=repr(duration_ms * 1e-3),
                           DISHBRAIN_RECORD=str(args_dir / "record"),
                           DISHBRAIN_LAST_COUNTS=str(args_dir / "last_counts"),
                           DISHBRAIN_LAST_COUNTS_OUT=str(results / "last_counts"))
                proc = subprocess.Popen(args, cwd=str(tmp), env=env, pass_fds=(w_out, r_in),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        start_new_session=True)  # Ctrl-C reaches only us
                os.close(w_out)
                os.close(r_in)
                fin = os.fdopen(r_out, "rb", buffering=0)
                fout = os.fdopen(w_in, "wb", buffering=0)
                failure: list[BaseException] = []
                ticks = 0
                reply = np.full(1 + ne * 5, np.nan)
                E = sh._b.electrodes
                fields = [sh._b.value(E, f) for f in FIELDS]
                hwm = 0.0
                touched_buf = np.zeros((ne, 5), dtype=bool)
                touched_any = False
                nbytes = 8 * (MESSAGE_HEADER + ne)
                buf = bytearray(nbytes)
                view = memoryview(buf)
                message = np.frombuffer(buf, dtype="<i8")
                try:
                    while True:
                        got = 0
                        while got < nbytes:
                            k = fin.readinto(view[got:])  # Ctrl-C: flagged, retried (PEP 475)
                            if not k:
                                break
                            got += k
                        if got < nbytes:
                            break   # the binary finished the run
                        step = int(message[0])
                        self._live_total = int(message[1])
                        self._live_counts = message[MESSAGE_HEADER:].copy()
                        self._taken = False
                        stop = False
                        reply[:] = np.nan
                        if failure or interrupt.pending:
                            stop = True
                        elif tick is not None:
                            self._touched = touched_buf
                            if touched_any:
                                touched_buf[:] = False
                            n_tick = round(step * self.config.dt_ms / tick_ms)
                            sh._tick_now_ms = float(n_tick) * tick_ms
                            try:
                                if tick(sh._tick_now_ms, self.electrode_counts()) is False:
                                    stop = True
                            except BaseException as exc:  # noqa: BLE001 (re-raised below)
                                failure.append(exc)
                                stop = True
                            finally:
                                sh._tick_now_ms = None
                            touched = self._touched
                            self._touched = None
                            touched_any = bool(touched.any())
                            if touched_any:
                                rows, cols = np.nonzero(touched)
                                values = np.stack(fields, axis=1)
                                reply[1 + rows * 5 + cols] = values[rows, cols]
                        if ticks % 500 == 0:
                            hwm = max(hwm, _vm_hwm_mb(proc.pid))
                        ticks += 1
                        reply[0] = (STOP if stop else 0) + (TAKEN if self._taken else 0)
                        try:
                            fout.write(reply.tobytes())
                        except BrokenPipeError:
                            break
                except BaseException:
                    proc.kill()
                    proc.wait()
                    proc.stderr.close()
                    raise
                finally:
                    fin.close()
                    try:
                        fout.close()
                    except BrokenPipeError:
                        pass
                    self._live_total = self._live_counts = None
                try:
                    err = proc.stderr.read().decode(errors="replace")
                    if (results / "profiling_info.txt").exists():
                        self.last_profile = (results / "profiling_info.txt").read_text()
                    # wait4: with the binary's CPU time and peak memory
                    _, status, usage = os.wait4(proc.pid, 0)
                finally:
                    proc.stderr.close()
            rc = proc.returncode = os.waitstatus_to_exitcode(status)
            if rc != 0 and interrupt.pending:  # killed from outside while Ctrl-C was pending
                interrupt.deliver()
            if rc < 0:
                raise RuntimeError(f"standalone culture binary was killed (signal {-rc})")
            if rc != 0:
                raise RuntimeError(f"standalone culture binary failed (exit {rc}):\n{err[-3000:]}")
            # The final state back into the shadow.
            for obj, var, info in passed:
                data = np.fromfile(results / variables[f"{obj.name}.{var}"]["file"],
                                   dtype=info["dtype"])
                obj.variables[var].get_value()[:] = data
            sh._last_counts = np.fromfile(results / "last_counts", dtype="<i4").astype(np.int64)
            ts = np.fromfile(results / variables["culture_clock.timestep"]["file"], dtype="<i8")
            sh._net.t_ = float(ts[0]) * self.config.dt_ms * 1e-3
            spikes = empty
            if monitor:
                t = np.fromfile(results / variables["culture_monitor.t"]["file"], dtype="<f8")
                i = np.fromfile(results / variables["culture_monitor.i"]["file"], dtype="<i4")
                spikes = (t * 1e3, i)
                if self._spike_file is not None:
                    rec = np.empty(len(t), dtype=SPIKE_RECORD_DTYPE)
                    rec["t_ms"], rec["neuron"] = t * 1e3, i
                    with open(self._spike_file, "ab") as f:
                        rec.tofile(f)
        self.last_run_info = {"wall_s": time.perf_counter() - wall0,
                              "cpu_s_python": time.process_time() - cpu0, "ticks": ticks,
                              "cpu_s_binary": usage.ru_utime + usage.ru_stime,
                              # sampled from /proc (ru_maxrss would count the forked Python)
                              "peak_rss_mb_binary": hwm or usage.ru_maxrss / 1024.0,
                              "build_s": build_seconds(folder)}
        if failure:
            raise failure[0]
        if interrupt.pending:  # the run stopped at the tick after Ctrl-C; the state is kept
            interrupt.deliver()
        return spikes if keep else None

    # -- persistence: the runtime culture's format ------------------------------------------
    def save(self, path: str | Path) -> None:
        self._shadow.save(path)

    @classmethod
    def load(cls, path: str | Path, spike_file: str | Path | None = None) -> StandaloneCulture:
        culture = cls(_shadow=Culture.load(path))
        if spike_file is not None:
            culture._spike_file = Path(spike_file)
        return culture

    def to_runtime(self) -> Culture:
        """The state as a runtime ``Culture`` (the shadow; further runs there are runtime)."""
        return self._shadow

    def __repr__(self) -> str:
        return (f"StandaloneCulture(n_neurons={self.n_neurons}, seed={self.seed}, "
                f"t_ms={self.t_ms:.1f}, mea={self.mea!r})")


BACKENDS = ("auto", "standalone", "runtime")


def make_culture(config: CultureConfig = CultureConfig(), mea: MEA | None = None, seed: int = 0,
                 spike_file=None, backend: str = "auto", path: str | Path | None = None):
    """A new culture (or one loaded from ``path``) on ``backend``.

    "auto": the standalone backend where a C++ compiler exists, else the runtime one with a
    warning. Saved files are the same for both.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        ok, why = standalone_available()
        backend = "standalone" if ok else "runtime"
        if not ok:
            import warnings
            warnings.warn(f"dishbrain: compiled culture unavailable ({why}); using the slower "
                          "runtime backend", RuntimeWarning, stacklevel=2)
    if backend == "standalone":
        if path is not None:
            return StandaloneCulture.load(path, spike_file=spike_file)
        return StandaloneCulture(config, mea, seed, spike_file=spike_file)
    if path is not None:
        return Culture.load(path, spike_file=spike_file)
    return Culture(config, mea, seed, spike_file=spike_file)
