"""The culture's dynamics as Brian2 equations, and `CultureNetwork`: a culture's Brian2 objects.

Model
-----
- Neurons: Izhikevich (2003, IEEE TNN 14:1569) neurons with the cell types and heterogeneity of
  `dishbrain.culture.structure`; the equations and their integration are written out below.
- Synapses: conductance-based with instantaneous rise and exponential decay: AMPA (reversal
  0 mV, 5 ms), NMDA with its voltage-dependent Mg2+ block (0 mV, 100 ms, 0.4 of the AMPA
  conductance) and GABA_A (-70 mV, 6 ms), after Izhikevich & Edelman 2008 (PNAS 105:3593).
  NMDA sustains network bursts for ~100s of ms, as in cultures.
- Short-term plasticity, Tsodyks & Markram 1997 (PNAS 94:719) / Markram, Wang & Tsodyks 1998
  (PNAS 95:5323): excitatory synapses onto RS/IB/CH/FS neurons depress, those onto LTS
  (bitufted/Martinotti-like) interneurons facilitate. Parameters as in Tsodyks, Uziel & Markram
  2000 (J Neurosci 20:RC50). Inhibitory synapses are static.
- Long-term plasticity: pair-based additive STDP on E->E synapses with all-to-all pairing,
  hard bounds [0, g_ee_max] and the parameters of Song, Miller & Abbott 2000 (Nat Neurosci 3:919:
  tau+ = tau- = 20 ms, A- / A+ = 1.05), consistent with Bi & Poo 1998 (J Neurosci 18:10464).
  Optionally tagged (synaptic tagging and capture, Frey & Morris 1997; see
  ``CultureConfig.stdp_tagging``).
- Slow homeostatic synaptic scaling (Turrigiano et al. 1998, Nature 391:892), on by default,
  can be switched off: every ``homeostasis_interval_ms`` each E->E weight is scaled by
  1 + homeostasis_rate * (target - r_post) / target, with r_post the postsynaptic rate estimated
  over ``homeostasis_tau_s``. Multiplicative, so it keeps the relative weights STDP learned. At
  the defaults it changes weights by at most ~0.2% per second; without it, STDP under the
  bursting activity depresses E->E weights for minutes and the culture falls silent (~0.3 Hz
  after 5 minutes), with it the rate stays near 1-2 Hz over a 20-minute session.
- Spontaneous activity: a background current redrawn every ``noise_interval_ms`` (cheaper than a
  white-noise xi term; see shared/BRIAN2-NOTES.md), from the hash random numbers of
  `dishbrain.culture.rng`. Together with recurrent excitation and synaptic depression it gives low
  background firing and network bursts, the hallmark of cultured cortical networks (Wagenaar,
  Pine & Potter 2006, BMC Neurosci 7:11).
- Stimulation: each electrode is a unit of an electrode group that emits "pulses"; a pulse kicks
  the membrane potential of the neurons around the electrode by
  ``stim_gain * amplitude * coupling(distance)`` (coupling from ``MEA.stimulation_matrix``).

Bookkeeping that is exact and cheap (shared/BRIAN2-NOTES.md "best variant"): the STP state and the
postsynaptic STDP trace are kept per neuron and updated only when that neuron spikes. The STP
efficacy of a spike is computed when the spike is emitted and read by each synapse when the spike
arrives; the only approximation is that a second spike emitted within one axonal delay (a few ms)
overwrites the first spike's efficacy before it arrives. The presynaptic STDP trace is kept per
synapse (event-driven), so STDP is exact with heterogeneous delays.

Both backends build their network here: the runtime `Culture` (`dishbrain.culture.runtime`) and
the compiled build (`dishbrain.culture.build`). Importing this module imports Brian2 (~1-2 s).

Long because every plasticity variant of the learning search (issue 17: tags, capture rules,
normalisation) is written out here as Brian2 code beside the base model, so that both backends
generate it from one place and the equivalence test covers them all.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from brian2 import (
    Clock,
    Function,
    Network,
    NeuronGroup,
    Synapses,
    ms,
    prefs,
    second,
)

from dishbrain.culture.config import CultureConfig
from dishbrain.culture.rng import (
    CYTHON_NORMAL,
    CYTHON_UNIFORM,
    STREAM_NOISE,
    STREAM_PULSES,
    hash_normal_np,
    hash_uniform_np,
    stream_key,
)
from dishbrain.culture.structure import CELL_TYPES, CultureStructure
from dishbrain.mea import MEA


def _quiet_brian2() -> None:
    """Library use: no debug log, no script copy, no std redirection in the temp folder.

    Brian2 creates its log file and script copy when it is imported, before these preferences
    can be set, so the files this process made are closed and removed here.
    """
    import logging
    import os
    import sys

    from brian2.utils.logger import BrianLogger, brian_excepthook

    prefs.logging.file_log = False
    prefs.logging.save_script = False
    prefs.logging.std_redirection = False
    if BrianLogger.file_handler is not None:
        BrianLogger.file_handler.close()
        logging.getLogger("brian2").removeHandler(BrianLogger.file_handler)
        BrianLogger.file_handler = None
    for attr in ("tmp_log", "tmp_script"):
        name = getattr(BrianLogger, attr, None)
        if name:
            for f in (name, name + ".1"):
                try:
                    os.remove(f)
                except OSError:
                    pass
            setattr(BrianLogger, attr, None)
    if sys.excepthook is brian_excepthook:
        sys.excepthook = sys.__excepthook__


_quiet_brian2()

# ---------------------------------------------------------------------------------------------
# Model equations. v, u and I_noise in mV; the Izhikevich right-hand side is in mV per ms, so the
# conductances ge (AMPA), gn (NMDA), gi (GABA_A) are per ms (nS/pF with the model's implicit
# unit capacitance):
#
#   dv/dt  = (0.04/mV v^2 + 5 v + 140 mV - u + (ge + B(v) gn) (E_exc - v) + gi (E_inh - v)
#             + I_noise) / ms
#   du/dt  = a (b v - u) / ms
#   dge/dt = -ge / tau_exc,   dgn/dt = -gn / tau_nmda,   dgi/dt = -gi / tau_inh
#   B(v)   = ((v + 80 mV) / 60 mV)^2 / (1 + ((v + 80 mV) / 60 mV)^2)      (Mg2+ block)
#   spike when v >= 30 mV:  v <- c,  u <- u + d
#
# NEURON_UPDATE integrates them as Izhikevich 2003 does (two half steps for v, then u from the new
# v; exact decay for the conductances) and floors v at V_FLOOR: with a large u after intense
# firing, the explicit step of the quadratic term is unstable below about -(5 + 2/dt_ms)/0.08 mV
# and would produce runaway spurious spikes. Nothing in a cortical neuron drives v below the
# potassium reversal (~ -85 to -90 mV), so the floor changes no physiological trajectory.
# ---------------------------------------------------------------------------------------------

V_FLOOR_MV = -85.0

NEURON_VARIABLES = """
v : volt
u : volt
ge : 1
gn : 1
gi : 1
I_noise : volt
a : 1 (constant)
b : 1 (constant)
c : volt (constant)
d : volt (constant)
noise_mean : volt (constant)
noise_sigma : volt (constant)
exc : 1 (constant)
facil : 1 (constant)
x_dep : 1
eff_dep : 1
u_fac : 1
x_fac : 1
eff_fac : 1
apost : 1
rate_est : Hz
t_last : second
n_spikes : integer
"""

NEURON_UPDATE = """
mg = ((v + 80*mV) / (60*mV))**2
I_syn = (ge + gn * mg / (1 + mg)) * (E_exc - v) + gi * (E_inh - v)
v_half = v + 0.5*dt * (0.04/mV*v**2 + 5*v + 140*mV - u + I_syn + I_noise) / ms
mg_half = ((v_half + 80*mV) / (60*mV))**2
I_half = (ge + gn * mg_half / (1 + mg_half)) * (E_exc - v_half) + gi * (E_inh - v_half)
v_next = v_half + 0.5*dt * (0.04/mV*v_half**2 + 5*v_half + 140*mV - u + I_half + I_noise) / ms
v = clip(v_next, v_floor, v_ceiling)
u = u + dt * a * (b*v - u) / ms
ge = ge * exp(-dt / tau_exc)
gn = gn * exp(-dt / tau_nmda)
gi = gi * exp(-dt / tau_inh)
"""
# exc: 1 for excitatory neurons. facil: 1 for LTS neurons (their excitatory inputs facilitate).
# x_dep / eff_dep: resources of the depressing STP state and the efficacy of the last spike
# (relative to a rested synapse); u_fac / x_fac / eff_fac: the same for the facilitating state.
# apost: postsynaptic STDP trace just after the last spike; t_last: time of the last spike.

NEURON_THRESHOLD = "v >= 30*mV"

# The STP and STDP states are advanced to the spike time in closed form, then the spike is applied.
NEURON_RESET = """
v = c
u = u + d
x_dep = 1 - (1 - x_dep) * exp((t_last - t) / tau_rec_dep)
eff_dep = stp_on * x_dep + (1 - stp_on)
x_dep = x_dep * (1 - U_dep)
u_fac = u_fac * exp((t_last - t) / tau_facil_fac)
u_fac = u_fac + U_fac * (1 - u_fac)
x_fac = 1 - (1 - x_fac) * exp((t_last - t) / tau_rec_fac)
eff_fac = stp_on * u_fac * x_fac / U_fac + (1 - stp_on)
x_fac = x_fac * (1 - u_fac)
apost = apost * exp((t_last - t) / tau_minus) + 1
rate_est = rate_est * exp((t_last - t) / tau_homeo) + 1 / tau_homeo
t_last = t
n_spikes += 1
"""

# Tagged STDP (CultureConfig.stdp_tagging): the presynaptic rate trace that gates capture.
TAGGING_NEURON_VARIABLES = "hf : 1\n"
TAGGING_NEURON_RESET = "hf = hf * exp((t_last - t) / tau_capture) + 1\n"

NOISE_CODE = "I_noise = noise_mean + noise_sigma * hash_normal(noise_key, i, t_in_timesteps)"

# Two Synapses objects, so that only the E->E synapses pay for plasticity: the plastic E->E
# synapses (STDP with the per-synapse presynaptic trace apre, homeostatic scaling) and the static
# rest (E->I, I->E, I->I: no postsynaptic pathway, no trace). w: peak conductance of a rested
# synapse (per ms).
EE_SYNAPSE_MODEL = """
w : 1
dapre/dt = -apre / tau_plus : 1 (event-driven)
"""

# An E->E synapse: the postsynaptic neuron is excitatory, never LTS, so the synapse depresses.
EE_TRANSMIT = """
g_rel = w * eff_dep_pre
ge_post += g_rel
gn_post += nmda_ratio * g_rel
apre += 1
"""

EE_ON_PRE = EE_TRANSMIT + """
w = clip(w - A_minus * apost_post * exp((t_last_post - t) / tau_minus), w_min, w_max)
"""

EE_ON_POST = """
w = clip(w + A_plus * apre, w_min, w_max)
"""

# Tagged STDP: the same pair-STDP increments go to the tag; a presynaptic spike whose neuron's
# rate trace hf is at or above the capture threshold moves the tag into the weight.
TAGGED_EE_SYNAPSE_MODEL = EE_SYNAPSE_MODEL + "dtag/dt = -tag / tau_tag : 1 (event-driven)\n"

TAGGED_EE_ON_PRE = EE_TRANSMIT + """
tag = tag - A_minus * apost_post * exp((t_last_post - t) / tau_minus)
capture = int(hf_pre >= capture_threshold)
w = w + capture * (clip(w + capture_gain * tag, w_min, w_max) - w)
tag = tag * (1 - capture)
"""

TAGGED_EE_ON_POST = """
tag = tag + A_plus * apre
"""

# Weight-dependent STDP (CultureConfig.stdp_weight_dependence = "multiplicative", van Rossum, Bi &
# Turrigiano 2000): the LTD step scales with w / w_ref (w_ref = the initial mean weight), the LTP
# step does not. The same for the tag's LTD term.
LTD_ADDITIVE = "A_minus * apost_post * exp((t_last_post - t) / tau_minus)"
LTD_MULTIPLICATIVE = "A_minus * (w / w_ref) * apost_post * exp((t_last_post - t) / tau_minus)"

# Bidirectional capture (CultureConfig.ltd_capture): a slow presynaptic trace lf; a presynaptic
# spike with lf at or above its threshold and the fast trace hf below ltd_capture_hf_max (the
# spikes are spaced, not a burst or a tetanus) removes the tag's positive part from the weight
# and clears the tag.
LTD_CAPTURE_NEURON_VARIABLES = "lf : 1\n"
LTD_CAPTURE_NEURON_RESET = "lf = lf * exp((t_last - t) / tau_ltd_capture) + 1\n"
LTD_CAPTURE_ON_PRE = """
depress = int(lf_pre >= ltd_capture_threshold) * int(hf_pre < ltd_capture_hf_max) * (1 - capture)
w = w + depress * (clip(w - ltd_capture_gain * 0.5 * (tag + abs(tag)), w_min, w_max) - w)
tag = tag * (1 - capture) * (1 - depress)
"""


# Capture of the positive part only (CultureConfig.capture_positive_only).
CAPTURE_SIGNED = "clip(w + capture_gain * tag, w_min, w_max)"
CAPTURE_POSITIVE = "clip(w + capture_gain * 0.5 * (tag + abs(tag)), w_min, w_max)"
# Tags written only while the presynaptic fast trace, decayed to now, is below tag_hf_max
# (CultureConfig.tag_hf_max): the factor on both pair terms of the tag.
TAG_GATE = "int(hf_pre * exp((t_last_pre - t) / tau_capture) < tag_hf_max) * "
TAG_LTD = "tag = tag - "
TAG_LTP = "tag = tag + "
# Hebbian tags (CultureConfig.tag_rule = "hebbian"): a presynaptic trace hc (tau_hebb) read at
# each postsynaptic spike; the tag's pair-STDP depression term is dropped.
HEBBIAN_NEURON_VARIABLES = "hc : 1\n"
HEBBIAN_NEURON_RESET = "hc = hc * exp((t_last - t) / tau_hebb) + 1\n"
TAG_STDP_LTP = "A_plus * apre"
TAG_HEBBIAN_LTP = "A_plus * hc_pre * exp((t_last_pre - t) / tau_hebb)"
# Covariance tags (CultureConfig.tag_rule = "covariance"): the Hebbian term, less at each
# presynaptic spike what it would add on average if the postsynaptic neuron fired at its own
# running rate (rate_est, tau_homeo) independently of the presynaptic one: the tag's drift is
# A+ tau_hebb r_pre (r_post - <r_post>), positive when the target fires above its own mean
# while the source fires.
TAG_COVARIANCE_LTD = "A_plus * tau_hebb * rate_est_post * exp((t_last_post - t) / tau_homeo)"
# Conditional covariance tags (CultureConfig.tag_rule = "conditional", entry 34): at each
# presynaptic spike the tag grows by A+ (h - hp_mean), h the target's fast trace hf (tau_capture)
# then, and hp_mean, per synapse, the running mean of h over the source's last ~N spikes; no
# postsynaptic term. The geometry (what the target usually does while this source fires) is in
# hp_mean and cancels. Both lines take the tag gate (tag_hf_max), so a train's pulses neither tag
# nor move the mean.
CONDITIONAL_SYNAPSE_VARIABLES = "hp_mean : 1\n"
CONDITIONAL_TAG = """h_seen = hf_post * exp((t_last_post - t) / tau_capture)
tag = tag + {gate}A_plus * (h_seen - hp_mean)
hp_mean = hp_mean + {gate}(h_seen - hp_mean) / tag_conditional_spikes
"""

# Tags against their own baseline (CultureConfig.tag_baseline_tau_s > 0): a second, slow trace
# tag_mean receives every change of the tag (pairings and the clearing at a capture) scaled by
# tau_tag / tau_tag_mean, so that its long-run mean equals the tag's; capture moves
# tag - tag_mean into the weight, the tag's deviation from its usual level, and consumes it:
# the tag is set to its baseline (not to 0, which a later pulse of the same tetanus would
# capture again as a deviation of -tag_mean).
TAG_MEAN_MODEL = "dtag_mean/dt = -tag_mean / tau_tag_mean : 1 (event-driven)\n"
TAG_MEAN_CLEAR = """tag_mean = tag_mean + capture * tag_mean_share * (tag_mean - tag)
tag = tag + capture * (tag_mean - tag)
"""


def _with_tag_mean(code: str) -> str:
    """Every tag pairing line (TAG_LTP, TAG_LTD) followed by the same change of tag_mean, scaled."""
    out = []
    for line in code.splitlines(keepends=True):
        out.append(line)
        for head in (TAG_LTP, TAG_LTD):
            if line.startswith(head):
                term = line[len(head):].rstrip("\n")
                out.append(head.replace("tag", "tag_mean") + f"tag_mean_share * {term}\n")
    return "".join(out)


def _edit(code: str, old: str, new: str) -> str:
    """`code` with `old` replaced by `new`. `old` must occur: an option whose pattern no longer
    matches the base code would otherwise leave the model silently unchanged."""
    if old not in code:
        raise RuntimeError(f"plasticity code edit: {old!r} not found in {code!r}")
    return code.replace(old, new)


def ee_code(config: CultureConfig) -> dict[str, str]:
    """The E->E synapses' and the neurons' plasticity code for a configuration.

    Keys: ``model``, ``on_pre``, ``on_post`` (the E->E Synapses), ``neuron_variables`` and
    ``neuron_reset`` (prepended to the neurons' own). The default configuration gets exactly the
    module's EE_* strings, so its generated code is unchanged by the options.
    """
    cfg = config
    tagging = cfg.stdp_tagging and cfg.stdp_enabled
    on_pre = TAGGED_EE_ON_PRE if tagging else EE_ON_PRE
    if cfg.stdp_weight_dependence == "multiplicative":
        on_pre = _edit(on_pre, LTD_ADDITIVE, LTD_MULTIPLICATIVE)
    if not tagging:
        return {"model": EE_SYNAPSE_MODEL, "on_pre": on_pre, "on_post": EE_ON_POST,
                "neuron_variables": "", "neuron_reset": ""}
    on_post = TAGGED_EE_ON_POST
    if cfg.capture_positive_only:
        on_pre = _edit(on_pre, CAPTURE_SIGNED, CAPTURE_POSITIVE)
    if cfg.tag_hf_max > 0:
        on_pre = _edit(on_pre, TAG_LTD, TAG_LTD + TAG_GATE)
        on_post = _edit(on_post, TAG_LTP, TAG_LTP + TAG_GATE)
    variables, reset = TAGGING_NEURON_VARIABLES, TAGGING_NEURON_RESET
    ltd_line = next(line for line in on_pre.splitlines() if line.startswith(TAG_LTD))
    if cfg.tag_rule == "conditional":
        gate = TAG_GATE if cfg.tag_hf_max > 0 else ""
        on_pre = _edit(on_pre, ltd_line + "\n", CONDITIONAL_TAG.format(gate=gate))
        on_post = ""
    elif cfg.tag_rule in ("hebbian", "covariance"):
        if cfg.tag_rule == "hebbian":
            on_pre = _edit(on_pre, ltd_line + "\n", "")
        else:
            ltd_term = ltd_line.split(" - ", 1)[1]
            gate = TAG_GATE if ltd_term.startswith(TAG_GATE) else ""
            on_pre = _edit(on_pre, ltd_line, TAG_LTD + gate + TAG_COVARIANCE_LTD)
        on_post = _edit(on_post, TAG_STDP_LTP, TAG_HEBBIAN_LTP)
        variables += HEBBIAN_NEURON_VARIABLES
        reset += HEBBIAN_NEURON_RESET
    synapse_model = TAGGED_EE_SYNAPSE_MODEL
    if cfg.tag_rule == "conditional":
        synapse_model += CONDITIONAL_SYNAPSE_VARIABLES
    if cfg.tag_baseline_tau_s > 0:
        on_pre, on_post = _with_tag_mean(on_pre), _with_tag_mean(on_post)
        capture = CAPTURE_POSITIVE if cfg.capture_positive_only else CAPTURE_SIGNED
        on_pre = _edit(on_pre, capture, capture.replace("tag", "(tag - tag_mean)"))
        on_pre = _edit(on_pre, "tag = tag * (1 - capture)\n", TAG_MEAN_CLEAR)
        synapse_model += TAG_MEAN_MODEL
    if cfg.ltd_capture:
        # The tag is cleared once, after the LTD capture has read it.
        on_pre = _edit(on_pre, "tag = tag * (1 - capture)\n", "") + LTD_CAPTURE_ON_PRE
        variables += LTD_CAPTURE_NEURON_VARIABLES
        reset += LTD_CAPTURE_NEURON_RESET
    return {"model": synapse_model, "on_pre": on_pre, "on_post": on_post,
            "neuron_variables": variables, "neuron_reset": reset}


HOMEOSTASIS_CODE = """
r_post = rate_est_post * exp((t_last_post - t) / tau_homeo)
w = clip(w * (1 + homeo_rate * (homeo_target - r_post) / homeo_target), w_min, w_max)
"""

# Heterosynaptic normalisation of each neuron's outgoing E->E weights
# (CultureConfig.output_normalization): the sum is gathered afresh each interval (reset, then
# every synapse adds its weight to its presynaptic neuron's w_out), then every synapse is scaled by
# its presynaptic neuron's w_out0 / w_out. Three passes once a second: cheap next to the synaptic
# events. A neuron whose outputs are all at 0 keeps them there.
NORMALIZATION_NEURON_VARIABLES = "w_out : 1\nw_out0 : 1 (constant)\n"
NORMALIZATION_RESET_CODE = "w_out = 0"
NORMALIZATION_SUM_CODE = "w_out_pre += w"
NORMALIZATION_SCALE_CODE = "w = clip(w * w_out0_pre / clip(w_out_pre, 1e-12, 1e12), w_min, w_max)"

STATIC_SYNAPSE_MODEL = "w : 1 (constant)"

# Excitatory inputs of LTS neurons facilitate, the others depress; inhibitory ones are static.
STATIC_ON_PRE = """
g_rel = exc_pre * w * (eff_dep_pre + facil_post * (eff_fac_pre - eff_dep_pre))
ge_post += g_rel
gn_post += nmda_ratio * g_rel
gi_post += (1 - exc_pre) * w
"""

# GABA_B (CultureConfig.gaba_b_ratio > 0): a slow inhibitory conductance gb beside gi, the same
# inhibitory synapses incrementing it gaba_b_ratio times as much, in the integration's two half
# steps as gi is, decaying exactly with tau_gabab (Izhikevich & Edelman 2008's fourth
# conductance). Off, the code is the model's without it (same generated code and numbers).
GABA_B_NEURON_VARIABLES = "gb : 1\n"
GABA_B_ON_PRE = "gb_post += (1 - exc_pre) * gaba_b_ratio * w\n"


def neuron_update(config: CultureConfig) -> str:
    """``NEURON_UPDATE`` for a configuration (with the GABA_B conductance where it is on)."""
    if config.gaba_b_ratio <= 0:
        return NEURON_UPDATE
    code = _edit(NEURON_UPDATE, "+ gi * (E_inh - v)\n", "+ gi * (E_inh - v) + gb * (E_gabab - v)\n")
    code = _edit(code, "+ gi * (E_inh - v_half)\n",
                 "+ gi * (E_inh - v_half) + gb * (E_gabab - v_half)\n")
    return code + "gb = gb * exp(-dt / tau_gabab)\n"


ELECTRODE_EQUATIONS = """
amplitude : volt
rate : Hz
t_end : second
next_pulse : second
random_timing : 1
"""
ELECTRODE_THRESHOLD = "t >= next_pulse - 0.25*dt and t < t_end - 0.25*dt"
# Periodic pulses keep their phase; Poisson pulses draw exponential intervals.
ELECTRODE_RESET = (
    "next_pulse = next_pulse + (1 - random_timing) / rate"
    " - random_timing * log(hash_uniform(stim_key, i, t_in_timesteps)) / rate"
)

STIM_MODEL = "coupling : 1 (constant)"
STIM_ON_PRE = "v_post += stim_gain * amplitude_pre * coupling"


# ---------------------------------------------------------------------------------------------
# The random numbers of `dishbrain.culture.rng` as Brian2 functions (numpy and Cython targets)
# ---------------------------------------------------------------------------------------------

def _make_function(pyfunc, cython_code: str, name: str) -> Function:
    f = Function(pyfunc, arg_units=[1, 1, 1], return_unit=1,
                 arg_types=["integer", "integer", "integer"], return_type="float",
                 stateless=True)
    f.implementations.add_implementation("cython", code=cython_code, name=name)
    return f


HASH_UNIFORM = _make_function(hash_uniform_np, CYTHON_UNIFORM, "_hash_uniform")
HASH_NORMAL = _make_function(hash_normal_np, CYTHON_NORMAL, "_hash_normal")


# ---------------------------------------------------------------------------------------------
# The Brian2 network (the runtime target; the compiled build generates C++ from the same objects)
# ---------------------------------------------------------------------------------------------

_TARGET: str | None = None


def _codegen_target() -> str:
    """'cython' if a compiler works, else 'numpy' with a warning (checked once per process)."""
    global _TARGET
    if _TARGET is None:
        try:
            from brian2.codegen.runtime.cython_rt import CythonCodeObject
            _TARGET = "cython" if CythonCodeObject.is_available() else "numpy"
        except Exception:  # pragma: no cover - depends on the machine
            _TARGET = "numpy"
        if _TARGET == "numpy":
            warnings.warn("Brian2 cannot compile Cython code here (no C compiler?): the culture "
                          "falls back to the numpy target, which is several times slower.",
                          RuntimeWarning, stacklevel=3)
    return _TARGET


def model_namespace(config: CultureConfig, seed: int) -> dict:
    """Constants referenced by the model equations (values with units)."""
    from brian2 import Hz, mV
    cfg = config
    stdp = 1.0 if cfg.stdp_enabled else 0.0
    tag_baseline_s = max(cfg.tag_baseline_tau_s, 1e-3)  # unused (and 0) when off
    return {
        "tau_exc": cfg.tau_exc_ms * ms,
        "tau_inh": cfg.tau_inh_ms * ms,
        "tau_nmda": cfg.tau_nmda_ms * ms,
        "nmda_ratio": float(cfg.nmda_ratio),
        "v_floor": V_FLOOR_MV * mV,
        "v_ceiling": 1e6 * mV,
        "E_exc": cfg.e_exc_mv * mV,
        "E_inh": cfg.e_inh_mv * mV,
        "E_gabab": cfg.e_gaba_b_mv * mV,
        "tau_gabab": cfg.tau_gaba_b_ms * ms,
        "gaba_b_ratio": float(cfg.gaba_b_ratio),
        "stp_on": 1.0 if cfg.stp_enabled else 0.0,
        "U_dep": float(cfg.stp_dep_u),
        "tau_rec_dep": cfg.stp_dep_tau_rec_ms * ms,
        "U_fac": float(cfg.stp_fac_u),
        "tau_rec_fac": cfg.stp_fac_tau_rec_ms * ms,
        "tau_facil_fac": cfg.stp_fac_tau_facil_ms * ms,
        "tau_plus": cfg.stdp_tau_plus_ms * ms,
        "tau_minus": cfg.stdp_tau_minus_ms * ms,
        "A_plus": stdp * cfg.stdp_a_plus * cfg.g_ee_max_per_ms,
        "A_minus": stdp * cfg.stdp_a_plus * cfg.stdp_a_minus_ratio * cfg.g_ee_max_per_ms,
        "tau_tag": cfg.tag_tau_ms * ms,
        "tau_tag_mean": tag_baseline_s * second,
        "tag_mean_share": cfg.tag_tau_ms / 1000.0 / tag_baseline_s,
        "tau_capture": cfg.capture_tau_ms * ms,
        "capture_threshold": float(cfg.capture_threshold),
        "capture_gain": float(cfg.capture_gain),
        "w_ref": float(cfg.g_ee_per_ms) if cfg.g_ee_per_ms > 0 else float(cfg.g_ee_max_per_ms),
        "tau_ltd_capture": cfg.ltd_capture_tau_ms * ms,
        "ltd_capture_threshold": float(cfg.ltd_capture_threshold),
        "ltd_capture_gain": float(cfg.ltd_capture_gain),
        "ltd_capture_hf_max": float(cfg.ltd_capture_hf_max),
        "tag_hf_max": float(cfg.tag_hf_max),
        "tau_hebb": cfg.tag_hebb_tau_ms * ms,
        "tag_conditional_spikes": float(cfg.tag_conditional_spikes),
        "w_min": 0.0,
        "w_max": float(cfg.g_ee_max_per_ms),
        "tau_homeo": cfg.homeostasis_tau_s * second,
        "homeo_target": cfg.homeostasis_target_hz * Hz,
        "homeo_rate": float(cfg.homeostasis_rate),
        "stim_gain": float(cfg.stim_gain),
        "noise_key": stream_key(seed, STREAM_NOISE),
        "stim_key": stream_key(seed, STREAM_PULSES),
        "hash_uniform": HASH_UNIFORM,
        "hash_normal": HASH_NORMAL,
        "mV": mV,
        "ms": ms,
    }


class CultureNetwork:
    """The Brian2 objects of a culture, built from a ``CultureStructure``.

    ``neurons``; the recurrent synapses as two objects, ``synapses_ee`` (E->E: STDP, homeostatic
    scaling) and ``synapses_static`` (E->I, I->E, I->I), whose synapse k is the structure's
    synapse ``ee_index[k]`` / ``static_index[k]`` (``recurrent`` pairs each object with its index
    array, ``weights()`` gathers w in the structure's order); ``electrodes`` and their
    stimulation pathway ``stim``; ``net``, the Network of them all.

    Object and clock names are fixed, so every culture reuses the same compiled code (Cython's
    cache is keyed by the generated code, which contains the names).
    """

    def __init__(self, config: CultureConfig, structure: CultureStructure, mea: MEA,
                 stim_coupling: sp.csr_matrix) -> None:
        from brian2 import Hz, mV
        prefs.codegen.target = _codegen_target()
        cfg, st = config, structure
        n = cfg.n_neurons
        self.clock = Clock(cfg.dt_ms * ms, name="culture_clock")
        self.noise_clock = Clock(cfg.noise_interval_ms * ms, name="culture_noise_clock")

        code = ee_code(cfg)
        normalize = cfg.output_normalization and cfg.stdp_enabled
        gaba_b = cfg.gaba_b_ratio > 0
        G = NeuronGroup(n, NEURON_VARIABLES + code["neuron_variables"]
                        + (NORMALIZATION_NEURON_VARIABLES if normalize else "")
                        + (GABA_B_NEURON_VARIABLES if gaba_b else ""),
                        threshold=NEURON_THRESHOLD,
                        reset=code["neuron_reset"] + NEURON_RESET,
                        clock=self.clock, name="culture_neurons")
        G.run_regularly(neuron_update(cfg), clock=self.clock, when="groups",
                        name="culture_integrate")
        G.a = st.a
        G.b = st.b
        G.c = st.c_mv * mV
        G.d = st.d_mv * mV
        G.v = st.v0_mv * mV
        G.u = st.b * st.v0_mv * mV
        G.exc = st.is_excitatory.astype(float)
        G.facil = (st.cell_type == CELL_TYPES.index("LTS")).astype(float)
        G.noise_mean = np.where(st.is_excitatory, cfg.noise_exc_mean_mv, cfg.noise_inh_mean_mv) * mV
        G.noise_sigma = np.where(st.is_excitatory, cfg.noise_exc_sigma_mv,
                                 cfg.noise_inh_sigma_mv) * mV
        G.x_dep = 1.0
        G.eff_dep = 1.0
        G.x_fac = 1.0
        G.eff_fac = 1.0
        # The rate estimate starts at the target as if the neuron had just fired at t = 0 (the
        # STP and STDP states are at rest, so t_last = 0 changes nothing else).
        G.t_last = 0 * second
        G.rate_est = cfg.homeostasis_target_hz * Hz
        G.run_regularly(NOISE_CODE, clock=self.noise_clock, name="culture_noise")

        ee = st.is_excitatory[st.pre] & st.is_excitatory[st.post]
        self.ee_index = np.flatnonzero(ee)
        self.static_index = np.flatnonzero(~ee)
        S_ee = Synapses(G, G, model=code["model"], on_pre=code["on_pre"],
                        on_post=code["on_post"],
                        clock=self.clock, name="culture_synapses_ee")
        S_st = Synapses(G, G, model=STATIC_SYNAPSE_MODEL,
                        on_pre=STATIC_ON_PRE + (GABA_B_ON_PRE if gaba_b else ""),
                        clock=self.clock, name="culture_synapses_static")
        self.synapses_ee, self.synapses_static = S_ee, S_st
        for S, idx in self.recurrent:
            if idx.size == 0:   # e.g. exc_in_degree = 0: Brian2 cannot connect empty arrays
                S.active = False
                continue
            S.connect(i=st.pre[idx], j=st.post[idx])
            S.w = st.weight[idx]
            S.delay = st.delay_ms[idx] * ms
        if not cfg.stdp_enabled:
            S_ee.post.active = False   # saves the postsynaptic pass; A+/A- are 0 anyway
        if cfg.homeostasis_enabled:
            S_ee.run_regularly(HOMEOSTASIS_CODE, dt=cfg.homeostasis_interval_ms * ms, when="end",
                               name="culture_homeostasis")
        if normalize and self.ee_index.size:
            # Each neuron's outgoing E->E weight at the start is the sum it is held to.
            G.w_out0 = np.bincount(st.pre[self.ee_index], weights=st.weight[self.ee_index],
                                   minlength=n)
            every = cfg.output_normalization_interval_ms * ms
            G.run_regularly(NORMALIZATION_RESET_CODE, dt=every, when="end", order=1,
                            name="culture_normalization_reset")
            S_ee.run_regularly(NORMALIZATION_SUM_CODE, dt=every, when="end", order=2,
                               name="culture_normalization_sum")
            S_ee.run_regularly(NORMALIZATION_SCALE_CODE, dt=every, when="end", order=3,
                               name="culture_normalization_scale")

        E = NeuronGroup(mea.n_electrodes, ELECTRODE_EQUATIONS, threshold=ELECTRODE_THRESHOLD,
                        reset=ELECTRODE_RESET, clock=self.clock, name="culture_electrodes")
        E.rate = 1.0 * Hz
        coo = stim_coupling.tocoo()
        P = Synapses(E, G, model=STIM_MODEL, on_pre=STIM_ON_PRE, clock=self.clock,
                     name="culture_stim")
        P.connect(i=coo.row.astype(np.int32), j=coo.col.astype(np.int32))
        P.coupling = coo.data

        self.neurons, self.electrodes, self.stim = G, E, P
        self.net = Network(G, S_ee, S_st, E, P, name="culture_network")
        # Mark the objects as part of a network now, so that a culture that is built but never
        # run does not warn about "unused" objects when it is garbage-collected.
        from brian2.core.network import _get_all_objects
        for obj in _get_all_objects(self.net.objects):
            obj._network = self.net.id

    def value(self, group, name: str) -> np.ndarray:
        """The live array behind a Brian2 variable (SI units; writes take effect at once)."""
        return group.variables[name].get_value()

    @property
    def recurrent(self) -> tuple[tuple[Synapses, np.ndarray], ...]:
        """(Synapses object, the structure's index of each of its synapses) for both objects."""
        return ((self.synapses_ee, self.ee_index), (self.synapses_static, self.static_index))

    def weights(self) -> np.ndarray:
        """The weight w of every recurrent synapse in the structure's order (a copy)."""
        w = np.empty(len(self.ee_index) + len(self.static_index))
        for S, idx in self.recurrent:
            w[idx] = self.value(S, "w")
        return w
