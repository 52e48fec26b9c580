"""The culture compiled to C++ (Brian2 cpp_standalone), run in lock-step with the Python loop.

``StandaloneCulture`` has the API of ``dishbrain.culture.Culture`` (``stimulate``,
``stop_stimulation``, ``run(duration_ms, tick, tick_ms)``, ``t_ms``, ``firing_rate_hz``,
``electrode_counts``, ``record``, ``save`` / ``load``) and simulates the same model, built by
the same ``CultureNetwork``, but the simulation runs as a compiled binary:

- The binary is generated and compiled once per (config, MEA size, tick_ms, monitor) in a cache
  folder (``DISHBRAIN_STANDALONE_CACHE`` or ``~/.cache/dishbrain/standalone``) by a helper process
  (``python -m dishbrain.culture_standalone build ...``), so Brian2's process-global device never
  leaves this process's runtime mode. The seed, the wiring and every state variable are not part
  of the build: they are handed to the binary at launch (Brian2's run_args files and our own
  static array files), so every culture of a configuration shares one build.
- Each ``run`` launches the binary once. Every ``tick_ms`` a ``run_regularly`` operation calls a
  C++ function that writes the neurons' spike counters to a pipe and blocks reading the reply:
  the stimulation commands the tick callback issued (per electrode and field, NaN = unchanged)
  and a stop flag. A second ``run_regularly`` applies the commands to the electrode group.
- The state lives between runs in a never-run runtime ``Culture`` (the "shadow"), which gives
  structure, stimulation bookkeeping and the save format: files saved on either backend load on
  either backend.

Differences from the runtime backend: spikes in flight in the synaptic queues (< the longest
axonal delay, a few ms) are dropped at the end of each ``run`` (the runtime backend keeps them);
the stimulation pathway is all-to-all (electrodes x neurons, coupling 0 where the runtime has no
synapse), which adds exactly 0 mV. Everything else is the same code and random numbers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from dishbrain import culture as _rt
from dishbrain.culture import Culture, CultureConfig, TickCallback, check_run_arguments
from dishbrain.mea import MEA, MEAConfig

BUILD_VERSION = 2
_FIELDS = ("amplitude", "rate", "t_end", "next_pulse", "random_timing")

_LINK_HEADER = r"""
#ifndef DISHBRAIN_LINK_H
#define DISHBRAIN_LINK_H
double ds_exchange(int i, int n_spikes, long long step);
double ds_cmd(int i, int field, double current);

// The random numbers are inline here, not in dishbrain_link.cpp, so that the per-neuron noise
// loop makes no function calls (and vectorises).
extern const long long ds_seed8;

static inline unsigned long long ds_mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline unsigned long long ds_hash64(long long key, long long index, long long step) {
    // The build uses the streams of seed 0; the culture's seed is added here.
    key += ds_seed8;
    unsigned long long z = ds_mix64((unsigned long long)key * 0x9E3779B97F4A7C15ULL
                                    + (unsigned long long)step);
    return ds_mix64(z + (unsigned long long)index * 0xD1B54A32D192ED03ULL);
}

static inline double ds_hash_uniform(long long key, long long index, long long step) {
    return ((ds_hash64(key, index, step) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static inline double ds_hash_normal(long long key, long long index, long long step) {
    unsigned long long z = ds_hash64(key, index, step);
    double s = (double)((z & 0xFFFFULL) + ((z >> 16) & 0xFFFFULL) + ((z >> 32) & 0xFFFFULL)
                        + (z >> 48)) + 2.0;
    return (s / 65536.0 - 2.0) * 1.7320508075688772;
}
#endif
"""

_LINK_SOURCE = r"""
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <cmath>
#include <vector>
#include "network.h"
#include "dishbrain_link.h"

static int ds_fd_out = -1, ds_fd_in = -1;
static std::vector<int32_t> ds_counts;
static std::vector<double> ds_reply;
// Set before main() runs, i.e. before any code object draws a random number.
extern const long long ds_seed8 = [] {
    const char* s = getenv("DISHBRAIN_SEED");
    return s ? atoll(s) * 8 : 0LL;
}();

static void ds_fail(const char* what) {
    fprintf(stderr, "dishbrain link: %s\n", what);
    exit(3);
}

static void ds_write_all(const void* buf, size_t n) {
    const char* p = (const char*)buf;
    while (n > 0) {
        ssize_t k = write(ds_fd_out, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) ds_fail("write failed");
        p += k; n -= (size_t)k;
    }
}

static void ds_read_all(void* buf, size_t n) {
    char* p = (char*)buf;
    while (n > 0) {
        ssize_t k = read(ds_fd_in, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) ds_fail("read failed (parent gone)");
        p += k; n -= (size_t)k;
    }
}

double ds_exchange(int i, int n_spikes, long long step) {
    if (ds_fd_out < 0) {
        const char* o = getenv("DISHBRAIN_FD_OUT");
        const char* in = getenv("DISHBRAIN_FD_IN");
        if (!o || !in) ds_fail("DISHBRAIN_FD_OUT / DISHBRAIN_FD_IN not set");
        ds_fd_out = atoi(o);
        ds_fd_in = atoi(in);
        ds_counts.assign(DS_N, 0);
        ds_reply.assign(1 + DS_NE * 5, NAN);
    }
    ds_counts[i] = n_spikes;
    if (i == DS_N - 1) {
        int64_t s = step;
        ds_write_all(&s, sizeof(s));
        ds_write_all(ds_counts.data(), sizeof(int32_t) * DS_N);
        ds_read_all(ds_reply.data(), sizeof(double) * ds_reply.size());
        if (ds_reply[0] != 0.0) Network::_globally_stopped = true;
    }
    return 0.0;
}

double ds_cmd(int i, int field, double current) {
    if (ds_reply.empty()) return current;
    double v = ds_reply[1 + i * 5 + field];
    return std::isnan(v) ? current : v;
}
"""

_EXCHANGE_CODE = "_ds_dummy = ds_exchange(i, n_spikes, t_in_timesteps)"
_APPLY_CODE = """
amplitude = ds_cmd(i, 0, amplitude / volt) * volt
rate = ds_cmd(i, 1, rate / Hz) * Hz
t_end = ds_cmd(i, 2, t_end / second) * second
next_pulse = ds_cmd(i, 3, next_pulse / second) * second
random_timing = ds_cmd(i, 4, random_timing)
"""


# ---------------------------------------------------------------------------------------------
# Availability and the build cache
# ---------------------------------------------------------------------------------------------

def _compiler() -> str | None:
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return name
    return None


def standalone_available() -> tuple[bool, str]:
    """(True, '') if the compiled backend can be built here, else (False, why)."""
    if os.name != "posix":
        return False, "the standalone culture backend needs a POSIX system"
    if _compiler() is None:
        return False, "no C++ compiler (g++/c++/clang++) found"
    if shutil.which("make") is None:
        return False, "'make' not found"
    return True, ""


def _wiring(structure, idx: np.ndarray) -> dict[str, np.ndarray]:
    """The values of one Synapses object's static arrays (synapses `idx` of the structure):
    sources, targets and delays in seconds, as the compiled binary reads them."""
    return {"pre": structure.pre[idx], "post": structure.post[idx],
            "delay": structure.delay_ms[idx] * 1e-3}


def _vectorise_args() -> list[str]:
    """GCC flags that let the per-neuron loops vectorise (neuron update ~5x faster at 10k).

    Brian2's loops read global arrays through local ``__restrict`` copies, which GCC does not
    trust: it vectorises a loop only behind run-time alias checks, at most 10 pairs by default,
    and the neuron update (9 arrays, 5 of them written) needs 30.
    """
    cxx = _compiler()
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    except OSError:
        return []
    return [] if "clang" in version.lower() else ["--param=vect-max-version-for-alias-checks=64"]


def cache_root() -> Path:
    env = os.environ.get("DISHBRAIN_STANDALONE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dishbrain" / "standalone"


def _machine_id() -> str:
    import platform
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags")):
                    model += line
    except OSError:
        pass
    return platform.machine() + ":" + hashlib.sha1(model.encode()).hexdigest()[:12]


def _build_spec(config: CultureConfig, mea: MEA, tick_ms: float, monitor: bool) -> dict:
    import brian2
    return {
        "build_version": BUILD_VERSION,
        "config": config.to_dict(),
        "mea_config": json.loads(json.dumps(_rt.dataclasses.asdict(mea.config))),
        "tick_ms": float(tick_ms),
        "monitor": bool(monitor),
        # Per-code-object timings in results/profiling_info.txt (diagnostics only).
        "profile": os.environ.get("DISHBRAIN_STANDALONE_PROFILE", "") == "1",
        "brian2": brian2.__version__,
        # -march=native: a binary is only valid on the CPU model it was built on.
        "machine": _machine_id(),
        # The model and the build code (link sources, compiler flags).
        "source": hashlib.sha1(Path(_rt.__file__).read_bytes()
                               + Path(__file__).read_bytes()).hexdigest(),
    }


def _spec_key(spec: dict) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


_BUILD_TIMES: dict[str, float] = {}


def ensure_build(config: CultureConfig, mea: MEA, tick_ms: float = 10.0, monitor: bool = False,
                 verbose: bool = True) -> Path:
    """The folder of the compiled project for this configuration (built now if not cached)."""
    import fcntl
    spec = _build_spec(config, mea, tick_ms, monitor)
    key = _spec_key(spec)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    folder = root / key
    ok = folder / "manifest.json"
    if ok.exists():
        try:
            os.utime(ok)   # least recently used builds are pruned first
        except OSError:
            pass
        return folder
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ok.exists():
            return folder
        if folder.exists():
            shutil.rmtree(folder)
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=root))
        (tmp / "spec.json").write_text(json.dumps(spec))
        if verbose:
            print(f"dishbrain: compiling the standalone culture ({config.n_neurons} neurons; "
                  "once per configuration, ~10-60 s)...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-m", "dishbrain.culture_standalone", "build",
                              str(tmp)], capture_output=True, text=True,
                             cwd=str(Path(__file__).resolve().parents[1]))
        if out.returncode != 0 or not (tmp / "manifest.json").exists():
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError("standalone build failed:\n" + out.stdout[-3000:]
                               + out.stderr[-5000:])
        seconds = time.perf_counter() - t0
        _BUILD_TIMES[key] = seconds
        meta = json.loads((tmp / "manifest.json").read_text())
        meta["build_s"] = seconds
        (tmp / "manifest.json").write_text(json.dumps(meta))
        os.rename(tmp, folder)
        _prune(root, keep=folder)
        if verbose:
            print(f"dishbrain: standalone culture compiled ({seconds:.1f} s)", file=sys.stderr,
                  flush=True)
    return folder


MAX_BUILDS = 24


def _prune(root: Path, keep: Path) -> None:
    """Remove the least recently used builds beyond MAX_BUILDS (not ``keep``)."""
    builds = sorted((p for p in root.iterdir() if (p / "manifest.json").exists() and p != keep),
                    key=lambda p: (p / "manifest.json").stat().st_mtime, reverse=True)
    for old in builds[MAX_BUILDS - 1:]:
        shutil.rmtree(old, ignore_errors=True)
        (root / f"{old.name}.lock").unlink(missing_ok=True)


def _build(folder: Path) -> None:
    """In a helper process: generate and compile the project described by folder/spec.json."""
    spec = json.loads((folder / "spec.json").read_text())
    import scipy.sparse as sp
    from brian2 import Clock, Function, Hz, ms, prefs, second, set_device, device, volt

    config = CultureConfig.from_dict(spec["config"])
    mea = MEA(MEAConfig(**spec["mea_config"]))
    n, ne = config.n_neurons, mea.n_electrodes
    project = folder / "project"
    set_device("cpp_standalone", build_on_run=False, directory=str(project))
    prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]
    prefs.codegen.cpp.extra_compile_args_gcc = (list(prefs.codegen.cpp.extra_compile_args_gcc)
                                                + _vectorise_args())
    (folder / "link").mkdir()
    (folder / "link" / "dishbrain_link.h").write_text(_LINK_HEADER)
    src = folder / "link" / "dishbrain_link.cpp"
    src.write_text(f"#define DS_N {n}\n#define DS_NE {ne}\n" + _LINK_SOURCE)
    kw = {"headers": ['"dishbrain_link.h"'], "sources": [str(src)],
          "include_dirs": [str(folder / "link")]}

    def fn(name, arg_types, return_type="float"):
        f = Function(lambda *a: 0.0, arg_units=[1] * len(arg_types), return_unit=1,
                     arg_types=arg_types, return_type=return_type, stateless=False)
        f.implementations.add_implementation("cpp", code="", name=name, compiler_kwds=kw)
        return f

    hash_u = fn("ds_hash_uniform", ["integer"] * 3)
    hash_n = fn("ds_hash_normal", ["integer"] * 3)
    exchange = fn("ds_exchange", ["integer"] * 3)
    cmd = fn("ds_cmd", ["integer", "integer", "float"])

    st = _rt.generate_structure(config, mea, 0)
    rows = np.repeat(np.arange(ne, dtype=np.int32), n)
    cols = np.tile(np.arange(n, dtype=np.int32), ne)
    full = sp.coo_matrix((np.full(ne * n, 0.5), (rows, cols)), shape=(ne, n))
    b = _rt.CultureNetwork(config, st, mea, full)
    tick_clock = Clock(spec["tick_ms"] * ms, name="culture_tick_clock")
    b.neurons.run_regularly(_EXCHANGE_CODE, clock=tick_clock, when="start", order=-2,
                            name="culture_exchange")
    b.electrodes.run_regularly(_APPLY_CODE, clock=tick_clock, when="start", order=-1,
                               name="culture_apply")
    if spec["monitor"]:
        from brian2 import SpikeMonitor
        mon = SpikeMonitor(b.neurons, name="culture_monitor")
        b.net.add(mon)
    ns = _rt.model_namespace(config, 0)
    ns.update({"hash_uniform": hash_u, "hash_normal": hash_n, "ds_exchange": exchange,
               "ds_cmd": cmd, "volt": volt, "Hz": Hz, "second": second})
    b.net.run(1 * second, namespace=ns, profile=bool(spec.get("profile")))
    device.build(directory=str(project), compile=False, run=False, with_output=False)

    # The run's start time and duration come from the environment.
    main = project / "main.cpp"
    text = main.read_text()
    import re
    m = re.search(r"culture_network\.run\(([^,]+),", text)
    if m is None:
        raise RuntimeError("cannot find the network run call in main.cpp")
    text = (text[:m.start()]
            + "culture_network.t = atof(getenv(\"DISHBRAIN_T0\"));\n\t\t"
            + "culture_network.run(atof(getenv(\"DISHBRAIN_DURATION\")),"
            + text[m.end():])
    main.write_text(text)
    out = subprocess.run(["make", "-j2"], cwd=str(project), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError("make failed:\n" + out.stdout[-3000:] + out.stderr[-5000:])
    for obj in project.rglob("*.o"):   # only the binary and the static arrays are used
        obj.unlink()

    # Which files hold what: results per variable, the wiring's static arrays.
    from brian2.core.network import _get_all_objects
    variables = {}
    for obj in list(_get_all_objects(b.net.objects)) + [b.clock, b.noise_clock, tick_clock]:
        for vname, var in getattr(obj, "variables", {}).items():
            if not hasattr(var, "owner") or var.owner is None or not hasattr(var, "dtype"):
                continue
            if var.owner.name != obj.name or getattr(var, "scalar", None) is None:
                continue
            try:
                fname = device.get_array_filename(var)
            except Exception:
                continue
            variables[f"{obj.name}.{vname}"] = {
                "file": fname, "dtype": np.dtype(var.dtype).str,
                "read_only": bool(var.read_only),
                "dynamic": type(var).__name__ == "DynamicArrayVariable"}
    # Per recurrent Synapses object: its size and the static arrays of its wiring and delays
    # (Brian2's names, checked against the values of the seed-0 structure built here).
    synapses = {}
    for S, idx in b.recurrent:
        if idx.size == 0:   # an inactive object (see CultureNetwork)
            continue
        info = {"n": int(idx.size)}
        files = {"pre": f"_static_array__array_{S.name}_sources",
                 "post": f"_static_array__array_{S.name}_targets",
                 "delay": f"_static_array__dynamic_array_{S.name}_delay"}
        for key, values in _wiring(st, idx).items():
            fname = files[key]
            arr = device.static_arrays.get(fname)
            if arr is None or not np.array_equal(arr, values):
                raise RuntimeError(f"cannot identify the static array {fname} of {S.name}")
            info[key] = [fname, np.dtype(arr.dtype).str]
        synapses[S.name] = info
    manifest = {"n_neurons": n, "n_electrodes": ne, "synapses": synapses,
                "variables": variables, "tick_ms": spec["tick_ms"],
                "monitor": spec["monitor"], "dt_ms": config.dt_ms}
    (folder / "manifest.json").write_text(json.dumps(manifest))



# ---------------------------------------------------------------------------------------------
# The culture
# ---------------------------------------------------------------------------------------------

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
        self._live_spikes: np.ndarray | None = None   # n_spikes during a run
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

    def _n_spikes(self) -> np.ndarray:
        if self._live_spikes is not None:
            return self._live_spikes
        return self._shadow._n_spikes

    def firing_rate_hz(self) -> float:
        t_s = self.t_ms * 1e-3
        if t_s <= 0:
            return 0.0
        return float(self._n_spikes().sum(dtype=np.int64)) / self.n_neurons / t_s

    def electrode_counts(self) -> np.ndarray:
        sh = self._shadow
        now = self._n_spikes().astype(np.int64)
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
                for key, values in _wiring(st, idx).items():
                    fname, dtype = info[key]
                    wiring[fname] = np.asarray(values, dtype=dtype)
        variables = manifest["variables"]
        n, ne = self.n_neurons, self.n_electrodes
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

            t0_s = sh._net_t_s()
            r_out, w_out = os.pipe()   # binary -> us
            r_in, w_in = os.pipe()     # us -> binary
            env = dict(os.environ, DISHBRAIN_FD_OUT=str(w_out), DISHBRAIN_FD_IN=str(r_in),
                       DISHBRAIN_SEED=str(self.seed), DISHBRAIN_T0=repr(t0_s),
                       DISHBRAIN_DURATION=repr(duration_ms * 1e-3))
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
            fields = [sh._b.value(E, f) for f in _FIELDS]
            hwm = 0.0
            touched_buf = np.zeros((ne, 5), dtype=bool)
            touched_any = False
            nbytes = 8 + 4 * n
            buf = bytearray(nbytes)
            view = memoryview(buf)
            try:
                while True:
                    got = 0
                    while got < nbytes:
                        try:
                            k = fin.readinto(view[got:])
                        except KeyboardInterrupt as exc:   # stop at the next tick, keep state
                            failure.append(exc)
                            continue
                        if not k:
                            break
                        got += k
                    if got < nbytes:
                        break   # the binary finished the run
                    step = struct.unpack_from("<q", buf, 0)[0]
                    self._live_spikes = np.frombuffer(buf, dtype="<i4", offset=8).copy()
                    stop = False
                    reply[:] = np.nan
                    if failure:
                        stop = True
                    elif tick is not None:
                        self._touched = touched_buf
                        if touched_any:
                            touched_buf[:] = False
                        sh._tick_now_ms = float(round(step * self.config.dt_ms / tick_ms)) * tick_ms
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
                    reply[0] = 1.0 if stop else 0.0
                    try:
                        fout.write(reply.tobytes())
                    except BrokenPipeError:
                        break
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            finally:
                fin.close()
                try:
                    fout.close()
                except BrokenPipeError:
                    pass
                self._live_spikes = None
            err = proc.stderr.read().decode(errors="replace")
            if (results / "profiling_info.txt").exists():
                self.last_profile = (results / "profiling_info.txt").read_text()
            _, status, usage = os.wait4(proc.pid, 0)   # with the binary's CPU time and peak
            rc = proc.returncode = os.waitstatus_to_exitcode(status)
            if rc != 0:
                raise RuntimeError(f"standalone culture binary failed (exit {rc}):\n{err[-3000:]}")
            # The final state back into the shadow.
            for obj, var, info in passed:
                data = np.fromfile(results / variables[f"{obj.name}.{var}"]["file"],
                                   dtype=info["dtype"])
                obj.variables[var].get_value()[:] = data
            ts = np.fromfile(results / variables["culture_clock.timestep"]["file"], dtype="<i8")
            sh._net.t_ = float(ts[0]) * self.config.dt_ms * 1e-3
            spikes = empty
            if monitor:
                t = np.fromfile(results / variables["culture_monitor.t"]["file"], dtype="<f8")
                i = np.fromfile(results / variables["culture_monitor.i"]["file"], dtype="<i4")
                spikes = (t * 1e3, i)
                if self._spike_file is not None:
                    rec = np.empty(len(t), dtype=_rt.SPIKE_RECORD_DTYPE)
                    rec["t_ms"], rec["neuron"] = t * 1e3, i
                    with open(self._spike_file, "ab") as f:
                        rec.tofile(f)
        self.last_run_info = {"wall_s": time.perf_counter() - wall0,
                              "cpu_s_python": time.process_time() - cpu0, "ticks": ticks,
                              "cpu_s_binary": usage.ru_utime + usage.ru_stime,
                              # sampled from /proc (ru_maxrss would count the forked Python)
                              "peak_rss_mb_binary": hwm or usage.ru_maxrss / 1024.0,
                              "build_s": _BUILD_TIMES.get(folder.name, 0.0)}
        if failure:
            raise failure[0]
        return spikes if keep else None

    # -- persistence: the runtime culture's format ------------------------------------------
    def save(self, path: str | Path) -> None:
        self._shadow.save(path)

    @classmethod
    def load(cls, path: str | Path, spike_file: str | Path | None = None) -> "StandaloneCulture":
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

if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "build":
        _build(Path(sys.argv[2]))
    else:
        sys.exit("usage: python -m dishbrain.culture_standalone build FOLDER")
