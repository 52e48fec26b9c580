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
