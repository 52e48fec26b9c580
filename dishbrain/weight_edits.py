"""The E->E weight edits of `dishbrain grip` and the lab notebook, and the direct route's index.

A saved culture's E->E weights edited with its wiring kept (docs/learning.md, entries 4-9, 33):

- ``direct``: every synapse from a band's sensory neurons (the excitatory neurons its electrode
  records) onto the motor neurons of the right direction (up for the top half of the bands) at
  the ceiling, onto the wrong one at 0; ``toward=False``: the mirror image;
- ``motor-inputs``: every E->E input of up-region neurons from the top half of the dish doubled
  (capped at the ceiling), from the bottom half cut to 0; mirrored for down-region neurons;
- ``both``: motor-inputs, then direct;
- a *dose* D of the direct route (`dose_weights`): its synapses onto the right side x e^(D/2),
  capped, onto the wrong side x e^(-D/2).

The *direct index* of a change w0 -> w1 (entry 26l): per band log(summed weight onto up, w1 /
w0) - log(the same onto down); the top bands' mean minus the bottom bands' (`direct_index`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from envs.config import check_choice

__all__ = ["EDITS", "W_KEY", "motor_groups", "edit_weights", "dose_weights",
           "direct_index_per_band", "direct_index", "index_of_bands", "edit_saved_culture"]

EDITS = ("direct", "motor-inputs", "both")
W_KEY = "state::culture_synapses_ee::w"   # the plastic E->E weights in a saved culture



def motor_groups(mea, positions_um: np.ndarray, is_excitatory: np.ndarray, layout: str):
    """(sensory masks per band, up mask, down mask) over neurons, excitatory only: the neurons
    that each sensory electrode, and the layout's up and down electrodes, record."""
    rec = mea.recording_matrix(positions_um).tocsr()

    def recorded(electrodes):
        return (np.asarray(rec[list(electrodes)].sum(axis=0)).ravel() > 0) & is_excitatory

    lay = mea.motor_layout(layout)
    return ([recorded([e]) for e in mea.sensory], recorded(lay.up_electrodes),
            recorded(lay.down_electrodes))


def edit_weights(w: np.ndarray, pre: np.ndarray, post: np.ndarray, positions_um: np.ndarray,
                 groups, w_max: float, edit: str, toward: bool) -> np.ndarray:
    """E->E weights `w` (synapses pre -> post) edited towards the tracking map (or, with
    ``toward=False``, its mirror image); see the module notes. Returns a new array."""
    check_choice("grip", "edit", edit, EDITS)
    sens, up, down = groups
    w = np.array(w, dtype=float, copy=True)
    if edit in ("motor-inputs", "both"):
        top = positions_um[:, 1] < np.median(positions_um[:, 1])   # y grows downward
        for target, source in ((up, top), (down, ~top)):
            if not toward:
                source = ~source
            more, less = target[post] & source[pre], target[post] & ~source[pre]
            w[more] = np.minimum(2.0 * w[more], w_max)
            w[less] = 0.0
    if edit in ("direct", "both"):
        for k, s in enumerate(sens):
            right, wrong = (up, down) if (k < len(sens) // 2) == toward else (down, up)
            w[s[pre] & right[post]] = w_max
            w[s[pre] & wrong[post]] = 0.0
    return w


def dose_weights(w: np.ndarray, pre: np.ndarray, post: np.ndarray, groups, w_max: float,
                 dose: float, toward: bool) -> np.ndarray:
    """The direct route scaled (module notes): each band's E->E synapses onto the right side's
    motor neurons x e^(dose/2), capped at `w_max`, onto the wrong side's x e^(-dose/2); the
    mirror image with ``toward=False``. Returns a new array."""
    sens, up, down = groups
    w = np.array(w, dtype=float, copy=True)
    for k, s in enumerate(sens):
        right, wrong = (up, down) if (k < len(sens) // 2) == toward else (down, up)
        w[s[pre] & right[post]] = np.minimum(w[s[pre] & right[post]] * math.exp(dose / 2), w_max)
        w[s[pre] & wrong[post]] *= math.exp(-dose / 2)
    return w


def direct_index_per_band(w0: np.ndarray, w1: np.ndarray, pre: np.ndarray, post: np.ndarray,
                          groups) -> np.ndarray:
    """Per band, how far its direct route moved from `w0` to `w1` (docs/learning.md, entry
    26l): log(summed weight onto up, w1 / w0) - log(the same onto down); NaN for a band without
    synapses onto both sides, -inf / +inf where a side's sum went to 0."""
    sens, up, down = groups
    per_band = np.full(len(sens), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, s in enumerate(sens):
            su, sd = s[pre] & up[post], s[pre] & down[post]
            if su.any() and sd.any():
                per_band[k] = (np.log(w1[su].sum() / w0[su].sum())
                               - np.log(w1[sd].sum() / w0[sd].sum()))
    return per_band


def direct_index(w0: np.ndarray, w1: np.ndarray, pre: np.ndarray, post: np.ndarray,
                 groups) -> float:
    """The direct route's index of the move from `w0` to `w1` towards the tracking map: the top
    half of the bands' `direct_index_per_band` mean minus the bottom half's (> 0: the top bands'
    synapses gained onto up relative to down, the bottom bands' onto down). NaN where a half has
    no band with a number."""
    return index_of_bands(direct_index_per_band(w0, w1, pre, post, groups))


def index_of_bands(per_band: np.ndarray) -> float:
    """The top half of the bands' mean minus the bottom half's, NaN bands left out (NaN if a
    half has none)."""
    half = len(per_band) // 2
    top, bottom = per_band[:half], per_band[half:]
    if np.isnan(top).all() or np.isnan(bottom).all():
        return math.nan
    with np.errstate(invalid="ignore"):
        return float(np.nanmean(top) - np.nanmean(bottom))


def edit_saved_culture(src: Path, dst: Path, layout: str, edit: str, toward: bool,
                       dose: float = 0.0) -> tuple[int, float]:
    """Write `src` (a saved culture) to `dst` with its E->E weights edited (with ``dose`` > 0
    the graded direct-route edit, `dose_weights`, instead of `edit`); returns how many synapses
    changed and the direct route's index of the change (`direct_index`)."""
    from dishbrain.mea import MEA, MEAConfig

    with np.load(src, allow_pickle=False) as f:
        z = {k: f[k] for k in f.files}
    meta = json.loads(bytes(z["meta_json"]).decode())
    exc = z["structure::is_excitatory"]
    pre, post = z["structure::pre"], z["structure::post"]
    ee = exc[pre] & exc[post]
    pre, post = pre[ee], post[ee]
    positions = z["structure::positions_um"]
    mea = MEA(MEAConfig(**meta["mea_config"]))
    groups = motor_groups(mea, positions, exc, layout)
    w = z[W_KEY]
    if w.shape != pre.shape:
        raise ValueError(f"{src}: {w.size} E->E weights for {pre.size} E->E synapses")
    w_max = float(meta["config"]["g_ee_max_per_ms"])
    new = (dose_weights(w, pre, post, groups, w_max, dose, toward) if dose > 0
           else edit_weights(w, pre, post, positions, groups, w_max, edit, toward))
    z[W_KEY] = new
    with open(dst, "wb") as f:
        np.savez(f, **z)
    index = direct_index(w, new, pre, post, groups)
    return int(np.count_nonzero(new != w)), index
