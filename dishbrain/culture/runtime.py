"""`Culture`, the runtime backend: the culture's network simulated by Brian2 in this process.

A culture is run in simulated time with a tick callback (``run``), stimulated through its
electrodes (``stimulate``, ``stop_stimulation``), read through its electrodes
(``electrode_counts``) or, for analysis, neuron by neuron (``record``, a spike file), and saved
and loaded exactly (``save``, ``load``). Its network is built by `dishbrain.culture.model` from
the structure of `dishbrain.culture.structure`; the compiled backend
(`dishbrain.culture.standalone`) has the same API and keeps its state in a `Culture`, so
``check_run_arguments``, ``TickCallback``, ``SPIKE_RECORD_DTYPE`` and the save format here serve
both.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from brian2 import Clock, NetworkOperation, SpikeMonitor, ms, second

from dishbrain.culture.config import CultureConfig
from dishbrain.culture.model import CultureNetwork, model_namespace
from dishbrain.culture.rng import MAX_SEED, STREAM_FIRST_PULSE, hash_uniform_np, stream_key
from dishbrain.culture.structure import CultureStructure, generate_structure
from dishbrain.mea import MEA, MEAConfig

SPIKE_RECORD_DTYPE = np.dtype([("t_ms", "<f8"), ("neuron", "<i4")])
# 2: the recurrent synapses are two objects (culture_synapses_ee, culture_synapses_static);
# version 1 had one (culture_synapses).
SAVE_FORMAT_VERSION = 2

TickCallback = Callable[[float, np.ndarray], "bool | None"]


def check_run_arguments(config: CultureConfig, duration_ms, tick, tick_ms) -> None:
    """The checks of `run` shared by every backend: errors name the argument and the allowed
    values."""
    if not (isinstance(duration_ms, (int, float, np.number)) and math.isfinite(duration_ms)
            and duration_ms >= 0):
        raise ValueError(f"run: duration_ms must be a finite number >= 0, got {duration_ms!r}")
    if tick is not None:
        if not (isinstance(tick_ms, (int, float, np.number)) and tick_ms > 0):
            raise ValueError(f"run: tick_ms must be > 0, got {tick_ms!r}")
        ratio = tick_ms / config.dt_ms
        if abs(ratio - round(ratio)) > 1e-6:
            raise ValueError(f"run: tick_ms must be a multiple of dt_ms={config.dt_ms}, "
                             f"got {tick_ms!r}")


class Culture:
    """A simulated culture of cortical neurons on a virtual MEA.

    Arguments
    ---------
    config: the model's parameters (``CultureConfig``).
    mea: the electrode array (default ``MEA()``: 8 x 8 at 200 um).
    seed: the same seed gives the same culture and the same activity.
    spike_file: if given, every spike is appended to this file as a binary record
        ``SPIKE_RECORD_DTYPE`` = little-endian ``(t_ms: float64, neuron: int32)`` (12 bytes, no
        header, time order), written every ``config.spike_file_chunk_ms`` of simulated time and at
        the end of each ``run``; read it with ``np.fromfile(path, SPIKE_RECORD_DTYPE)``. An
        existing file is truncated.

    Time
    ----
    ``t_ms`` is the simulated time so far. ``run(duration_ms, tick)`` calls ``tick(t_ms, counts)``
    every ``tick_ms`` of simulated time, at ``t_ms`` = each multiple of ``tick_ms`` in
    ``[start, start + duration)``, before that step is simulated; ``counts`` holds the spikes each
    electrode recorded in ``[previous tick, t_ms)`` (the first tick of a run reports what the end
    of the previous run left). Stimulation set in a tick starts at ``t_ms``.

    Stimulation
    -----------
    ``stimulate(electrodes, amplitude_mv, rate_hz, duration_ms)`` pulses the electrodes for
    ``duration_ms`` from now: periodically (first pulse at once) or as a Poisson train. Each pulse
    kicks the membrane of neurons near the electrode by
    ``stim_gain * amplitude_mv * coupling(distance)``; 75 mV fires neurons within ~100 um reliably.
    """

    def __init__(self, config: CultureConfig = CultureConfig(), mea: MEA | None = None,
                 seed: int = 0, spike_file: str | Path | None = None,
                 _structure: CultureStructure | None = None) -> None:
        if not isinstance(config, CultureConfig):
            raise TypeError(f"config must be a CultureConfig, got {type(config).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
                or not 0 <= seed < MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, {MAX_SEED - 1}], got {seed!r}")
        self.config = config
        self.mea = mea if mea is not None else MEA()
        self.seed = int(seed)
        self.n_neurons = config.n_neurons
        st = _structure if _structure is not None else generate_structure(config, self.mea,
                                                                          self.seed)
        self.structure = st
        self.neuron_positions_um = st.positions_um
        self.is_excitatory = st.is_excitatory
        self.cell_type = st.cell_type
        self._record = self.mea.recording_matrix(st.positions_um).tocsr()
        self._stim_coupling = self.mea.stimulation_matrix(st.positions_um)
        self._b = CultureNetwork(config, st, self.mea, self._stim_coupling)
        self._net = self._b.net
        self._ns = model_namespace(config, self.seed)
        self._last_counts = np.zeros(self.n_neurons, dtype=np.int64)
        self._stim_calls = 0
        self._tick_now_ms: float | None = None

        self._spike_file: Path | None = None
        self._stream_mon: SpikeMonitor | None = None
        if spike_file is not None:
            self._open_stream(Path(spike_file), truncate=True)

    # -- time and rates ---------------------------------------------------------------------
    @property
    def _n_spikes(self) -> np.ndarray:
        return self._b.value(self._b.neurons, "n_spikes")

    @property
    def t_ms(self) -> float:
        """Current simulated time (ms); inside a tick, the tick's time."""
        if self._tick_now_ms is not None:
            return self._tick_now_ms
        return self._net_t_s() * 1e3

    def _net_t_s(self) -> float:
        t = self._net.t_
        if not isinstance(t, (int, float, np.number)):   # after Network.stop(): a view
            t = np.asarray(t[:]).ravel()[0]
        return float(t)

    def firing_rate_hz(self) -> float:
        """Mean firing rate per neuron over everything simulated so far."""
        t_s = self._net_t_s()
        if t_s <= 0:
            return 0.0
        return float(self._n_spikes.sum(dtype=np.int64)) / self.n_neurons / t_s

    @property
    def n_electrodes(self) -> int:
        return self.mea.n_electrodes

    # -- stimulation ------------------------------------------------------------------------
    def _electrode_index(self, electrodes: Sequence[int] | None) -> np.ndarray:
        if electrodes is None:
            return np.arange(self.mea.n_electrodes)
        idx = np.asarray(list(electrodes), dtype=np.int64).ravel()
        if idx.size and (idx.min() < 0 or idx.max() >= self.mea.n_electrodes):
            raise ValueError(f"electrode indices must be in [0, {self.mea.n_electrodes - 1}], "
                             f"got {idx.tolist()}")
        return np.unique(idx)

    def stimulate(self, electrodes: Sequence[int], amplitude_mv: float, rate_hz: float,
                  duration_ms: float, random_timing: bool = False) -> None:
        """Pulse ``electrodes`` from now for ``duration_ms``, replacing their ongoing stimulation.

        Periodic pulses at ``rate_hz`` start at once; with ``random_timing`` the pulse times form a
        Poisson process of that rate (first pulse after an exponential wait). Takes effect at once,
        also from inside a tick callback.
        """
        idx = self._electrode_index(electrodes)
        for name, value, lo, hi in (("amplitude_mv", amplitude_mv, 0.0, 1000.0),
                                    ("rate_hz", rate_hz, 1e-3, 1.0 / (self.config.dt_ms * 1e-3)),
                                    ("duration_ms", duration_ms, 0.0, 1e9)):
            if not (isinstance(value, (int, float, np.number)) and math.isfinite(value)
                    and lo <= value <= hi):
                raise ValueError(f"stimulate: {name} must be in [{lo}, {hi}], got {value!r}")
        if idx.size == 0:
            return
        E = self._b.electrodes
        now = self.t_ms * 1e-3
        self._b.value(E, "amplitude")[idx] = amplitude_mv * 1e-3
        self._b.value(E, "rate")[idx] = rate_hz
        self._b.value(E, "t_end")[idx] = now + duration_ms * 1e-3
        self._b.value(E, "random_timing")[idx] = 1.0 if random_timing else 0.0
        if random_timing:
            u = hash_uniform_np(stream_key(self.seed, STREAM_FIRST_PULSE), idx,
                                self._stim_calls)
            first = now - np.log(u) / rate_hz
        else:
            first = np.full(idx.size, now)
        self._b.value(E, "next_pulse")[idx] = first
        self._stim_calls += 1

    def stop_stimulation(self, electrodes: Sequence[int] | None = None) -> None:
        """End the stimulation on ``electrodes`` (all if None) now."""
        idx = self._electrode_index(electrodes)
        self._b.value(self._b.electrodes, "t_end")[idx] = self.t_ms * 1e-3

    # -- running ----------------------------------------------------------------------------
    def electrode_counts(self) -> np.ndarray:
        """Spikes recorded per electrode since the last call (or tick); int64 (n_electrodes,)."""
        now = self._n_spikes.astype(np.int64)
        delta = now - self._last_counts
        self._last_counts = now
        return self._record @ delta

    def run(self, duration_ms: float, tick: TickCallback | None = None, tick_ms: float = 10.0,
            progress: bool = False) -> None:
        """Simulate ``duration_ms`` in one Brian2 run, calling ``tick`` every ``tick_ms``.

        ``tick(t_ms, counts)`` gets the simulated time and the int64 spike counts per electrode
        since the previous tick; returning False stops the run at that time.
        """
        check_run_arguments(self.config, duration_ms, tick, tick_ms)
        if duration_ms == 0:
            return
        extra = []
        if tick is not None:
            tick_clock = Clock(tick_ms * ms, name="culture_tick_clock")
            step = tick_clock.variables["timestep"]
            net = self._net

            def _tick() -> None:
                # From the integer step, so tick times are exact multiples of tick_ms.
                self._tick_now_ms = float(step.get_value()[0]) * tick_ms
                try:
                    if tick(self._tick_now_ms, self.electrode_counts()) is False:
                        net.stop()
                finally:
                    self._tick_now_ms = None

            extra.append(NetworkOperation(_tick, clock=tick_clock, when="start",
                                          name="culture_tick"))
        if self._stream_mon is not None:
            extra.append(NetworkOperation(self._flush_stream,
                                          dt=self.config.spike_file_chunk_ms * ms, when="end",
                                          name="culture_stream_flush"))
        report, bar = None, None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=round(duration_ms), unit="ms", desc="culture")

            def report(elapsed, complete, start, duration):
                bar.n = round(float(complete) * duration_ms)
                bar.refresh()
        self._net.add(*extra)
        try:
            self._net.run(duration_ms * ms, namespace=self._ns, report=report,
                          report_period=1 * second)
        finally:
            self._net.remove(*extra)
            self._tick_now_ms = None
            if self._stream_mon is not None:
                self._flush_stream()
            if bar is not None:
                bar.n = bar.total
                bar.close()

    def record(self, duration_ms: float, progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Run ``duration_ms`` and return (spike times in ms, neuron indices); for analysis only.

        The spike monitor exists only during this call.
        """
        mon = SpikeMonitor(self._b.neurons, name="culture_recorder")
        self._net.add(mon)
        try:
            self.run(duration_ms, progress=progress)
            t = np.asarray(mon.variables["t"].get_value(), dtype=np.float64) * 1e3
            i = np.asarray(mon.variables["i"].get_value(), dtype=np.int32)
        finally:
            self._net.remove(mon)
        return t.copy(), i.copy()

    # -- spike streaming --------------------------------------------------------------------
    def _open_stream(self, path: Path, truncate: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if truncate or not path.exists():
            path.write_bytes(b"")
        self._spike_file = path
        self._stream_mon = SpikeMonitor(self._b.neurons, name="culture_stream")
        self._net.add(self._stream_mon)

    def _flush_stream(self) -> None:
        mon = self._stream_mon
        n = int(np.asarray(mon.variables["N"].get_value()).reshape(-1)[0])
        if n == 0:
            return
        rec = np.empty(n, dtype=SPIKE_RECORD_DTYPE)
        rec["t_ms"] = mon.variables["t"].get_value()[:n] * 1e3
        rec["neuron"] = mon.variables["i"].get_value()[:n]
        with open(self._spike_file, "ab") as f:
            rec.tofile(f)
        mon.variables["N"].set_value(0)
        mon.resize(0)

    # -- persistence ------------------------------------------------------------------------
    def _stateful_objects(self) -> dict:
        """Every Brian2 object with state (groups, synapses, their pathways with the queues)."""
        from brian2.core.network import _get_all_objects
        return {obj.name: obj for obj in _get_all_objects(self._net.objects)
                if hasattr(obj, "_full_state") and not isinstance(obj, SpikeMonitor)}

    def save(self, path: str | Path) -> None:
        """Write the full state (npz, no pickle): config, seed, MEA, structure and dynamics.

        Loading continues the simulation bit-identically (random numbers are a function of seed
        and time; spikes in flight are saved with the synaptic queues).
        """
        arrays: dict[str, np.ndarray] = {}
        meta = {
            "format_version": SAVE_FORMAT_VERSION,
            "config": self.config.to_dict(),
            "mea_config": dataclasses.asdict(self.mea.config),
            "seed": self.seed,
            "t_s": self._net_t_s(),
            "stim_calls": self._stim_calls,
            "spike_file": str(self._spike_file) if self._spike_file else None,
        }
        for key in ("positions_um", "is_excitatory", "cell_type", "a", "b", "c_mv", "d_mv",
                    "pre", "post", "weight", "delay_ms", "v0_mv"):
            arrays[f"structure::{key}"] = getattr(self.structure, key)
        arrays["last_counts"] = self._last_counts
        for oname, obj in self._stateful_objects().items():
            state = obj._full_state()
            queue = state.pop("_spikequeue", None)
            for var, (values, size) in state.items():
                arrays[f"state::{oname}::{var}"] = np.asarray(values)
                arrays[f"size::{oname}::{var}"] = np.asarray(size)
            if queue is not None:
                offset, rows = queue
                arrays[f"queue::{oname}::offset"] = np.asarray(offset)
                arrays[f"queue::{oname}::lengths"] = np.array([len(r) for r in rows], np.int64)
                arrays[f"queue::{oname}::data"] = (np.concatenate([np.asarray(r, np.int32)
                                                                   for r in rows])
                                                   if rows else np.empty(0, np.int32))
        arrays["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
        try:  # written aside, then renamed: a kill mid-save leaves the old file or none
            with open(partial, "wb") as f:
                np.savez(f, **arrays)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path, spike_file: str | Path | None = None) -> Culture:
        """Rebuild a culture saved with ``save``; it continues exactly where it stopped.

        ``spike_file``: where to stream spikes from now on (appended to, not truncated).
        """
        meta, data = read_saved_culture(path)
        version = meta.get("format_version")
        if version != SAVE_FORMAT_VERSION:
            hint = (" (saved by an older dishbrain, before the synapses were split into E->E "
                    "and static objects; rerun to make a new one)" if version == 1 else "")
            raise ValueError(f"{path}: unsupported culture file version {version!r}, this "
                             f"dishbrain reads version {SAVE_FORMAT_VERSION}{hint}")
        try:
            return cls._from_saved(meta, data, spike_file)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise ValueError(f"{path}: damaged saved culture ({_one_line(exc)})") from None

    @classmethod
    def _from_saved(cls, meta: dict, data: dict, spike_file) -> Culture:
        config = CultureConfig.from_dict(meta["config"])
        mea = MEA(MEAConfig(**meta["mea_config"]))
        st = CultureStructure(**{k.split("::", 1)[1]: v for k, v in data.items()
                                 if k.startswith("structure::")})
        culture = cls(config, mea, seed=meta["seed"], _structure=st)
        for oname, obj in culture._stateful_objects().items():
            state = {}
            prefix = f"state::{oname}::"
            for k, v in data.items():
                if k.startswith(prefix):
                    var = k[len(prefix):]
                    state[var] = (v, int(data[f"size::{oname}::{var}"]))
            if f"queue::{oname}::offset" in data:
                lengths = data[f"queue::{oname}::lengths"]
                flat = data[f"queue::{oname}::data"]
                bounds = np.concatenate([[0], np.cumsum(lengths)])
                rows = [flat[bounds[r]:bounds[r + 1]].tolist() for r in range(len(lengths))]
                state["_spikequeue"] = (int(data[f"queue::{oname}::offset"]), rows)
            obj._restore_from_full_state(state)
        culture._net.t_ = meta["t_s"]
        culture._last_counts = data["last_counts"].astype(np.int64)
        culture._stim_calls = int(meta["stim_calls"])
        if spike_file is not None:
            culture._open_stream(Path(spike_file), truncate=False)
        return culture

    def __repr__(self) -> str:
        return (f"Culture(n_neurons={self.n_neurons}, seed={self.seed}, t_ms={self.t_ms:.1f}, "
                f"mea={self.mea!r})")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"[:200]


def read_saved_culture(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The ``meta_json`` record and the arrays of a file written by ``Culture.save``.

    Anything else (a folder, a truncated or bit-flipped file, another program's .npz, random
    bytes) is a ValueError naming the file and what is wrong. Pickles are never loaded.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a saved culture (.npz)")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the saved culture ({exc.strerror})") from None
    if magic != b"PK\x03\x04":
        raise ValueError(f"{path}: not a saved culture (an .npz zip archive written by "
                         "--save-state); its first bytes are not a zip archive's")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path}: damaged saved culture ({_one_line(exc)})") from None
    if "meta_json" not in data:
        raise ValueError(f"{path}: an .npz but not a saved culture (no meta_json record)")
    try:
        meta = json.loads(bytes(data["meta_json"]).decode())
    except (UnicodeDecodeError, ValueError):
        meta = None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: damaged saved culture (its meta_json record is not a JSON "
                         "object)")
    return meta, data
