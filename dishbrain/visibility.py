"""Visibility: how much of a push the synapses onto the motor regions can see (issue 17, Stage 2).

`dishbrain grip` asks whether the weights can steer the paddle (Stage 1). A local learning rule
also has to tell, at the synapse, which push earned a feedback train: a synapse from band k's
sensory neurons onto a motor neuron sees only the two neurons' co-activity. If the up and the
down regions fire together and a push is a small fluctuation of their difference, every rule that
captures co-activity writes mostly what both sides share (docs/learning.md, entries 25-26: ~97 %
at the tags' 1-s time scale in the default culture).

From a culture session's per-tick trace (``dishbrain play --trace``; format in
``dishbrain.logs``), with U and D the spikes recorded on the current layout's up and down
electrodes (the neurons whose spikes command the paddle), each a leaky sum with time constant
``tau_ms`` of the ticks *before* the decision (at tau = the contrast readout's smoothing, exactly
its counts), and p the push (+1 up, -1 down, 0 none) averaged over the same tau, this tick
included. Over the ticks with the ball in play in band k (the court's height in 8 bands, top
first; none within ``skip_after_train_ms`` of the start of a feedback train, whose pulses
saturate the counts):

- ``push[k]`` = half the difference of mean(U - D) between ticks with p > 0 and p < 0: how far
  the up-minus-down co-activity of band k's synapses moves with the push;
- ``common[k]`` = mean((U + D) / 2): the level that either side's co-activity carries;
- ``geometry[k]`` = mean(U - D): the fixed part, set by where band k's stimulation spreads;
- ``visibility[k]`` = push / common.

tau = 1 s is what a tag of ~1 s (Yagishita et al. 2014) integrates before a train captures it.
Bands with fewer than ``MIN_TICKS`` ticks of either sign give NaN. Pure numpy and scipy (no
Brian2): it reads traces, it runs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BANDS", "MIN_TICKS", "Visibility", "format_visibility", "leaky_motor_counts",
           "motor_electrodes", "trace_visibility", "visibility_of_log"]

#: Vertical bands of the court, as the place code's electrodes (shared/PROTOCOL.md); a tick's
#: band is `dishbrain.encoding.PlaceCodeEncoder.slots` of the ball's height.
BANDS = 8
#: Fewest ticks of each push sign in a band for a number (fewer: NaN).
MIN_TICKS = 10


@dataclass(frozen=True)
class Visibility:
    """One session at one tau: per-band arrays (top band first) and their summaries."""

    source: str
    tau_ms: float
    push: np.ndarray
    common: np.ndarray
    geometry: np.ndarray
    ticks: np.ndarray

    @property
    def visibility(self) -> np.ndarray:
        return self.push / self.common

    @property
    def median(self) -> float:
        """Median visibility over the bands that have a number (NaN if none)."""
        v = self.visibility
        return float(np.nanmedian(v)) if np.isfinite(v).any() else float("nan")

    @property
    def geometry_spread(self) -> float:
        """sd over bands of the fixed part, over the mean common level."""
        return float(np.nanstd(self.geometry) / np.nanmean(self.common))


def motor_electrodes(meta: dict) -> tuple[list[int], list[int]]:
    """The up and the down electrodes of a culture trace's layout (its header's ``array``)."""
    array = meta["array"]
    return (sorted({e for region in array["motor_up"] for e in region}),
            sorted({e for region in array["motor_down"] for e in region}))


def leaky_motor_counts(meta: dict, trace: np.ndarray, tau_ms: float
                       ) -> tuple[np.ndarray, np.ndarray]:
    """U and D per tick: the spikes recorded on the up and the down electrodes, each a leaky sum
    with time constant ``tau_ms`` of the ticks *before* the tick (what a decision there could
    know; at the contrast readout's smoothing, exactly its counts)."""
    from scipy.signal import lfilter

    up, down = motor_electrodes(meta)
    counts = np.asarray(trace["counts"], dtype=float)
    keep = float(np.exp(-float(meta.get("tick_ms", 10.0)) / tau_ms))

    def leaky_before(raw: np.ndarray) -> np.ndarray:
        # y_t = keep * y_{t-1} + raw_t, read one tick later: what the decision at t could know.
        y = lfilter([1.0], [1.0, -keep], raw)
        return np.concatenate([[0.0], y[:-1]])

    return leaky_before(counts[:, up].sum(axis=1)), leaky_before(counts[:, down].sum(axis=1))


def trace_visibility(meta: dict, trace: np.ndarray, tau_ms: float, source: str = "",
                     skip_after_train_ms: float = 100.0) -> Visibility:
    """`Visibility` of one session's trace (``dishbrain.logs.read_trace``) at ``tau_ms``."""
    from scipy.signal import lfilter

    from dishbrain.encoding import PlaceCodeEncoder
    from envs.pong import ACTION_DOWN, ACTION_UP

    if not (isinstance(tau_ms, (int, float)) and np.isfinite(tau_ms) and tau_ms > 0):
        raise ValueError(f"tau_ms must be a number > 0 (ms), got {tau_ms!r}")
    names = trace.dtype.names or ()
    array = meta.get("array")
    if "counts" not in names or not array:
        raise ValueError(f"{source or 'trace'}: no spike counts per electrode (a culture "
                         "player's trace is needed: dishbrain play --agent culture --trace)")
    tick = float(meta.get("tick_ms", 10.0))
    height = float(meta.get("env_config", {}).get("court_height", 600.0))
    keep = float(np.exp(-tick / tau_ms))
    U, D = leaky_motor_counts(meta, trace, tau_ms)
    action = np.asarray(trace["action"])
    move = np.where(action == ACTION_UP, 1.0, np.where(action == ACTION_DOWN, -1.0, 0.0))
    p = lfilter([1.0 - keep], [1.0, -keep], move)
    band = PlaceCodeEncoder(BANDS).slots(np.asarray(trace["ball_y"]) / height)
    valid = np.asarray(trace["in_play"]) > 0
    skip = max(1, int(round(skip_after_train_ms / tick)))
    for t0 in np.flatnonzero(np.asarray(trace["feedback"]) > 0):
        valid[t0:t0 + skip] = False
    out = {k: np.full(BANDS, np.nan) for k in ("push", "common", "geometry")}
    ticks = np.zeros(BANDS, dtype=int)
    diff = U - D
    for k in range(BANDS):
        sel = valid & (band == k)
        plus, minus = sel & (p > 0), sel & (p < 0)
        ticks[k] = int(sel.sum())
        if plus.sum() < MIN_TICKS or minus.sum() < MIN_TICKS:
            continue
        out["push"][k] = 0.5 * (diff[plus].mean() - diff[minus].mean())
        out["common"][k] = 0.5 * (U[sel] + D[sel]).mean()
        out["geometry"][k] = diff[sel].mean()
    return Visibility(source=source, tau_ms=float(tau_ms), ticks=ticks, **out)


def visibility_of_log(path: str | Path, taus_ms=(100.0, 1000.0)) -> list[Visibility]:
    """`Visibility` at each tau of the session whose log (or trace) is at ``path``."""
    from dishbrain.logs import read_trace

    try:
        meta, trace = read_trace(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no trace beside this log (play it with --trace)") from None
    return [trace_visibility(meta, trace, tau, source=Path(path).name) for tau in taus_ms]


def format_visibility(results: list[Visibility]) -> str:
    """A Markdown table: per session and tau, the per-band visibility, its median, the geometry's
    spread, and the median |push| over that spread; then the median over sessions per tau."""
    lines = ["| session | tau ms | visibility per band (push / common), top ... bottom | median "
             "| geometry's spread / common | median push / geometry's spread |",
             "|---|---|---|---|---|---|"]
    by_tau: dict[float, list[float]] = {}
    for r in results:
        spread = np.nanstd(r.geometry)
        ratio = (float(np.nanmedian(np.abs(r.push)) / spread)
                 if np.isfinite(r.push).any() and spread > 0 else float("nan"))
        lines.append(f"| {r.source} | {r.tau_ms:.0f} | "
                     + " ".join("-" if not np.isfinite(x) else f"{x:+.3f}" for x in r.visibility)
                     + f" | {r.median:+.3f} | {r.geometry_spread:.3f} | {ratio:.3f} |")
        by_tau.setdefault(r.tau_ms, []).append(r.median)
    for tau, m in by_tau.items():
        m = [x for x in m if np.isfinite(x)]
        if m:
            lines.append(f"tau {tau:.0f} ms: median visibility over sessions {np.median(m):+.3f} "
                         f"(range {min(m):+.3f} to {max(m):+.3f}, {len(m)} "
                         f"session{'s' if len(m) != 1 else ''})")
    return "\n".join(lines)
