"""The cl-sdk data source backed by a culture: `CultureSourceConfig`, `CultureDataSource` and
the factory `culture_source` (the package notes, ``dishbrain/cl/__init__.py``, say how channels,
time, stimulation and frames map)."""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from cl.sim import (
    DataSourceBatch,
    DataSourceSpike,
    DataSourceStim,
    SimulatorDataSource,
    SimulatorDataSourceMetadata,
)

from envs.config import Config, check_choice, check_int, check_number

_log = logging.getLogger("dishbrain.cl")

CHANNEL_COUNT = 64
FRAMES_PER_SECOND = 25_000
FRAMES_PER_MS = FRAMES_PER_SECOND // 1000
UV_PER_SAMPLE_UNIT = 0.195          # cl-sdk's default scaling of int16 samples
#: CL1's grounded corners and its reference channel (cl-sdk's RandomDataSource records no
#: spikes there; the SDK refuses stimulation on the corners).
CL1_GROUNDED_CHANNELS = (0, 7, 56, 63)
CL1_REFERENCE_CHANNEL = 4
CL1_SILENT_CHANNELS = (0, 4, 7, 56, 63)
FRAME_MODES = ("synthetic", "zeros")
BACKENDS = ("auto", "standalone", "runtime")
MAX_AMPLITUDE_MV = 1000.0           # Culture.stimulate's bound
SEED_MAX = 2**27 - 1                # dishbrain.culture.rng.MAX_SEED - 1
#: cl-sdk's spike snippet: 25 samples before the spike's frame, 49 after (75 in all).
SPIKE_SAMPLES_BEFORE, SPIKE_SAMPLES_TOTAL = 25, 75
_NOISE_BANK_FRAMES = 2**15
_RUN_FOREVER_MS = 1e9               # one Brian2 run for the whole session (~11.6 days)
_READ_TIMEOUT_S = 120.0
_OPEN_WAIT_S = 6.0                  # of the SDK's 15 s for the producer to start


@dataclass(frozen=True)
class CultureSourceConfig(Config):
    """The data source's settings (module notes), validated on construction."""

    seed: int | None = None
    n_neurons: int | None = None
    culture: dict = field(default_factory=dict)
    mea: dict = field(default_factory=dict)
    state: str | None = None
    save_state: str | None = None
    backend: str | None = None
    tick_ms: float | None = None
    mv_per_ua: float = 50.0
    reference_phase_us: float = 200.0
    frames: str = "synthetic"
    noise_rms_uv: float = 3.0
    spike_amplitude_uv: float = 60.0
    silent_channels: tuple = CL1_SILENT_CHANNELS
    channel_count: int = CHANNEL_COUNT

    def __post_init__(self) -> None:
        name = type(self).__name__
        if self.seed is not None:
            check_int(self, "seed", self.seed, 0, SEED_MAX)
        if self.n_neurons is not None:
            check_int(self, "n_neurons", self.n_neurons, 10, 1_000_000)
        for fname in ("culture", "mea"):
            if not isinstance(getattr(self, fname), dict):
                raise ValueError(f"{name}.{fname} must be a dict of fields, "
                                 f"got {getattr(self, fname)!r}")
        for fname in ("state", "save_state"):
            if getattr(self, fname) is not None and not isinstance(getattr(self, fname), str):
                raise ValueError(f"{name}.{fname} must be a file path or null, "
                                 f"got {getattr(self, fname)!r}")
        if self.state is not None:
            if not Path(self.state).is_file():
                raise ValueError(f"{name}.state must be a saved culture (.npz), "
                                 f"no file at {self.state!r}")
            given = [f for f in ("seed", "n_neurons") if getattr(self, f) is not None]
            given += [f for f in ("culture", "mea") if getattr(self, f)]
            if given:
                raise ValueError(f"{name}.state: a saved culture keeps its own seed, size and "
                                 f"config; drop {given} or drop state")
        if self.backend is not None:
            check_choice(self, "backend", self.backend, BACKENDS)
        if self.tick_ms is not None:
            check_number(self, "tick_ms", self.tick_ms, 0.01, 10.0)
        check_number(self, "mv_per_ua", self.mv_per_ua, 0.0, 1e4, lo_open=True)
        check_number(self, "reference_phase_us", self.reference_phase_us, 1.0, 1e5)
        check_choice(self, "frames", self.frames, FRAME_MODES)
        check_number(self, "noise_rms_uv", self.noise_rms_uv, 0.0, 1000.0)
        check_number(self, "spike_amplitude_uv", self.spike_amplitude_uv, 0.0, 5000.0)
        if self.channel_count != CHANNEL_COUNT or isinstance(self.channel_count, bool):
            raise ValueError(f"{name}.channel_count must be {CHANNEL_COUNT} (CL1's and our "
                             f"8 x 8 MEA), got {self.channel_count!r}")
        silent = self.silent_channels
        if isinstance(silent, list):
            silent = tuple(silent)
            object.__setattr__(self, "silent_channels", silent)
        if not (isinstance(silent, tuple)
                and all(isinstance(c, int) and not isinstance(c, bool) for c in silent)):
            raise ValueError(f"{name}.silent_channels must be a list of channel numbers, "
                             f"got {silent!r}")
        bad = [c for c in silent if not 0 <= c < CHANNEL_COUNT]
        if bad:
            raise ValueError(f"{name}.silent_channels must be channels in [0, "
                             f"{CHANNEL_COUNT - 1}], got {bad}")
        # The nested configs, checked now (their own messages name the field).
        culture_config, mea_config = self.culture_and_mea_configs()
        if mea_config is not None and mea_config.rows * mea_config.cols != CHANNEL_COUNT:
            raise ValueError(f"{name}.mea must keep {CHANNEL_COUNT} electrodes (8 x 8, one per "
                             f"CL1 channel), got {mea_config.rows} x {mea_config.cols} = "
                             f"{mea_config.rows * mea_config.cols}")
        if self.tick_ms is not None and culture_config is not None:
            ratio = self.tick_ms / culture_config.dt_ms
            if abs(ratio - round(ratio)) > 1e-6:
                raise ValueError(f"{name}.tick_ms must be a multiple of the culture's dt_ms="
                                 f"{culture_config.dt_ms}, got {self.tick_ms!r}")

    def culture_and_mea_configs(self):
        """(CultureConfig, MEAConfig or None); (None, None) for a saved culture."""
        if self.state is not None:
            return None, None
        from dishbrain.culture import CultureConfig
        from dishbrain.mea import MEAConfig

        values = dict(self.culture)
        if self.n_neurons is not None:
            if values.get("n_neurons", self.n_neurons) != self.n_neurons:
                raise ValueError(f"{type(self).__name__}.n_neurons={self.n_neurons} differs from "
                                 f"culture.n_neurons={values['n_neurons']}")
            values["n_neurons"] = self.n_neurons
        culture_config = CultureConfig.from_dict(values)
        mea_config = MEAConfig.from_dict(dict(self.mea)) if self.mea else None
        return culture_config, mea_config

    @classmethod
    def from_kwargs(cls, values: dict[str, Any]) -> CultureSourceConfig:
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown dishbrain.cl:culture_source config field(s) {unknown}; "
                             f"allowed: {known}")
        return cls(**values)


def pulse_amplitude_mv(phase_durations_us: Sequence[float], phase_currents_ua: Sequence[float],
                       mv_per_ua: float = 50.0, reference_phase_us: float = 200.0) -> float:
    """The culture's mV-equivalent amplitude of one current pulse (module notes): mv_per_ua
    times the charge of its strongest phase (uA * us) over reference_phase_us."""
    charge = max((abs(float(i)) * float(d) for d, i in zip(phase_durations_us, phase_currents_ua)),
                 default=0.0)
    return mv_per_ua * charge / reference_phase_us


def spike_waveform_uv(amplitude_uv: float) -> np.ndarray:
    """cl-sdk's 75-sample spike snippet (uV, float32): a trough of -amplitude_uv at sample 25
    (the spike's frame; ~0.1 ms wide) and a positive after-wave of 0.3 x amplitude ~0.4 ms
    later, the usual shape of an extracellular somatic spike."""
    t_ms = (np.arange(SPIKE_SAMPLES_TOTAL) - SPIKE_SAMPLES_BEFORE) / FRAMES_PER_MS
    w = (-np.exp(-0.5 * (t_ms / 0.1) ** 2)
         + 0.3 * np.exp(-0.5 * ((t_ms - 0.4) / 0.25) ** 2))
    return (amplitude_uv * w).astype(np.float32)


class _LockStep:
    """The culture's one long run in a thread, advanced tick by tick as the reads require.

    The run's tick callback blocks until the reader allows the next tick; so the culture is
    always exactly at the first tick not yet read, and stims (delivered by the SDK before the
    read of their frames) are applied at their tick. The thread also builds the culture
    (``build()``), so that the SDK's producer can report ready before that is done.
    """

    def __init__(self, build, tick_ms: float, dt_ms: float, silent: Sequence[int]):
        self.build = build
        self.culture = None
        self.tick_ms = float(tick_ms)
        self.frames_per_tick = Fraction(tick_ms).limit_denominator(10_000) * FRAMES_PER_MS
        self.dt_ms = float(dt_ms)
        self.cond = threading.Condition()
        self.allowed = 0        # the callback of tick j returns once allowed > j
        self.done = 0           # ticks simulated
        self.stopping = False
        self.finished = False
        self.error: BaseException | None = None
        self.spikes: deque = deque()        # (frame, channels, counts), in frame order
        self.pending: list = []             # (tick, channel, amplitude_mv), unsorted
        self.mask = np.ones(CHANNEL_COUNT, dtype=bool)
        self.mask[list(silent)] = False
        self.late_stims = 0
        self.started = False
        self._j = 0             # the culture thread's tick counter
        self.thread = threading.Thread(target=self._main, name="dishbrain-culture", daemon=True)

    # -- frame <-> tick ---------------------------------------------------------------------
    def frame_of_tick(self, j: int) -> int:
        return int(j * self.frames_per_tick)            # floor (non-negative)

    def tick_of_frame(self, frame: int) -> int:
        return int(Fraction(frame) / self.frames_per_tick)

    def ticks_for(self, to_frame: int) -> int:
        """The ticks whose spikes lie before to_frame: the ceiling of to_frame / frames_per_tick."""
        return -int(Fraction(-to_frame) // self.frames_per_tick)

    # -- the culture's thread ---------------------------------------------------------------
    def _main(self) -> None:
        try:
            _import_brian2_off_the_main_thread()
            self.culture = self.build()
            self.culture.stop_stimulation()
            self.culture.run(_RUN_FOREVER_MS, tick=self._tick, tick_ms=self.tick_ms)
        except BaseException as exc:  # noqa: BLE001  (handed to the reader)
            with self.cond:
                self.error = exc
        finally:
            with self.cond:
                self.finished = True
                self.cond.notify_all()

    def _tick(self, t_ms: float, counts: np.ndarray) -> bool:
        cond = self.cond
        j = self._j
        with cond:
            if j > 0:  # counts of tick j - 1 (tick 0 reports what the last run left: dropped)
                c = np.where(self.mask, np.asarray(counts), 0)
                nz = np.flatnonzero(c)
                if nz.size:
                    self.spikes.append((self.frame_of_tick(j - 1), nz, c[nz]))
            self.done = j
            if not self.started or j >= self.allowed:
                # Wake the reader only when it has what it waits for (the run is up, or the
                # ticks it asked for are done): a wake-up per tick would cost a thread switch.
                self.started = True
                cond.notify_all()
            while self.allowed <= j and not self.stopping:
                cond.wait()
            if self.stopping:
                return False
            due = [p for p in self.pending if p[0] <= j]
            if due:
                self.pending = [p for p in self.pending if p[0] > j]
        self._j = j + 1
        if due:
            self._apply(due, j)
        return True

    def _apply(self, due: list, j: int) -> None:
        per_channel: dict[int, float] = {}
        for tick, channel, amplitude in due:
            if tick < j:
                self.late_stims += 1
            per_channel[channel] = per_channel.get(channel, 0.0) + amplitude
        by_amplitude: dict[float, list[int]] = {}
        for channel, amplitude in per_channel.items():
            if amplitude > MAX_AMPLITUDE_MV:
                _log.warning("dishbrain.cl: pulse of %.0f mV-equivalent clipped to %.0f mV",
                             amplitude, MAX_AMPLITUDE_MV)
                amplitude = MAX_AMPLITUDE_MV
            if amplitude > 0:
                by_amplitude.setdefault(amplitude, []).append(channel)
        # One pulse: a train of the highest rate that lasts one dt step.
        rate_hz = 1000.0 / self.dt_ms
        for amplitude, channels in by_amplitude.items():
            self.culture.stimulate(channels, amplitude, rate_hz, self.dt_ms)

    # -- the reader's side (the SDK's producer thread) ----------------------------------------
    def start(self, wait_s: float) -> None:
        """Start the thread; wait up to wait_s for the run to be up (blocked in its first tick)."""
        self.thread.start()
        with self.cond:
            self.cond.wait_for(lambda: self.started or self.finished, timeout=wait_s)
            if self.finished:
                self._raise_if_failed()

    def _raise_if_failed(self) -> None:
        if self.error is not None:
            raise RuntimeError(f"dishbrain.cl: the culture failed: {self.error!r}") from self.error
        if self.finished:
            raise RuntimeError("dishbrain.cl: the culture's run ended")

    def add_stims(self, stims: list) -> None:
        with self.cond:
            self.pending.extend(stims)

    def advance(self, to_frame: int) -> list:
        """Simulate up to the ticks whose spikes lie before to_frame; the spikes before it."""
        need = self.ticks_for(to_frame)
        with self.cond:
            if need > self.done:
                self.allowed = need
                self.cond.notify_all()
                ok = self.cond.wait_for(lambda: self.done >= need or self.finished,
                                        timeout=_READ_TIMEOUT_S)
                if not ok and not self.started:
                    raise TimeoutError(f"dishbrain.cl: the culture was not built within "
                                       f"{_READ_TIMEOUT_S} s")
                if not ok:
                    raise TimeoutError(f"dishbrain.cl: the culture did not reach frame "
                                       f"{to_frame} within {_READ_TIMEOUT_S} s")
            self._raise_if_failed()
            out = []
            while self.spikes and self.spikes[0][0] < to_frame:
                out.append(self.spikes.popleft())
        return out

    def stop(self) -> None:
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        self.thread.join(timeout=60.0)


class CultureDataSource(SimulatorDataSource):
    """A cl-sdk pull source backed by a simulated culture (module notes)."""

    def __init__(self, config: CultureSourceConfig):
        self.config = config
        self._metadata = SimulatorDataSourceMetadata(
            channel_count=CHANNEL_COUNT, frames_per_second=FRAMES_PER_SECOND,
            uV_per_sample_unit=UV_PER_SAMPLE_UNIT, start_timestamp=0, duration_frames=None,
            seekable=False, realtime_only=False, supports_accelerated=True)
        self._backend = _resolve_backend(config.backend)
        self._lock: _LockStep | None = None
        self._next_frame = 0
        self._carry = np.zeros((SPIKE_SAMPLES_TOTAL, CHANNEL_COUNT), dtype=np.float32)
        self._waveform = spike_waveform_uv(config.spike_amplitude_uv)
        self._waveform_units = self._waveform / UV_PER_SAMPLE_UNIT
        self._noise: np.ndarray | None = None
        self._silent = np.zeros(CHANNEL_COUNT, dtype=bool)
        self._silent[list(config.silent_channels)] = True
        self.stats = {"stims": 0, "late_stims": 0, "spikes": 0}

    @property
    def metadata(self) -> SimulatorDataSourceMetadata:
        return self._metadata

    # -- building the culture -----------------------------------------------------------------
    def prepare(self) -> None:
        """The one-off compile for this configuration (cached; quick once done)."""
        import dishbrain.culture.model  # noqa: F401  (Brian2, quieted: no log files, no hook)
        from dishbrain.culture import ensure_build, ensure_compiled

        cfg = self.config
        culture_config, mea_config = cfg.culture_and_mea_configs()
        if self._backend == "runtime":
            ensure_compiled()
            return
        if culture_config is None:   # a saved culture: its config is in the file
            culture_config, mea_config = _saved_configs(cfg.state)
        from dishbrain.mea import MEA

        mea = MEA(mea_config) if mea_config is not None else MEA()
        ensure_build(culture_config, mea, self._tick_ms(culture_config), False)

    def _tick_ms(self, culture_config) -> float:
        return float(self.config.tick_ms if self.config.tick_ms is not None
                     else culture_config.dt_ms)

    def _build_culture(self):
        from dishbrain.culture import make_culture
        from dishbrain.mea import MEA

        cfg = self.config
        if cfg.state is not None:
            culture = make_culture(backend=self._backend, path=cfg.state)
        else:
            culture_config, mea_config = cfg.culture_and_mea_configs()
            mea = MEA(mea_config) if mea_config is not None else None
            culture = make_culture(culture_config, mea, seed=cfg.seed or 0,
                                   backend=self._backend)
        if hasattr(culture, "prepare"):
            culture.prepare(self._tick_ms(culture.config), verbose=False)
        return culture

    def open(self) -> None:
        """Start building the culture in its thread; wait for it up to ``_OPEN_WAIT_S``.

        The SDK fails a producer that is not ready within 15 s; on a busy machine building and
        starting the culture can take longer, so then open() returns and the first read waits
        for the culture (the SDK's reads wait 30 s; its accelerated ``loop`` only 0.1 s per
        tick, which is why the examples read a second before their loop).
        """
        cfg = self.config
        if cfg.state is not None:
            culture_config, _ = _saved_configs(cfg.state)
        else:
            culture_config, _ = cfg.culture_and_mea_configs()
        self._lock = _LockStep(self._build_culture, self._tick_ms(culture_config),
                               culture_config.dt_ms, cfg.silent_channels)
        self._next_frame = 0
        if cfg.frames == "synthetic":
            rng = np.random.default_rng([cfg.seed or 0, 0xC1])
            noise = rng.normal(0.0, cfg.noise_rms_uv / UV_PER_SAMPLE_UNIT,
                               size=(_NOISE_BANK_FRAMES, CHANNEL_COUNT))
            noise[:, self._silent] = 0.0
            self._noise = np.clip(np.rint(noise), -32768, 32767).astype(np.int16)
        self._lock.start(wait_s=_OPEN_WAIT_S)

    def close(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.stop()
            self.stats["late_stims"] = lock.late_stims
        culture = lock.culture if lock is not None else None
        if culture is not None and self.config.save_state and lock.error is None \
                and not lock.thread.is_alive():
            culture.save(self.config.save_state)
        if lock is not None and lock.error is None and _in_sdk_producer():
            # cl-sdk gives its producer process 2 s to exit before terminating it; tearing down
            # Brian2's and SymPy's modules alone can take that long on a busy machine. The
            # producer's own cleanup (its shared buffer) runs before the exit handlers, so the
            # process may end at once: this handler, registered last, runs first.
            atexit.register(_exit_now)

    # -- the SDK's calls ----------------------------------------------------------------------
    def on_stims(self, stims: Sequence[DataSourceStim]) -> None:
        lock = self._lock
        if lock is None:
            return
        cfg = self.config
        out = []
        for stim in stims:
            amplitude = pulse_amplitude_mv(stim.phase_durations_us, stim.phase_currents_uA,
                                           cfg.mv_per_ua, cfg.reference_phase_us)
            frame = int(stim.timestamp) - self._metadata.start_timestamp
            out.append((lock.tick_of_frame(max(frame, 0)), int(stim.channel), amplitude))
        self.stats["stims"] += len(out)
        lock.add_stims(out)

    def on_stim(self, stim: DataSourceStim) -> None:
        self.on_stims([stim])

    def read(self, from_timestamp: int, frame_count: int) -> DataSourceBatch:
        lock = self._lock
        if lock is None:
            raise RuntimeError("dishbrain.cl: read() before open()")
        start = self._metadata.start_timestamp
        a = int(from_timestamp) - start
        b = a + int(frame_count)
        ticks = lock.advance(b)
        spikes = []
        for frame, channels, counts in ticks:
            ts = frame + start
            for ch, n in zip(channels.tolist(), counts.tolist()):
                spike = DataSourceSpike(timestamp=ts, channel=ch, samples=self._waveform,
                                        channel_mean_sample=0.0)
                spikes.extend([spike] * n)
        self.stats["spikes"] += len(spikes)
        frames = None
        if self._noise is not None:
            frames = self._frames(a, b, ticks)
        self._next_frame = b
        return DataSourceBatch(frames=frames, spikes=spikes)

    def _frames(self, a: int, b: int, ticks: list) -> np.ndarray:
        """Noise plus the spikes' waveforms for frames [a, b); waveform tails past b carry over
        to the next read, samples before a (already sent) are dropped."""
        n = b - a
        extra = np.zeros((n + SPIKE_SAMPLES_TOTAL, CHANNEL_COUNT), dtype=np.float32)
        extra[:SPIKE_SAMPLES_TOTAL] = self._carry
        w = self._waveform_units
        for frame, channels, counts in ticks:
            lo = frame - SPIKE_SAMPLES_BEFORE - a
            seg = w[max(0, -lo):]
            s0 = max(lo, 0)
            extra[s0:s0 + seg.size, channels] += seg[:, None] * counts[None, :].astype(np.float32)
        self._carry = extra[n:n + SPIKE_SAMPLES_TOTAL].copy()
        out = self._noise[np.arange(a, b) % _NOISE_BANK_FRAMES].astype(np.float32)
        out += extra[:n]
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def _import_brian2_off_the_main_thread() -> None:
    """Import Brian2 in the culture's thread (it takes seconds: not in the producer's start-up).

    Brian2's import installs a Ctrl-C handler, which Python allows only in the main thread; the
    SDK's producer runs in its own session without a terminal, so that handler is skipped.
    """
    if "brian2" in sys.modules or threading.current_thread() is threading.main_thread():
        return
    import signal

    real = signal.signal

    def signal_outside_main(signum, handler):
        if threading.current_thread() is threading.main_thread():
            return real(signum, handler)
        return signal.getsignal(signum)

    signal.signal = signal_outside_main
    try:
        import dishbrain.culture.model  # noqa: F401  (Brian2, quieted: no log files, no hook)
    finally:
        signal.signal = real


def _in_sdk_producer() -> bool:
    return "cl-data-producer" in sys.argv


def _exit_now() -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _saved_configs(path: str):
    """(CultureConfig, MEAConfig) stored in a saved culture, without building it."""
    import json

    from dishbrain.culture import CultureConfig
    from dishbrain.mea import MEAConfig

    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(bytes(z["meta_json"]).decode())
    return CultureConfig.from_dict(meta["config"]), MEAConfig.from_dict(meta["mea_config"])


def _resolve_backend(backend: str | None) -> str:
    from dishbrain.culture import standalone_available

    if backend is None:
        backend = os.environ.get("DISHBRAIN_CULTURE_BACKEND", "auto")
        if backend not in BACKENDS:
            raise ValueError(f"DISHBRAIN_CULTURE_BACKEND must be one of {BACKENDS}, "
                             f"got {backend!r}")
    ok, why = standalone_available()
    if backend == "auto":
        return "standalone" if ok else "runtime"
    if backend == "standalone" and not ok:
        raise ValueError(f"CultureSourceConfig.backend 'standalone' unavailable: {why}")
    return backend


def culture_source(**config: Any) -> CultureDataSource:
    """The factory cl-sdk imports (``CL_SDK_DATA_SOURCE=dishbrain.cl:culture_source``):
    keyword arguments are the config (module notes); wrong ones raise one-line ValueErrors."""
    source = CultureDataSource(CultureSourceConfig.from_kwargs(config))
    if not _in_sdk_producer():
        # The app's process (metadata discovery): the one-off compile happens here, with a
        # message, and not in the producer, which must be ready within the SDK's 15 s.
        source.prepare()
    return source
