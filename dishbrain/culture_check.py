"""Check that a simulated culture behaves like a real one: spontaneous activity, bursts, responses.

``culture_check(out_dir)`` simulates a culture and writes one PNG with
1. a spike raster of spontaneous activity (neurons sorted by vertical position) above the
   population rate with the detected network bursts marked;
2. the electrode-wise firing map (Hz per recorded neuron, 8 x 8 heat map) of the same period;
3. the stimulus response: a PSTH around single 75 mV pulses on one electrode, for neurons near
   the electrode (< 100 um) and far from it (> 400 um).
It returns the paths written (the PNG and a JSON file with the numbers shown).

Network bursts follow the population-rate definition used for cultured cortical networks
(Wagenaar, Pine & Potter 2006, BMC Neurosci 7:11, detect them from summed activity across
electrodes): runs of bins whose population rate exceeds a threshold relative to the median,
merged across short gaps, in which a minimum fraction of all neurons takes part.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class BurstStats:
    n_bursts: int
    bursts_per_min: float
    mean_duration_ms: float
    mean_interval_s: float
    interval_cv: float
    fraction_spikes_in_bursts: float
    mean_participation: float


def population_rate_hz(times_ms: np.ndarray, n_neurons: int, t_start_ms: float, t_stop_ms: float,
                       bin_ms: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """(bin left edges in ms, mean rate per neuron in Hz) of the whole population."""
    edges = np.arange(t_start_ms, t_stop_ms + 1e-9, bin_ms)
    counts, _ = np.histogram(times_ms, bins=edges)
    return edges[:-1], counts / n_neurons / (bin_ms * 1e-3)


def detect_network_bursts(times_ms: np.ndarray, neurons: np.ndarray, n_neurons: int,
                          t_start_ms: float, t_stop_ms: float, bin_ms: float = 10.0,
                          threshold_factor: float = 4.0, min_rate_hz: float = 2.0,
                          merge_gap_ms: float = 50.0,
                          min_participation: float = 0.1) -> list[tuple[float, float, int, float]]:
    """Network bursts as (start_ms, end_ms, n_spikes, fraction of neurons taking part).

    A bin is "active" when the population rate exceeds max(min_rate_hz, threshold_factor *
    median rate); active runs closer than merge_gap_ms merge; a run is a burst when at least
    min_participation of all neurons spike in it.
    """
    times_ms = np.asarray(times_ms, dtype=np.float64)
    neurons = np.asarray(neurons)
    left, rate = population_rate_hz(times_ms, n_neurons, t_start_ms, t_stop_ms, bin_ms)
    if len(rate) == 0:
        return []
    threshold = max(min_rate_hz, threshold_factor * float(np.median(rate)))
    active = np.flatnonzero(rate > threshold)
    if len(active) == 0:
        return []
    runs = []
    start = prev = active[0]
    for k in active[1:]:
        if (k - prev - 1) * bin_ms > merge_gap_ms:
            runs.append((start, prev))
            start = k
        prev = k
    runs.append((start, prev))
    order = np.argsort(times_ms, kind="stable")
    ts, ns = times_ms[order], neurons[order]
    bursts = []
    for a, b in runs:
        t0, t1 = left[a], left[b] + bin_ms
        lo, hi = np.searchsorted(ts, [t0, t1])
        part = len(np.unique(ns[lo:hi])) / n_neurons
        if part >= min_participation:
            bursts.append((float(t0), float(t1), int(hi - lo), float(part)))
    return bursts


def burst_statistics(times_ms: np.ndarray, neurons: np.ndarray, n_neurons: int,
                     t_start_ms: float, t_stop_ms: float, **kwargs) -> BurstStats:
    """Summary statistics of ``detect_network_bursts``."""
    bursts = detect_network_bursts(times_ms, neurons, n_neurons, t_start_ms, t_stop_ms, **kwargs)
    minutes = (t_stop_ms - t_start_ms) / 60_000.0
    if not bursts:
        return BurstStats(0, 0.0, 0.0, float("nan"), float("nan"), 0.0, 0.0)
    starts = np.array([b[0] for b in bursts])
    iv = np.diff(starts) / 1e3
    return BurstStats(
        n_bursts=len(bursts),
        bursts_per_min=len(bursts) / minutes,
        mean_duration_ms=float(np.mean([b[1] - b[0] for b in bursts])),
        mean_interval_s=float(iv.mean()) if len(iv) else float("nan"),
        interval_cv=float(iv.std() / iv.mean()) if len(iv) > 1 else float("nan"),
        fraction_spikes_in_bursts=sum(b[2] for b in bursts) / max(1, len(times_ms)),
        mean_participation=float(np.mean([b[3] for b in bursts])),
    )


def electrode_rates_hz(culture, times_ms: np.ndarray, neurons: np.ndarray,
                       duration_ms: float) -> np.ndarray:
    """Spikes per second recorded at each electrode (rows x cols)."""
    per_neuron = np.bincount(np.asarray(neurons), minlength=culture.n_neurons)
    counts = culture._record @ per_neuron
    cfg = culture.mea.config
    return (counts / (duration_ms / 1e3)).reshape(cfg.rows, cfg.cols)


def stimulus_response(culture, electrode: int, n_pulses: int = 40, interval_ms: float = 500.0,
                      amplitude_mv: float = 75.0, near_um: float = 100.0, far_um: float = 400.0,
                      window_ms: tuple[float, float] = (-50.0, 250.0), bin_ms: float = 2.0,
                      progress: bool = False) -> dict:
    """PSTH (spikes/s per neuron) around single pulses on one electrode, near vs far neurons."""
    d = np.hypot(*(culture.neuron_positions_um - culture.mea.positions_um[electrode]).T)
    near, far = np.flatnonzero(d < near_um), np.flatnonzero(d > far_um)
    t0 = culture.t_ms
    culture.stimulate([electrode], amplitude_mv=amplitude_mv, rate_hz=1000.0 / interval_ms,
                      duration_ms=n_pulses * interval_ms)
    t, i = culture.record(n_pulses * interval_ms, progress=progress)
    pulses = t0 + interval_ms * np.arange(n_pulses)
    edges = np.arange(window_ms[0], window_ms[1] + 1e-9, bin_ms)
    out = {"electrode": int(electrode), "amplitude_mv": amplitude_mv, "n_pulses": n_pulses,
           "bin_ms": bin_ms, "edges_ms": edges.tolist(), "near_um": near_um, "far_um": far_um,
           "n_near": int(len(near)), "n_far": int(len(far))}
    for name, group in (("near", near), ("far", far)):
        sel = np.isin(i, group)
        rel = (t[sel][None, :] - pulses[:, None]).ravel()
        h, _ = np.histogram(rel, bins=edges)
        out[f"psth_{name}_hz"] = (h / max(1, len(group)) / n_pulses / (bin_ms / 1e3)).tolist()
        resp = [np.isin(group, i[(t >= p) & (t < p + 20.0)]).mean() if len(group) else 0.0
                for p in pulses]
        out[f"p_spike_20ms_{name}"] = float(np.mean(resp))
    return out


#: What the default culture is calibrated to (dishbrain/culture/config.py, the conductances'
#: notes): mean rate in Hz, network bursts per minute, mean burst duration in ms.
CALIBRATION_TARGET = {"mean_rate_hz": (1.0, 1.7), "bursts_per_min": (14.0, 22.0),
                      "mean_duration_ms": (150.0, 250.0)}


def within_target(rate_hz: float, stats: BurstStats) -> dict[str, bool]:
    """Each calibration figure (`CALIBRATION_TARGET`) against its range."""
    values = {"mean_rate_hz": rate_hz, "bursts_per_min": stats.bursts_per_min,
              "mean_duration_ms": stats.mean_duration_ms}
    return {k: bool(lo <= values[k] <= hi) for k, (lo, hi) in CALIBRATION_TARGET.items()}


def culture_check(out_dir, n_neurons: int | None = None, seconds: float = 60.0, seed: int = 0,
                  progress: bool = True, config=None, mea_config=None) -> list[Path]:
    """Simulate a culture and write ``culture-check.png`` and ``culture-check.json`` to out_dir.

    ``seconds`` of spontaneous activity (after a 2 s settling period that is not shown), then 40
    single 75 mV pulses, 500 ms apart, on sensory electrode 3. ``config`` (a `CultureConfig`)
    and ``mea_config`` (a `MEAConfig`) default to the defaults; ``n_neurons``, when given,
    replaces the config's. Returns the paths written.
    """
    import dataclasses

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dishbrain.culture import Culture, CultureConfig
    from dishbrain.mea import MEA

    config = CultureConfig() if config is None else config
    if n_neurons is not None:
        config = dataclasses.replace(config, n_neurons=n_neurons)
    n_neurons = config.n_neurons
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    wall0 = time.perf_counter()
    culture = Culture(config, None if mea_config is None else MEA(mea_config), seed=seed)
    culture.run(2000.0)
    t_start = culture.t_ms
    times, neurons = culture.record(seconds * 1000.0, progress=progress)
    t_stop = culture.t_ms
    duration = t_stop - t_start
    rate = len(times) / n_neurons / (duration / 1e3)
    bursts = detect_network_bursts(times, neurons, n_neurons, t_start, t_stop)
    stats = burst_statistics(times, neurons, n_neurons, t_start, t_stop)
    emap = electrode_rates_hz(culture, times, neurons, duration)
    electrode = culture.mea.sensory[3]
    psth = stimulus_response(culture, electrode, progress=progress)

    fig = plt.figure(figsize=(13, 9))
    grid = fig.add_gridspec(3, 2, height_ratios=[2.2, 0.8, 2.0], width_ratios=[2.3, 1.0],
                            hspace=0.35, wspace=0.2)
    ax_r = fig.add_subplot(grid[0, :])
    order = np.argsort(np.argsort(culture.neuron_positions_um[:, 1]))
    exc = culture.is_excitatory[neurons]
    ax_r.scatter((times[exc] - t_start) / 1e3, order[neurons[exc]], s=0.4, c="k", lw=0,
                 rasterized=True, label="excitatory")
    ax_r.scatter((times[~exc] - t_start) / 1e3, order[neurons[~exc]], s=0.4, c="tab:red", lw=0,
                 rasterized=True, label="inhibitory")
    ax_r.set_xlim(0, duration / 1e3)
    ax_r.set_ylim(0, n_neurons)
    ax_r.set_ylabel("neuron (by y position)")
    ax_r.set_title(f"Spontaneous activity: {n_neurons} neurons, seed {seed}, mean rate "
                   f"{rate:.2f} Hz; {stats.n_bursts} network bursts "
                   f"({stats.bursts_per_min:.1f}/min, {stats.mean_duration_ms:.0f} ms, "
                   f"{100 * stats.fraction_spikes_in_bursts:.0f}% of spikes, "
                   f"{100 * stats.mean_participation:.0f}% of neurons take part)")
    ax_r.legend(loc="upper right", markerscale=12, fontsize=8)

    ax_p = fig.add_subplot(grid[1, :], sharex=ax_r)
    left, pop = population_rate_hz(times, n_neurons, t_start, t_stop, 10.0)
    ax_p.plot((left - t_start) / 1e3, pop, lw=0.6, c="k")
    for b in bursts:
        ax_p.axvspan((b[0] - t_start) / 1e3, (b[1] - t_start) / 1e3, color="tab:orange",
                     alpha=0.4, lw=0)
    ax_p.set_ylabel("rate (Hz)\n10 ms bins")
    ax_p.set_xlabel("time (s); orange: detected network bursts")

    ax_m = fig.add_subplot(grid[2, 1])
    im = ax_m.imshow(emap, cmap="viridis", origin="upper")
    fig.colorbar(im, ax=ax_m, label="recorded spikes/s", shrink=0.8)
    for k, e in enumerate(culture.mea.sensory):
        r, c = divmod(e, culture.mea.config.cols)
        ax_m.text(c, r, f"S{k}", ha="center", va="center", color="w", fontsize=7)
    layout = culture.mea.motor_layout()
    for e in layout.up_electrodes:
        r, c = divmod(e, culture.mea.config.cols)
        ax_m.text(c, r, "U", ha="center", va="center", color="w", fontsize=6, alpha=0.7)
    for e in layout.down_electrodes:
        r, c = divmod(e, culture.mea.config.cols)
        ax_m.text(c, r, "D", ha="center", va="center", color="w", fontsize=6, alpha=0.7)
    ax_m.set_title(f"Electrode firing map (S: sensory; U/D: motor,\n'{layout.name}' layout)",
                   fontsize=9)
    ax_m.set_xlabel("column")
    ax_m.set_ylabel("row")

    ax_s = fig.add_subplot(grid[2, 0])
    centres = np.asarray(psth["edges_ms"][:-1]) + psth["bin_ms"] / 2
    ax_s.plot(centres, psth["psth_near_hz"], c="tab:blue",
              label=f"near (< {psth['near_um']:.0f} um, n={psth['n_near']}): "
                    f"P(spike in 20 ms) = {psth['p_spike_20ms_near']:.2f}")
    ax_s.plot(centres, psth["psth_far_hz"], c="tab:gray",
              label=f"far (> {psth['far_um']:.0f} um, n={psth['n_far']}): "
                    f"P(spike in 20 ms) = {psth['p_spike_20ms_far']:.2f}")
    ax_s.axvline(0, c="k", lw=0.8, ls=":")
    ax_s.set_yscale("symlog", linthresh=1.0)
    ax_s.set_ylim(bottom=0)
    ax_s.set_xlabel("time from pulse (ms)")
    ax_s.set_ylabel("spikes/s per neuron")
    ax_s.set_title(f"Stimulus response: {psth['n_pulses']} pulses of {psth['amplitude_mv']:.0f} mV "
                   f"on sensory electrode S3 (#{electrode})", fontsize=10)
    ax_s.legend(fontsize=8)

    png = out / "culture-check.png"
    fig.savefig(png, dpi=110)
    plt.close(fig)
    summary = {
        "n_neurons": n_neurons, "seed": seed, "seconds": seconds,
        "mean_rate_hz": rate, "burst_statistics": asdict(stats),
        "calibration_target": {k: list(v) for k, v in CALIBRATION_TARGET.items()},
        "within_target": within_target(rate, stats),
        "electrode_rates_hz": emap.round(3).tolist(), "stimulus_response": psth,
        "config": culture.config.to_dict(), "mea_config": asdict(culture.mea.config),
        "wall_s": time.perf_counter() - wall0,
    }
    js = out / "culture-check.json"
    js.write_text(json.dumps(summary, indent=1))
    return [png, js]
