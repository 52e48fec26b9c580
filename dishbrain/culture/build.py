"""The compile caches: Brian2's Cython cache (runtime backend), the C++ builds (compiled backend).

- Runtime backend (`dishbrain.culture.runtime`): Brian2 compiles each code object with Cython on
  first use and caches it per environment. ``warm_cache`` runs every code path of the model once
  (with a message, ~30-60 s the first time); ``ensure_compiled`` does so once per version of the
  model's sources, remembered by a marker file in Brian2's cache.
- Compiled backend (`dishbrain.culture.standalone`): ``standalone_available`` says whether it can
  be built here; ``ensure_build`` returns the folder of the compiled project for a (config, MEA,
  tick_ms, monitor), building it if needed in ``cache_root()`` (``DISHBRAIN_STANDALONE_CACHE`` or
  ``~/.cache/dishbrain/standalone``), under a file lock so that parallel sessions build it once,
  and pruning the least recently used builds beyond ``MAX_BUILDS``. The build itself runs in a
  helper process (``python -m dishbrain.culture.build FOLDER``, `build_project`), so Brian2's
  process-global device never leaves this process's runtime mode: it builds the culture's network
  (`dishbrain.culture.model`) for seed 0 with Brian2's cpp_standalone device, adds the lock-step
  link (`dishbrain.culture.link`) and compiles. The seed, the wiring and every state variable are
  not part of the build: they are handed to the binary at launch, so every culture of a
  configuration shares one build.

A build or marker is keyed by the sources it is generated from (``CYTHON_SOURCES``,
``STANDALONE_SOURCES``), Brian2's version and, for C++ (-march=native), the CPU model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from filelock import FileLock

from dishbrain.culture.config import CultureConfig
from dishbrain.mea import MEA, MEAConfig

# The modules of this package each compiled artefact is generated from (a change to any of them
# recompiles): the Cython cache from the model and the code paths `warm_cache` runs; the C++ build
# from the model, the structure of seed 0 it checks its wiring files against, and the link.
CYTHON_SOURCES = ("config", "rng", "model", "runtime", "build")
STANDALONE_SOURCES = ("config", "rng", "structure", "model", "link", "queue", "decay", "build")


def _sources_digest(modules: tuple[str, ...]) -> str:
    here = Path(__file__).resolve().parent
    sources = b"".join((here / f"{name}.py").read_bytes() for name in modules)
    return hashlib.sha1(sources).hexdigest()


# ---------------------------------------------------------------------------------------------
# Brian2's Cython cache (runtime backend)
# ---------------------------------------------------------------------------------------------

def warm_cache(verbose: bool = True) -> float:
    """Compile every code path of the model into Brian2's Cython cache; returns seconds taken.

    The first culture in a fresh environment spends ~30-60 s compiling (later processes reuse
    the cache and start in well under a second). Call this at install time or before a session,
    so that the wait comes with a message instead of silently in front of a user.
    """
    from dishbrain.culture.runtime import Culture

    t0 = time.perf_counter()
    if verbose:
        print("dishbrain: compiling the culture model (first time only, up to a minute)...",
              flush=True)
    culture = Culture(CultureConfig(n_neurons=100, homeostasis_interval_ms=1.0), seed=0)
    culture.stimulate([0], 75.0, 1000.0, 1.0, random_timing=True)
    culture.run(2.0, tick=lambda t, n: None, tick_ms=1.0)
    culture.record(1.0)
    with tempfile.TemporaryDirectory() as tmp:
        culture = Culture(CultureConfig(n_neurons=100, stdp_enabled=False,
                                        homeostasis_enabled=False, spike_file_chunk_ms=1.0),
                          seed=0, spike_file=Path(tmp) / "spikes.bin")
        culture.run(2.0)
    seconds = time.perf_counter() - t0
    if verbose:
        print(f"dishbrain: culture model ready ({seconds:.1f} s)", flush=True)
    return seconds


def _compiled_marker() -> Path | None:
    """A file in Brian2's Cython cache that says this version of the model was compiled there."""
    from dishbrain.culture.model import _codegen_target

    if _codegen_target() != "cython":
        return None
    import brian2
    from brian2.codegen.runtime.cython_rt.extension_manager import get_cython_cache_dir

    digest = hashlib.sha1(_sources_digest(CYTHON_SOURCES).encode()
                          + brian2.__version__.encode()).hexdigest()
    return Path(get_cython_cache_dir()) / f"dishbrain-model-{digest[:16]}.ok"


def ensure_compiled(verbose: bool = True) -> None:
    """Compile the model once per environment (`warm_cache`), with a message; then a no-op.

    Called before a culture is built by the CLI and the experiment runner (before its workers
    start, so that parallel sessions do not all compile the same code at once).
    """
    marker = _compiled_marker()
    if marker is None or marker.exists():
        return
    warm_cache(verbose=verbose)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# The compiled backend: availability and the build cache
# ---------------------------------------------------------------------------------------------

BUILD_VERSION = 3


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


def wiring_values(structure, idx: np.ndarray) -> dict[str, np.ndarray]:
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
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "dishbrain" / "standalone"


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
        "mea_config": json.loads(json.dumps(dataclasses.asdict(mea.config))),
        "tick_ms": float(tick_ms),
        "monitor": bool(monitor),
        # Per-code-object timings in results/profiling_info.txt (diagnostics only).
        "profile": os.environ.get("DISHBRAIN_STANDALONE_PROFILE", "") == "1",
        "brian2": brian2.__version__,
        # -march=native: a binary is only valid on the CPU model it was built on.
        "machine": _machine_id(),
        # The model and the build code (link sources, compiler flags).
        "source": _sources_digest(STANDALONE_SOURCES),
    }


def _spec_key(spec: dict) -> str:
    return hashlib.sha1(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


_BUILD_TIMES: dict[str, float] = {}


def build_seconds(folder: Path) -> float:
    """Seconds this process spent building ``folder`` (0.0 if it found the build cached)."""
    return _BUILD_TIMES.get(folder.name, 0.0)


def ensure_build(config: CultureConfig, mea: MEA, tick_ms: float = 10.0, monitor: bool = False,
                 verbose: bool = True) -> Path:
    """The folder of the compiled project for this configuration (built now if not cached)."""
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
    with FileLock(root / f"{key}.lock"):
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
        out = subprocess.run([sys.executable, "-m", "dishbrain.culture.build", str(tmp)],
                             capture_output=True, text=True,
                             cwd=str(Path(__file__).resolve().parents[2]))
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


# ---------------------------------------------------------------------------------------------
# Generating and compiling the C++ project (in the helper process)
# ---------------------------------------------------------------------------------------------

# Brian2's Network::run reads the process's CPU clock after every time step (std::clock, a
# system call: ~6 % of the binary's perf samples at 1,000 neurons) only to report the run's
# duration at its end; with no report function it is read once, after the loop. (End to end,
# 5 interleaved pairs of `culture_speed.py --one 1000` could not tell the two apart: CPU 0.90
# vs 0.93 s, medians, on a loaded machine.)
_STEP_CLOCK = ("\n        current = std::clock();\n"
               "        elapsed_realtime = (double)(current - start)/(1 * CLOCKS_PER_SEC);\n")


def _patch_run_loop(project: Path) -> None:
    path = project / "network.cpp"
    text = path.read_text()
    loop_end = "    Network::_globally_running = false;\n"
    if text.count(_STEP_CLOCK) != 1 or text.count(loop_end) != 1:
        return   # another Brian2 version's loop: left as it is (slower, not wrong)
    after_loop = "".join(f"    {line.strip()}\n" for line in _STEP_CLOCK.strip().splitlines())
    text = text.replace(_STEP_CLOCK, "\n").replace(loop_end, after_loop + loop_end)
    path.write_text(text)


def build_project(folder: Path) -> None:
    """In a helper process: generate and compile the project described by folder/spec.json."""
    spec = json.loads((folder / "spec.json").read_text())
    import scipy.sparse as sp
    from brian2 import Clock, Function, Hz, device, ms, prefs, second, set_device, volt

    from dishbrain.culture.link import APPLY_CODE, EXCHANGE_CODE, LINK_HEADER, LINK_SOURCE
    from dishbrain.culture.model import CultureNetwork, model_namespace
    from dishbrain.culture.structure import generate_structure

    config = CultureConfig.from_dict(spec["config"])
    mea = MEA(MEAConfig(**spec["mea_config"]))
    n, ne = config.n_neurons, mea.n_electrodes
    project = folder / "project"
    set_device("cpp_standalone", build_on_run=False, directory=str(project))
    prefs.devices.cpp_standalone.extra_make_args_unix = ["-j2"]
    prefs.codegen.cpp.extra_compile_args_gcc = (list(prefs.codegen.cpp.extra_compile_args_gcc)
                                                + _vectorise_args())
    (folder / "link").mkdir()
    (folder / "link" / "dishbrain_link.h").write_text(LINK_HEADER)
    src = folder / "link" / "dishbrain_link.cpp"
    src.write_text(f"#define DS_N {n}\n#define DS_NE {ne}\n" + LINK_SOURCE)
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

    st = generate_structure(config, mea, 0)
    rows = np.repeat(np.arange(ne, dtype=np.int32), n)
    cols = np.tile(np.arange(n, dtype=np.int32), ne)
    full = sp.coo_matrix((np.full(ne * n, 0.5), (rows, cols)), shape=(ne, n))
    b = CultureNetwork(config, st, mea, full)
    tick_clock = Clock(spec["tick_ms"] * ms, name="culture_tick_clock")
    b.neurons.run_regularly(EXCHANGE_CODE, clock=tick_clock, when="start", order=-2,
                            name="culture_exchange")
    b.electrodes.run_regularly(APPLY_CODE, clock=tick_clock, when="start", order=-1,
                               name="culture_apply")
    if spec["monitor"]:
        from brian2 import SpikeMonitor
        mon = SpikeMonitor(b.neurons, name="culture_monitor")
        b.net.add(mon)
    ns = model_namespace(config, 0)
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
    end = text.index(";", m.end()) + 1
    text = (text[:m.start()]
            + "culture_network.t = atof(getenv(\"DISHBRAIN_T0\"));\n\t\t"
            + "culture_network.run(atof(getenv(\"DISHBRAIN_DURATION\")),"
            + text[m.end():end]
            # the spike counters at the last counts Python took (dishbrain.culture.link)
            + "\n\t\tds_finish();"
            + text[end:])
    main.write_text("void ds_finish();\n" + text)
    _patch_run_loop(project)
    # Brian2's spike queue replaced by one that delivers the same events without a push per
    # synapse (dishbrain.culture.queue; bit-identical).
    from dishbrain.culture.queue import patch_project
    patch_project(project)
    # The synaptic pathways' decay factors from a table on the time grid (dishbrain.culture.decay).
    from dishbrain.culture.decay import patch_decays
    n_decays = patch_decays(project, config.dt_ms / 1000.0)
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
        for key, values in wiring_values(st, idx).items():
            fname = files[key]
            arr = device.static_arrays.get(fname)
            if arr is None or not np.array_equal(arr, values):
                raise RuntimeError(f"cannot identify the static array {fname} of {S.name}")
            info[key] = [fname, np.dtype(arr.dtype).str]
        synapses[S.name] = info
    manifest = {"n_neurons": n, "n_electrodes": ne, "synapses": synapses,
                "variables": variables, "tick_ms": spec["tick_ms"],
                "monitor": spec["monitor"], "dt_ms": config.dt_ms, "decays_tabled": n_decays}
    (folder / "manifest.json").write_text(json.dumps(manifest))


if __name__ == "__main__":
    if len(sys.argv) == 2:
        build_project(Path(sys.argv[1]))
    else:
        sys.exit("usage: python -m dishbrain.culture.build FOLDER")
