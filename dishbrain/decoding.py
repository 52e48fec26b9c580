"""Motor decoding: spike counts of the culture's motor regions -> the paddle's movement.

DishBrain (Kagan et al. 2022, Neuron 110:3952; ``shared/PROTOCOL.md``, [P]) reads 4 motor regions
of the MEA, 2 that push the paddle up and 2 that push it down. Each region's activity is normalised
against its own baseline, so a region that is busy anyway (near a bursting cluster, or under a
sensory electrode) does not win by default; the difference between the "up" and the "down"
regions' normalised activity sets the paddle's movement. Several layouts (which electrodes form
which region) exist; the recorded pilot session logged a new layout after each miss
(``shared/data/spikestream-pilot``), which `DecoderConfig.switch_layout_after_misses` reproduces.

Baseline: an exponential running mean and variance per region (time constant
`baseline_tau_s`), warmed up as a plain running average over the first tau; a region's activity in
a tick is z = (count - mean) / max(std, baseline_floor), read before the tick updates the baseline.

Modes (`DecoderConfig.mode`):
- ``"difference"``: the summed difference d = sum(z_up) - sum(z_down); d > dead_band -> up,
  d < -dead_band -> down, else stay. `movement` is +1, 0 or -1.
- ``"linear"``: movement = clip(gain * d, -1, 1), a continuous command. The game's action space
  is Discrete(3), so the command is realised by first-order sigma-delta modulation: the pushes
  (+1 up, -1 down, 0 stay) over the ticks average to the command, with the running error bounded
  by half a push. `dead_band` is not used in this mode.

- ``"contrast"``: one normalised contrast of the two directions, with no per-region baseline.
  U and D are leaky counts of the up and the down regions' spikes (each tick's count added to the
  previous value times exp(-tick / `smoothing_ms`): the spikes of about the last 100 ms, the bin
  of classic population decoders of motor cortex, Wessberg et al. 2000, Nature 408:361;
  Serruya et al. 2002, Nature 416:141). The command is the contrast c = (U - D) / (U + D + 1), a
  divisive normalisation (Carandini & Heeger 2012, Nat Rev Neurosci 13:51) that reads *which*
  side fires more, not how much the whole dish fires, so a network burst that reaches both sides
  alike commands nothing; the + 1 (a pseudo-count of one spike) keeps a lone spike in a silent
  dish from being a full-scale command. c is compared with ONE running mean and sd of c itself
  (time constant `baseline_tau_s`): z = (c - mean) / sd, up if z > dead_band, down if
  z < -dead_band. The common baseline removes the culture's constant bias towards one side
  (docs/learning.md, entry 4: 57-67 % of ticks pushed up with per-region z-scores and dead band
  0) without equalising the regions against each other, which per-region z-scores do and which
  hides a slow change of one region's share (ibid., analysis point 4). Nothing in it depends on
  the game's events. `baseline_floor` is not used in this mode. Issue 17's pilot found this
  readout widened the span between the two vertical layouts several-fold.

`movement` is positive upwards (towards y = 0): +1 is a full push up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from envs.config import Config, check_choice, check_int, check_number
from envs.pong import ACTION_DOWN, ACTION_STAY, ACTION_UP

DECODER_MODES = ("difference", "linear", "contrast")


@dataclass(frozen=True)
class DecoderConfig(Config):
    """Every setting of the motor decoder, validated on construction."""

    mode: str = "difference"
    #: Time constant of each region's running baseline (mean and variance).
    baseline_tau_s: float = 10.0
    #: Smallest standard deviation used in the normalisation (spikes per tick), so that a region
    #: that was silent does not saturate on its first spike.
    baseline_floor: float = 0.5
    gain: float = 0.5              # linear mode: movement per unit of normalised difference
    #: difference mode: |d| <= dead_band -> stay; contrast mode: |z| <= dead_band (in sd) -> stay.
    dead_band: float = 0.5
    #: contrast mode: time constant of the leaky up and down counts (~100 ms bins: module notes).
    smoothing_ms: float = 100.0
    layout: str | None = None      # the MEA's motor layout to start with (None: its first)
    #: Switch to the MEA's next layout after this many misses (0: never).
    switch_layout_after_misses: int = 0

    def __post_init__(self) -> None:
        check_choice(self, "mode", self.mode, DECODER_MODES)
        for name in ("baseline_tau_s", "baseline_floor", "gain", "smoothing_ms"):
            check_number(self, name, getattr(self, name), lo=0, lo_open=True)
        check_number(self, "dead_band", self.dead_band, lo=0)
        if self.layout is not None and not isinstance(self.layout, str):
            raise ValueError(f"DecoderConfig.layout must be a layout name or None, "
                             f"got {self.layout!r}")
        check_int(self, "switch_layout_after_misses", self.switch_layout_after_misses, lo=0)


class RunningBaseline:
    """Exponential running mean and variance of a vector of signals, one per region.

    Weight of a new sample: max(1 / n, 1 - exp(-dt / tau)) for the n-th sample, i.e. a plain
    average until it has seen about tau of data, then an exponential one (West 1979's weighted
    incremental update).
    """

    def __init__(self, size: int, tau_s: float, dt_s: float):
        self.alpha = 1.0 - math.exp(-dt_s / tau_s)
        self.mean = np.zeros(size)
        self.var = np.zeros(size)
        self.n = 0

    def reset(self) -> None:
        self.mean[:] = 0.0
        self.var[:] = 0.0
        self.n = 0

    def update(self, x: np.ndarray) -> None:
        self.n += 1
        w = max(1.0 / self.n, self.alpha)
        delta = x - self.mean
        self.mean += w * delta
        self.var = (1.0 - w) * (self.var + w * delta * delta)


class MotorDecoder:
    """Spike counts per electrode (one tick) -> a paddle action (`envs.pong` ACTION_*).

    `mea` provides `n_electrodes`, `layout_names` and `motor_layout(name)` (regions of electrode
    indices). Baselines are kept for the regions of every layout, so switching layout is seamless.
    After `decode`: `movement` (the continuous command, + up), `activity` (normalised up and down
    totals; in contrast mode the leaky up and down counts U and D), `layout` (the current
    layout's name).
    """

    def __init__(self, mea, config: DecoderConfig = DecoderConfig(), tick_ms: float = 10.0):
        if not (tick_ms > 0):
            raise ValueError(f"tick_ms must be > 0, got {tick_ms!r}")
        self.mea = mea
        self.config = config
        self.tick_ms = float(tick_ms)
        self.n_electrodes = int(mea.n_electrodes)
        self.layout_names: tuple[str, ...] = tuple(mea.layout_names)
        if not self.layout_names:
            raise ValueError("the MEA has no motor layouts")
        if config.layout is not None and config.layout not in self.layout_names:
            raise ValueError(f"DecoderConfig.layout must be one of {list(self.layout_names)}, "
                             f"got {config.layout!r}")
        # One row per region of every layout: region counts = rows @ counts.
        rows = []
        self._rows_of: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for name in self.layout_names:
            layout = mea.motor_layout(name)
            idx = []
            for regions in (layout.up, layout.down):
                ids = []
                for region in regions:
                    row = np.zeros(self.n_electrodes)
                    electrodes = np.asarray(region, dtype=int)
                    if (electrodes.size == 0 or electrodes.min() < 0
                            or electrodes.max() >= self.n_electrodes):
                        raise ValueError(f"motor layout {name!r} has a region with electrodes "
                                         f"outside 0..{self.n_electrodes - 1}: {tuple(region)}")
                    row[electrodes] = 1.0
                    ids.append(len(rows))
                    rows.append(row)
                idx.append(np.array(ids, dtype=int))
            if idx[0].size == 0 or idx[1].size == 0:
                raise ValueError(f"motor layout {name!r} needs at least one up and one down region")
            self._rows_of[name] = (idx[0], idx[1])
        self._regions = np.array(rows)
        self.baseline = RunningBaseline(len(rows), config.baseline_tau_s, self.tick_ms / 1000.0)
        # Contrast mode: leaky counts of every region, and one baseline of c per layout (a layout
        # switch flips which side is "up", so each layout's contrast keeps its own mean).
        self._decay = math.exp(-self.tick_ms / config.smoothing_ms)
        self._leaky = np.zeros(len(rows))
        self._contrast_baselines = {name: RunningBaseline(1, config.baseline_tau_s,
                                                          self.tick_ms / 1000.0)
                                    for name in self.layout_names}
        self.reset()

    def reset(self) -> None:
        """A new session: fresh baselines, the configured layout, no pending sigma-delta error."""
        self.baseline.reset()
        self._leaky[:] = 0.0
        for b in self._contrast_baselines.values():
            b.reset()
        self.layout = self.config.layout or self.layout_names[0]
        self.movement = 0.0
        self.activity = (0.0, 0.0)
        self._error = 0.0
        self._misses = 0
        self.layout_switches = 0

    def set_layout(self, name: str) -> None:
        if name not in self._rows_of:
            raise ValueError(f"unknown motor layout {name!r}; allowed: {list(self.layout_names)}")
        self.layout = name

    def next_layout(self) -> str:
        i = self.layout_names.index(self.layout)
        self.set_layout(self.layout_names[(i + 1) % len(self.layout_names)])
        self.layout_switches += 1
        return self.layout

    def on_event(self, event: str) -> None:
        """The game's event of the step (`info["event"]`): switches layout after misses if set."""
        n = self.config.switch_layout_after_misses
        if event == "miss" and n > 0:
            self._misses += 1
            if self._misses % n == 0:
                self.next_layout()

    def normalised(self, counts: np.ndarray) -> np.ndarray:
        """Every region's activity against its own baseline (then the baseline learns the tick)."""
        counts = np.asarray(counts, dtype=float)
        if counts.shape != (self.n_electrodes,):
            raise ValueError(f"counts must have shape ({self.n_electrodes},), got {counts.shape}")
        x = self._regions @ counts
        b = self.baseline
        if b.n == 0:
            z = np.zeros_like(x)
        else:
            z = (x - b.mean) / np.maximum(np.sqrt(b.var), self.config.baseline_floor)
        b.update(x)
        return z

    def contrast(self, counts: np.ndarray) -> float:
        """Contrast mode: this tick's z of the current layout's contrast (module notes); the
        leaky counts and every layout's baseline then learn the tick."""
        counts = np.asarray(counts, dtype=float)
        if counts.shape != (self.n_electrodes,):
            raise ValueError(f"counts must have shape ({self.n_electrodes},), got {counts.shape}")
        self._leaky = self._leaky * self._decay + self._regions @ counts
        z_now = 0.0
        for name, (up_rows, down_rows) in self._rows_of.items():
            u, d = float(self._leaky[up_rows].sum()), float(self._leaky[down_rows].sum())
            c = np.array([(u - d) / (u + d + 1.0)])
            b = self._contrast_baselines[name]
            if name == self.layout:
                self.activity = (u, d)
                sd = math.sqrt(float(b.var[0]))
                # Before the first tick, or while c has not varied yet, there is no scale: stay.
                z_now = float((c[0] - b.mean[0]) / sd) if b.n > 0 and sd > 0 else 0.0
            b.update(c)
        return z_now

    def decode(self, counts: np.ndarray) -> int:
        c = self.config
        if c.mode == "contrast":
            z = self.contrast(counts)
            self.movement = 1.0 if z > c.dead_band else (-1.0 if z < -c.dead_band else 0.0)
            if self.movement > 0:
                return ACTION_UP
            return ACTION_DOWN if self.movement < 0 else ACTION_STAY
        z = self.normalised(counts)
        up_rows, down_rows = self._rows_of[self.layout]
        up, down = float(z[up_rows].sum()), float(z[down_rows].sum())
        self.activity = (up, down)
        d = up - down
        if c.mode == "difference":
            if d > c.dead_band:
                self.movement = 1.0
            elif d < -c.dead_band:
                self.movement = -1.0
            else:
                self.movement = 0.0
            push = self.movement
        else:
            self.movement = min(max(c.gain * d, -1.0), 1.0)
            v = self._error + self.movement
            push = float(min(max(round(v), -1), 1))
            self._error = v - push
        if push > 0:
            return ACTION_UP
        if push < 0:
            return ACTION_DOWN
        return ACTION_STAY
