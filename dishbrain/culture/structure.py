"""The culture's structure: cell types and their parameters, placement, wiring, axonal delays.

Everything about a culture that is drawn once, as a pure function of (config, MEA, seed) with
numpy's generator (`generate_structure`), reusable by every backend:

- Neurons: Izhikevich (2003, IEEE TNN 14:1569) quadratic integrate-and-fire neurons with the
  cortical firing types of Izhikevich (2004, IEEE TNN 15:1063): excitatory regular spiking (RS),
  intrinsically bursting (IB) and chattering (CH); inhibitory fast spiking (FS) and low-threshold
  spiking (LTS). 80:20 excitatory:inhibitory. Heterogeneity follows the r-scheme of Izhikevich 2003
  (excitatory c = -65 + 15 r^2, d = 8 - 6 r^2; inhibitory a = 0.02 + 0.08 r, b = 0.25 - 0.05 r):
  each type is the canonical point of that line (RS r^2 = 0, IB r^2 = 2/3, CH r^2 = 1; LTS r = 0,
  FS r = 1), and each neuron draws r from a band of width ``heterogeneity`` around its type.
- Space and wiring: neurons are scattered over the dish of the MEA (``dishbrain.mea``). Each
  neuron receives a fixed number of excitatory and inhibitory inputs, drawn without replacement
  with probability proportional to exp(-distance / ``connection_length_um``) (mostly local
  wiring; the fixed in-degree keeps the dynamics the same at every culture size).
  Dale's law: a neuron's outgoing synapses are all excitatory or all inhibitory. With
  ``sensory_module_um`` the dish holds two modules, linked less densely than each is within.
  With ``motor_competition_factor`` the interneurons of each motor quadrant draw their
  excitatory inputs preferentially from the competing quadrants (``motor_competition_groups``);
  with ``motor_module_factor`` each motor group is a module, linked sparsely to the others.
- Axonal delays: ``synaptic_delay_ms + distance / conduction_velocity``; unmyelinated cortical
  axons conduct at a few tenths of a m/s (Swadlow 2000; tracked in cultures on HD-MEAs by
  Bakkum et al. 2013, Nat Commun 4:2181) [P].

The dynamics these feed are in `dishbrain.culture.model`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dishbrain.culture.config import MOTOR_COMPETITION_GROUPS, CultureConfig
from dishbrain.mea import MEA, REGION_NAMES

CELL_TYPES = ("RS", "IB", "CH", "FS", "LTS")
# Canonical (a, b, c [mV], d [mV]) per type, Izhikevich 2004 / 2003.
IZHIKEVICH_PARAMETERS = {
    "RS": (0.02, 0.2, -65.0, 8.0),
    "IB": (0.02, 0.2, -55.0, 4.0),
    "CH": (0.02, 0.2, -50.0, 2.0),
    "FS": (0.1, 0.2, -65.0, 2.0),
    "LTS": (0.02, 0.25, -65.0, 2.0),
}
# Where each type sits on Izhikevich 2003's heterogeneity line (r^2 for E, r for I).
_EXC_R2_CENTRE = {"RS": 0.0, "IB": 2.0 / 3.0, "CH": 1.0}
_INH_R_CENTRE = {"FS": 1.0, "LTS": 0.0}


@dataclass
class CultureStructure:
    """One culture's drawn structure: per-neuron arrays (n) and per-synapse arrays (m, all
    recurrent synapses in one list). Saved with the culture and read by both backends."""

    positions_um: np.ndarray        # (n, 2)
    is_excitatory: np.ndarray       # (n,) bool; the first n_exc neurons are excitatory
    cell_type: np.ndarray           # (n,) int8, index into CELL_TYPES
    a: np.ndarray
    b: np.ndarray
    c_mv: np.ndarray
    d_mv: np.ndarray
    pre: np.ndarray                 # (m,) int32, sorted by pre then post
    post: np.ndarray                # (m,) int32
    weight: np.ndarray              # (m,) peak conductance per ms
    delay_ms: np.ndarray            # (m,)
    v0_mv: np.ndarray               # initial membrane potential


def _draw_types(n: int, fractions: Sequence[float], names: Sequence[str],
                rng: np.random.Generator) -> list[str]:
    counts = np.floor(np.asarray(fractions) * n).astype(int)
    counts[np.argmax(fractions)] += n - counts.sum()
    types = np.repeat(np.asarray(names), counts)
    rng.shuffle(types)
    return list(types)


def _sample_inputs(post_pos: np.ndarray, pre_pos: np.ndarray, pre_offset: int, k: int,
                   length_um: float, rng: np.random.Generator,
                   post_module: np.ndarray | None = None, pre_module: np.ndarray | None = None,
                   cross_factor: float = 1.0, post_region: np.ndarray | None = None,
                   pre_region: np.ndarray | None = None,
                   region_factor: float | np.ndarray = 1.0,
                   into_hub: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """k presynaptic partners per postsynaptic neuron, without replacement, p ~ exp(-d/L)
    (times cross_factor between neurons of different modules, where modules are given; times
    region_factor from a neuron of one motor group (> 0) onto a neuron of another, where groups
    are given: a number, or one per postsynaptic neuron; with ``into_hub`` also from a neuron of
    a group onto one of none).

    Gumbel top-k: adding Gumbel noise to log-weights and keeping the k largest is exactly
    sequential sampling without replacement proportional to the weights. Self-connections are
    excluded (post indices are global; pre indices are pre_offset + position in pre_pos).
    """
    n_post, n_pre = len(post_pos), len(pre_pos)
    pre_out, post_out = [], []
    if k == 0 or n_pre == 0:
        return np.empty(0, np.int32), np.empty(0, np.int32)
    block = max(1, 2_000_000 // n_pre)
    # log(region_factor), a number or one per postsynaptic neuron; None where it changes nothing
    log_f = (np.log(region_factor)
             if post_region is not None and np.any(np.asarray(region_factor) != 1.0) else None)
    for start in range(0, n_post, block):
        p = post_pos[start:start + block]
        d = np.hypot(p[:, None, 0] - pre_pos[None, :, 0], p[:, None, 1] - pre_pos[None, :, 1])
        keys = -d / length_um + rng.gumbel(size=d.shape)
        if post_module is not None and cross_factor != 1.0:
            keys += np.log(cross_factor) * (post_module[start:start + block, None]
                                            != pre_module[None, :])
        if log_f is not None:
            pr = post_region[start:start + block, None]
            lf = log_f[start:start + block, None] if np.ndim(log_f) else log_f
            receiving = (pr >= 0) if into_hub else (pr > 0)
            keys += lf * (receiving & (pre_region[None, :] > 0) & (pr != pre_region[None, :]))
        post_ids = np.arange(start, start + len(p))
        self_col = post_ids - pre_offset
        is_self = (self_col >= 0) & (self_col < n_pre)
        keys[np.flatnonzero(is_self), self_col[is_self]] = -np.inf
        kk = min(k, n_pre - (1 if is_self.any() else 0))
        if kk <= 0:
            continue
        chosen = np.argpartition(-keys, kk - 1, axis=1)[:, :kk]
        pre_out.append((chosen + pre_offset).ravel())
        post_out.append(np.repeat(post_ids, kk))
    if not pre_out:
        return np.empty(0, np.int32), np.empty(0, np.int32)
    return (np.concatenate(pre_out).astype(np.int32), np.concatenate(post_out).astype(np.int32))


def sensory_module(config: CultureConfig, mea: MEA, positions_um: np.ndarray) -> np.ndarray:
    """True for the neurons of the sensory module (`CultureConfig.sensory_module_um`): within
    that distance along x of the sensory electrodes' columns. All False for a one-module dish."""
    if config.sensory_module_um <= 0:
        return np.zeros(len(positions_um), dtype=bool)
    xs = mea.positions_um[list(mea.sensory), 0]
    x = positions_um[:, 0]
    return (x >= xs.min() - config.sensory_module_um) & (x <= xs.max() + config.sensory_module_um)


def motor_region(mea: MEA, positions_um: np.ndarray, whole_dish: bool = False) -> np.ndarray:
    """Each neuron's motor quadrant (1-4, in the order of ``dishbrain.mea.REGION_NAMES``): the
    region of its nearest electrode, 0 where that electrode is in no motor region (the sensory
    columns, a motor gap); with ``whole_dish``, the region of its nearest motor electrode, so
    that every neuron has one."""
    of_electrode = np.zeros(mea.n_electrodes, dtype=np.int8)
    for k, name in enumerate(REGION_NAMES, start=1):
        of_electrode[list(mea.regions[name])] = k
    candidates = np.flatnonzero(of_electrode > 0) if whole_dish else np.arange(mea.n_electrodes)
    where = mea.positions_um[candidates]
    pos = np.asarray(positions_um, dtype=np.float64)
    nearest = np.empty(len(pos), dtype=np.int64)
    for start in range(0, len(pos), 4096):
        block = pos[start:start + 4096]
        d = np.hypot(block[:, None, 0] - where[None, :, 0], block[:, None, 1] - where[None, :, 1])
        nearest[start:start + len(block)] = candidates[d.argmin(axis=1)]
    return of_electrode[nearest]


def generate_structure(config: CultureConfig, mea: MEA, seed: int) -> CultureStructure:
    """Everything about the culture that is drawn once: a pure function of (config, mea, seed)."""
    rng = np.random.default_rng([seed, 0x5EED])
    n, n_exc = config.n_neurons, config.n_exc
    pos = mea.place_neurons(n, rng)
    is_exc = np.arange(n) < n_exc

    types = (_draw_types(n_exc, config.exc_type_fractions, ("RS", "IB", "CH"), rng)
             + _draw_types(n - n_exc, config.inh_type_fractions, ("FS", "LTS"), rng))
    cell_type = np.array([CELL_TYPES.index(t) for t in types], dtype=np.int8)
    h = config.heterogeneity
    jitter = rng.uniform(-0.5, 0.5, n) * h
    a = np.empty(n)
    b = np.empty(n)
    c = np.empty(n)
    d = np.empty(n)
    for k, t in enumerate(types):
        if k < n_exc:   # Izhikevich 2003: c = -65 + 15 r^2, d = 8 - 6 r^2
            r2 = min(1.0, max(0.0, _EXC_R2_CENTRE[t] + jitter[k]))
            a[k], b[k], c[k], d[k] = 0.02, 0.2, -65.0 + 15.0 * r2, 8.0 - 6.0 * r2
        else:           # Izhikevich 2003: a = 0.02 + 0.08 r, b = 0.25 - 0.05 r
            r = min(1.0, max(0.0, _INH_R_CENTRE[t] + jitter[k]))
            a[k], b[k], c[k], d[k] = 0.02 + 0.08 * r, 0.25 - 0.05 * r, -65.0, 2.0

    module = sensory_module(config, mea, pos)
    region = None
    e_factor: float | np.ndarray = 1.0     # onto each neuron, for an E input from another group
    comp, modular = config.motor_competition_factor, config.motor_module_factor
    if comp != 1.0 or modular != 1.0:
        group = np.array((0,) + MOTOR_COMPETITION_GROUPS[config.motor_competition_groups],
                         dtype=np.int8)
        region = group[motor_region(mea, pos, config.motor_module_scope == "dish")]  # 0: none
        # competition: only the interneurons' E inputs; modules: every input
        e_factor = np.where(is_exc | (region == 0), modular, modular * comp)
    pre_e, post_e = _sample_inputs(pos, pos[:n_exc], 0, config.exc_in_degree,
                                   config.connection_length_um, rng, module, module[:n_exc],
                                   config.cross_module_factor, region,
                                   None if region is None else region[:n_exc], e_factor,
                                   config.motor_module_scope == "feedforward")
    pre_i, post_i = _sample_inputs(pos, pos[n_exc:], n_exc, config.inh_in_degree,
                                   config.connection_length_um, rng, module, module[n_exc:],
                                   config.cross_module_factor, region,
                                   None if region is None else region[n_exc:], modular,
                                   config.motor_module_scope == "feedforward")
    pre = np.concatenate([pre_e, pre_i])
    post = np.concatenate([post_e, post_i])
    order = np.lexsort((post, pre))
    pre, post = pre[order], post[order]

    mean_w = np.where(is_exc[pre],
                      np.where(is_exc[post], config.g_ee_per_ms, config.g_ei_per_ms),
                      np.where(is_exc[post], config.g_ie_per_ms, config.g_ii_per_ms))
    w = mean_w * (1.0 + config.weight_jitter * rng.uniform(-1.0, 1.0, len(pre)))
    ee = is_exc[pre] & is_exc[post]
    if config.hub_recurrence_factor != 1.0:
        hub = motor_region(mea, pos) == 0
        w[ee & hub[pre] & hub[post]] *= config.hub_recurrence_factor
    w[ee] = np.minimum(w[ee], config.g_ee_max_per_ms)
    dist = np.hypot(*(pos[pre] - pos[post]).T)
    delay = config.synaptic_delay_ms + dist / config.conduction_velocity_um_per_ms
    # Start each neuron just below its resting potential (the lower root of 0.04 v^2 + (5 - b) v
    # + 140 = 0, with u = b v), so that a new culture does not open with a synchronous volley.
    v_rest = (-(5.0 - b) - np.sqrt((5.0 - b) ** 2 - 4 * 0.04 * 140.0)) / (2 * 0.04)
    v0 = v_rest - rng.uniform(0.0, 3.0, n)
    return CultureStructure(pos, is_exc, cell_type, a, b, c, d, pre, post, w, delay, v0)
