"""The simulated culture: a Brian2 network of cortical neurons grown on a virtual MEA.

Model
-----
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
  Dale's law: a neuron's outgoing synapses are all excitatory or all inhibitory.
- Axonal delays: ``synaptic_delay_ms + distance / conduction_velocity``; unmyelinated cortical
  axons conduct at a few tenths of a m/s (Swadlow 2000; tracked in cultures on HD-MEAs by
  Bakkum et al. 2013, Nat Commun 4:2181) [P].
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
- Slow homeostatic synaptic scaling (Turrigiano et al. 1998, Nature 391:892), on by default,
  can be switched off: every ``homeostasis_interval_ms`` each E->E weight is scaled by
  1 + homeostasis_rate * (target - r_post) / target, with r_post the postsynaptic rate estimated
  over ``homeostasis_tau_s``. Multiplicative, so it keeps the relative weights STDP learned. At
  the defaults it changes weights by at most ~0.2% per second; without it, STDP under the
  bursting activity depresses E->E weights for minutes and the culture falls silent (~0.3 Hz
  after 5 minutes), with it the rate stays near 1-2 Hz over a 20-minute session.
- Spontaneous activity: a background current redrawn every ``noise_interval_ms`` (cheaper than a
  white-noise xi term; see shared/BRIAN2-NOTES.md). Together with recurrent excitation and synaptic
  depression it gives low background firing and network bursts, the hallmark of cultured cortical
  networks (Wagenaar, Pine & Potter 2006, BMC Neurosci 7:11).
- Stimulation: each electrode is a unit of an electrode group that emits "pulses"; a pulse kicks
  the membrane potential of the neurons around the electrode by
  ``stim_gain * amplitude * coupling(distance)`` (coupling from ``MEA.stimulation_matrix``).

Bookkeeping that is exact and cheap (shared/BRIAN2-NOTES.md "best variant"): the STP state and the
postsynaptic STDP trace are kept per neuron and updated only when that neuron spikes. The STP
efficacy of a spike is computed when the spike is emitted and read by each synapse when the spike
arrives; the only approximation is that a second spike emitted within one axonal delay (a few ms)
overwrites the first spike's efficacy before it arrives. The presynaptic STDP trace is kept per
synapse (event-driven), so STDP is exact with heterogeneous delays. Random numbers come from a
counter-based hash of (seed, neuron, time step), so the same seed gives the same activity,
several cultures can share a process, and a saved culture continues bit-identically after loading.
"""

from __future__ import annotations

from envs.config import Config, check_bool, check_int, check_number

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import scipy.sparse as sp

from brian2 import (
    Clock,
    Function,
    Network,
    NetworkOperation,
    NeuronGroup,
    SpikeMonitor,
    Synapses,
    ms,
    prefs,
    second,
)

from dishbrain.mea import MEA, MEAConfig


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

HOMEOSTASIS_CODE = """
r_post = rate_est_post * exp((t_last_post - t) / tau_homeo)
w = clip(w * (1 + homeo_rate * (homeo_target - r_post) / homeo_target), w_min, w_max)
"""

STATIC_SYNAPSE_MODEL = "w : 1 (constant)"

# Excitatory inputs of LTS neurons facilitate, the others depress; inhibitory ones are static.
STATIC_ON_PRE = """
g_rel = exc_pre * w * (eff_dep_pre + facil_post * (eff_fac_pre - eff_dep_pre))
ge_post += g_rel
gn_post += nmda_ratio * g_rel
gi_post += (1 - exc_pre) * w
"""

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
# Cell types: Izhikevich 2004 (Fig. 2 parameters) and the r-scheme of Izhikevich 2003.
# ---------------------------------------------------------------------------------------------

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

# Stream ids of the counter-based random number generator.
_STREAM_NOISE, _STREAM_PULSES, _STREAM_FIRST_PULSE = 1, 2, 3
_MAX_SEED = 2**27

SPIKE_RECORD_DTYPE = np.dtype([("t_ms", "<f8"), ("neuron", "<i4")])
# 2: the recurrent synapses are two objects (culture_synapses_ee, culture_synapses_static);
# version 1 had one (culture_synapses).
SAVE_FORMAT_VERSION = 2

# ---------------------------------------------------------------------------------------------
# Counter-based random numbers (SplitMix64 finaliser; Steele, Lea & Flood 2014) as Brian2 functions
# ---------------------------------------------------------------------------------------------

_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLD, _IDX = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03)


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


def _hash64(key, index, step) -> np.ndarray:
    with np.errstate(over="ignore"):
        k = np.asarray(key).astype(np.uint64)
        s = np.asarray(step).astype(np.uint64)
        idx = np.atleast_1d(np.asarray(index)).astype(np.uint64)
        z = _mix64(k * _GOLD + s)
        return _mix64(z + idx * _IDX)


def hash_uniform_np(key, index, step) -> np.ndarray:
    """Uniform in (0, 1), a pure function of (key, index, step)."""
    z = _hash64(key, index, step)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def hash_normal_np(key, index, step) -> np.ndarray:
    """Approximately standard normal (Irwin-Hall sum of four 16-bit uniforms), mean 0, sd 1."""
    z = _hash64(key, index, step)
    m = np.uint64(0xFFFF)
    s = ((z & m) + ((z >> np.uint64(16)) & m) + ((z >> np.uint64(32)) & m)
         + (z >> np.uint64(48))).astype(np.float64) + 2.0
    return (s / 65536.0 - 2.0) * 1.7320508075688772


_CYTHON_HASH = """
cdef inline unsigned long long _mix64(unsigned long long z):
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)

cdef inline unsigned long long _hash64(long long key, long long index, long long step):
    cdef unsigned long long z = _mix64(<unsigned long long>key * 0x9E3779B97F4A7C15ULL
                                       + <unsigned long long>step)
    return _mix64(z + <unsigned long long>index * 0xD1B54A32D192ED03ULL)
"""
_CYTHON_UNIFORM = _CYTHON_HASH + """
cdef double _hash_uniform(long long key, long long index, long long step):
    return ((_hash64(key, index, step) >> 11) + 0.5) * (1.0 / 9007199254740992.0)
"""
_CYTHON_NORMAL = _CYTHON_HASH.replace("_mix64", "_mix64n").replace("_hash64", "_hash64n") + """
cdef double _hash_normal(long long key, long long index, long long step):
    cdef unsigned long long z = _hash64n(key, index, step)
    cdef double s = <double>((z & 0xFFFFULL) + ((z >> 16) & 0xFFFFULL) + ((z >> 32) & 0xFFFFULL)
                             + (z >> 48)) + 2.0
    return (s / 65536.0 - 2.0) * 1.7320508075688772
"""


def _make_function(pyfunc, cython_code: str, name: str) -> Function:
    f = Function(pyfunc, arg_units=[1, 1, 1], return_unit=1,
                 arg_types=["integer", "integer", "integer"], return_type="float",
                 stateless=True)
    f.implementations.add_implementation("cython", code=cython_code, name=name)
    return f


HASH_UNIFORM = _make_function(hash_uniform_np, _CYTHON_UNIFORM, "_hash_uniform")
HASH_NORMAL = _make_function(hash_normal_np, _CYTHON_NORMAL, "_hash_normal")


def _stream_key(seed: int, stream: int) -> int:
    return seed * 8 + stream


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CultureConfig(Config):
    """Every parameter of the simulated culture, validated on construction.

    Units are in the field names. Synaptic conductances are per ms (the Izhikevich equation is
    dv/dt in mV/ms with unit capacitance, so g [1/ms] times a driving force [mV] is a drive in
    mV/ms); the noise current is in mV, i.e. mV/ms of drive like Izhikevich 2003's input I.
    """

    n_neurons: int = 1000
    # Cortex and cortical cultures: ~80% excitatory (Braitenberg & Schuz 1998; Marom & Shahaf 2002).
    exc_fraction: float = 0.8
    # Fractions of RS, IB, CH among excitatory neurons: RS dominate, IB (layer 5) and CH are
    # minorities (Connors & Gutnick 1990, Trends Neurosci 13:99; Izhikevich 2004).
    exc_type_fractions: tuple[float, float, float] = (0.7, 0.2, 0.1)
    # Fractions of FS, LTS among inhibitory neurons (PV vs SST-like; Rudy et al. 2011).
    inh_type_fractions: tuple[float, float] = (0.6, 0.4)
    # Width of the band of Izhikevich's r around each type's canonical value (0: no heterogeneity).
    heterogeneity: float = 0.2

    # Inputs per neuron (fixed in-degree, so dynamics do not change with n_neurons).
    exc_in_degree: int = 80
    inh_in_degree: int = 20
    # Length scale of the exp(-d / L) connection probability.
    connection_length_um: float = 200.0
    # Two-module culture (0: one dish-wide network). Neurons within this distance (um, along x)
    # of the sensory electrodes' columns form a "sensory" module, the rest a "motor" module, and a
    # synapse between the modules is cross_module_factor times as likely as one within a module
    # at the same distance (in-degrees stay fixed, so a module with fewer excitatory neurons than
    # exc_in_degree must still draw inputs from the other). The in-vitro counterpart:
    # compartmentalised cultures whose populations are linked only through axon channels (Pan et
    # al. 2015, Front Neurosci 9:2; Yamamoto et al. 2018, Sci Adv 4:eaau4914).
    sensory_module_um: float = 0.0
    cross_module_factor: float = 1.0
    # Unmyelinated cortical axons: 0.1-0.5 m/s (= um/ms x 1000); 0.3 m/s = 300 um/ms.
    conduction_velocity_um_per_ms: float = 300.0
    # Synaptic transmission delay added to the axonal delay (~0.5-1 ms).
    synaptic_delay_ms: float = 1.0
    # Conductance decay and reversal: AMPA 5 ms / 0 mV, GABA_A 6 ms / -70 mV
    # (Izhikevich & Edelman 2008).
    tau_exc_ms: float = 5.0
    tau_inh_ms: float = 6.0
    # NMDA: peak conductance relative to AMPA at the same synapse, decay, and the Mg2+ block
    # ((v+80)/60)^2 / (1 + ((v+80)/60)^2) of Izhikevich & Edelman 2008 (they use ratio 1 and
    # 150 ms); the slow excitation sustains the network bursts of cortical cultures, which
    # depend on NMDA receptors (e.g. Robinson et al. 1993, J Neurophysiol 70:1606).
    nmda_ratio: float = 0.4
    tau_nmda_ms: float = 100.0
    e_exc_mv: float = 0.0
    e_inh_mv: float = -70.0

    # Mean initial peak conductances (per ms) per connection class (pre->post), each synapse
    # drawn uniformly within +-weight_jitter of the mean. Tuned (with the noise and NMDA ratio)
    # for ~1-1.7 Hz mean firing with ~14-22 network bursts/min of ~200 ms (`culture_check`).
    # 0.035 /ms at rest (-65 mV) is a ~2.3 mV/ms drive decaying in 5 ms: a unitary EPSP of
    # ~1 mV (cortex ~0.5-1 mV, Song et al. 2005, PLoS Biol 3:e68).
    g_ee_per_ms: float = 0.035
    g_ei_per_ms: float = 0.02
    g_ie_per_ms: float = 0.1
    g_ii_per_ms: float = 0.1
    weight_jitter: float = 0.5
    # Upper bound of E->E conductances under STDP (Song et al. 2000: hard bounds [0, gmax]).
    g_ee_max_per_ms: float = 0.08

    # Short-term plasticity (Tsodyks & Markram 1997; Tsodyks, Uziel & Markram 2000).
    stp_enabled: bool = True
    stp_dep_u: float = 0.5
    stp_dep_tau_rec_ms: float = 800.0
    stp_fac_u: float = 0.04
    stp_fac_tau_rec_ms: float = 100.0
    stp_fac_tau_facil_ms: float = 1000.0

    # Pair-based STDP on E->E (Song, Miller & Abbott 2000; Bi & Poo 1998).
    stdp_enabled: bool = True
    stdp_tau_plus_ms: float = 20.0
    stdp_tau_minus_ms: float = 20.0
    # A+ as a fraction of g_ee_max_per_ms (Song et al. 2000: 0.005), and A- / A+ (1.05).
    stdp_a_plus: float = 0.005
    stdp_a_minus_ratio: float = 1.05
    # Tagged STDP (synaptic tagging and capture; Frey & Morris 1997, Nature 385:533; Redondo &
    # Morris 2011, Nat Rev Neurosci 12:17; the eligibility trace of Izhikevich 2007, Cereb Cortex
    # 17:2443): with stdp_tagging on, the pair-STDP increments above do not change the weight at
    # once but accumulate in a per-synapse tag that decays with tag_tau_ms (~1 s: Yagishita et
    # al. 2014, Science 345:1616; Gerstner et al. 2018, Front Neural Circuits 12:53). A tag is
    # captured into the weight (w += capture_gain * tag, then the tag is cleared) when the
    # synapse's presynaptic neuron fires at high frequency: its spike trace (+1 per spike,
    # decay capture_tau_ms) reaching capture_threshold, e.g. 6 spikes within ~100 ms (>= ~60 Hz),
    # the signature of a tetanus (Bliss & Lomo 1973: high-frequency trains induce LTP; presynaptic
    # induction: Castillo 2012, Cold Spring Harb Perspect Biol 4:a005728). Everything the rule
    # reads is local to the synapse: its two neurons' spike times and the presynaptic rate.
    stdp_tagging: bool = False
    tag_tau_ms: float = 1000.0
    capture_threshold: float = 6.0
    capture_tau_ms: float = 100.0
    capture_gain: float = 1.0

    # Homeostatic synaptic scaling (Turrigiano et al. 1998): slow (rate estimated over a minute,
    # weights scaled by at most ~0.2% per second), to hold the firing rate against STDP's drift.
    homeostasis_enabled: bool = True
    homeostasis_target_hz: float = 1.5
    homeostasis_tau_s: float = 60.0
    homeostasis_interval_ms: float = 1000.0
    homeostasis_rate: float = 0.002

    # Background current redrawn every noise_interval_ms (mean and sd, mV/ms drive), the
    # "thalamic" noise of Izhikevich 2003 (sd 5 / 2 for E / I there, with all-to-all coupling).
    # Alone it makes RS neurons fire at < 0.1 Hz and LTS neurons at ~3 Hz; the recurrent network
    # turns this into sparse firing with network bursts.
    noise_interval_ms: float = 1.0
    noise_exc_mean_mv: float = 0.0
    noise_exc_sigma_mv: float = 2.4
    noise_inh_mean_mv: float = 0.0
    noise_inh_sigma_mv: float = 1.0

    # Membrane kick (mV) per mV of pulse amplitude at coupling 1: a 75 mV pulse kicks a neuron at
    # 50 um (coupling 0.5) by ~49 mV and one at 100 um (coupling 0.2) by ~20 mV, enough to fire an
    # RS neuron from rest (its threshold is ~15 mV above rest for a brief kick).
    stim_gain: float = 1.3

    dt_ms: float = 0.5
    # Spikes are appended to the spike file every this much simulated time.
    spike_file_chunk_ms: float = 1000.0

    def __post_init__(self) -> None:
        for name in ("exc_type_fractions", "inh_type_fractions"):   # lists from JSON / TOML
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, tuple(getattr(self, name)))
        check_int(self, "n_neurons", self.n_neurons, 10, 1_000_000, numpy=True)
        check_number(self, "exc_fraction", self.exc_fraction, 0.5, 0.95, numpy=True)
        for name, n in (("exc_type_fractions", 3), ("inh_type_fractions", 2)):
            value = getattr(self, name)
            if not (isinstance(value, tuple) and len(value) == n
                    and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                            and 0 <= x <= 1 for x in value)
                    and abs(sum(value) - 1.0) < 1e-9):
                raise ValueError(f"CultureConfig.{name} must be a tuple of {n} fractions in "
                                 f"[0, 1] summing to 1, got {value!r}")
        check_number(self, "heterogeneity", self.heterogeneity, 0.0, 1.0, numpy=True)
        check_int(self, "exc_in_degree", self.exc_in_degree, 0, 10_000, numpy=True)
        check_int(self, "inh_in_degree", self.inh_in_degree, 0, 10_000, numpy=True)
        check_number(self, "connection_length_um", self.connection_length_um, 1.0, 1e5, numpy=True)
        check_number(self, "sensory_module_um", self.sensory_module_um, 0.0, 1e5, numpy=True)
        check_number(self, "cross_module_factor", self.cross_module_factor, 0.0, 1.0, lo_open=True,
                     numpy=True)
        check_number(self, "conduction_velocity_um_per_ms", self.conduction_velocity_um_per_ms,
                     10.0, 1e5, numpy=True)
        check_number(self, "synaptic_delay_ms", self.synaptic_delay_ms, 0.0, 20.0, numpy=True)
        check_number(self, "tau_exc_ms", self.tau_exc_ms, 0.5, 100.0, numpy=True)
        check_number(self, "tau_inh_ms", self.tau_inh_ms, 0.5, 200.0, numpy=True)
        check_number(self, "nmda_ratio", self.nmda_ratio, 0.0, 10.0, numpy=True)
        check_number(self, "tau_nmda_ms", self.tau_nmda_ms, 1.0, 1000.0, numpy=True)
        check_number(self, "e_exc_mv", self.e_exc_mv, -20.0, 60.0, numpy=True)
        check_number(self, "e_inh_mv", self.e_inh_mv, -100.0, -50.0, numpy=True)
        for name in ("g_ee_per_ms", "g_ei_per_ms", "g_ie_per_ms", "g_ii_per_ms"):
            check_number(self, name, getattr(self, name), 0.0, 10.0, numpy=True)
        check_number(self, "weight_jitter", self.weight_jitter, 0.0, 1.0, numpy=True)
        check_number(self, "g_ee_max_per_ms", self.g_ee_max_per_ms, 0.0, 10.0, numpy=True)
        if self.g_ee_max_per_ms < self.g_ee_per_ms:
            raise ValueError(f"CultureConfig.g_ee_max_per_ms must be in [g_ee_per_ms="
                             f"{self.g_ee_per_ms}, 10.0], got {self.g_ee_max_per_ms!r}")
        for name in ("stp_enabled", "stdp_enabled", "homeostasis_enabled", "stdp_tagging"):
            check_bool(self, name, getattr(self, name))
        check_number(self, "stp_dep_u", self.stp_dep_u, 1e-3, 1.0, numpy=True)
        check_number(self, "stp_dep_tau_rec_ms", self.stp_dep_tau_rec_ms, 1.0, 1e5, numpy=True)
        check_number(self, "stp_fac_u", self.stp_fac_u, 1e-3, 1.0, numpy=True)
        check_number(self, "stp_fac_tau_rec_ms", self.stp_fac_tau_rec_ms, 1.0, 1e5, numpy=True)
        check_number(self, "stp_fac_tau_facil_ms", self.stp_fac_tau_facil_ms, 1.0, 1e5, numpy=True)
        check_number(self, "stdp_tau_plus_ms", self.stdp_tau_plus_ms, 1.0, 1000.0, numpy=True)
        check_number(self, "stdp_tau_minus_ms", self.stdp_tau_minus_ms, 1.0, 1000.0, numpy=True)
        check_number(self, "stdp_a_plus", self.stdp_a_plus, 0.0, 1.0, numpy=True)
        check_number(self, "stdp_a_minus_ratio", self.stdp_a_minus_ratio, 0.0, 10.0, numpy=True)
        check_number(self, "tag_tau_ms", self.tag_tau_ms, 1.0, 1e6, numpy=True)
        check_number(self, "capture_threshold", self.capture_threshold, 1.0, 1000.0, numpy=True)
        check_number(self, "capture_tau_ms", self.capture_tau_ms, 1.0, 1e5, numpy=True)
        check_number(self, "capture_gain", self.capture_gain, 0.0, 1e4, numpy=True)
        check_number(self, "homeostasis_target_hz", self.homeostasis_target_hz, 0.01, 100.0,
                     numpy=True)
        check_number(self, "homeostasis_tau_s", self.homeostasis_tau_s, 0.1, 1e6, numpy=True)
        check_number(self, "homeostasis_interval_ms", self.homeostasis_interval_ms, 1.0, 1e7,
                     numpy=True)
        check_number(self, "homeostasis_rate", self.homeostasis_rate, 0.0, 1.0, numpy=True)
        check_number(self, "noise_interval_ms", self.noise_interval_ms, 0.01, 100.0, numpy=True)
        for name in ("noise_exc_mean_mv", "noise_inh_mean_mv"):
            check_number(self, name, getattr(self, name), -100.0, 100.0, numpy=True)
        for name in ("noise_exc_sigma_mv", "noise_inh_sigma_mv"):
            check_number(self, name, getattr(self, name), 0.0, 100.0, numpy=True)
        check_number(self, "stim_gain", self.stim_gain, 0.0, 100.0, numpy=True)
        check_number(self, "dt_ms", self.dt_ms, 0.01, 1.0, numpy=True)
        check_number(self, "spike_file_chunk_ms", self.spike_file_chunk_ms, 1.0, 1e7, numpy=True)
        for name in ("noise_interval_ms", "homeostasis_interval_ms", "spike_file_chunk_ms"):
            ratio = getattr(self, name) / self.dt_ms
            if abs(ratio - round(ratio)) > 1e-6:
                raise ValueError(f"CultureConfig.{name} must be a multiple of dt_ms="
                                 f"{self.dt_ms}, got {getattr(self, name)!r}")

    @property
    def n_exc(self) -> int:
        return int(round(self.n_neurons * self.exc_fraction))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------------------------------------
# Structure: positions, cell types, parameters and wiring (pure numpy, reusable by any backend)
# ---------------------------------------------------------------------------------------------

@dataclass
class CultureStructure:
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
                   cross_factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """k presynaptic partners per postsynaptic neuron, without replacement, p ~ exp(-d/L)
    (times cross_factor between neurons of different modules, where modules are given).

    Gumbel top-k: adding Gumbel noise to log-weights and keeping the k largest is exactly
    sequential sampling without replacement proportional to the weights. Self-connections are
    excluded (post indices are global; pre indices are pre_offset + position in pre_pos).
    """
    n_post, n_pre = len(post_pos), len(pre_pos)
    pre_out, post_out = [], []
    if k == 0 or n_pre == 0:
        return np.empty(0, np.int32), np.empty(0, np.int32)
    block = max(1, 2_000_000 // n_pre)
    for start in range(0, n_post, block):
        p = post_pos[start:start + block]
        d = np.hypot(p[:, None, 0] - pre_pos[None, :, 0], p[:, None, 1] - pre_pos[None, :, 1])
        keys = -d / length_um + rng.gumbel(size=d.shape)
        if post_module is not None and cross_factor != 1.0:
            keys += np.log(cross_factor) * (post_module[start:start + block, None]
                                            != pre_module[None, :])
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
    pre_e, post_e = _sample_inputs(pos, pos[:n_exc], 0, config.exc_in_degree,
                                   config.connection_length_um, rng, module, module[:n_exc],
                                   config.cross_module_factor)
    pre_i, post_i = _sample_inputs(pos, pos[n_exc:], n_exc, config.inh_in_degree,
                                   config.connection_length_um, rng, module, module[n_exc:],
                                   config.cross_module_factor)
    pre = np.concatenate([pre_e, pre_i])
    post = np.concatenate([post_e, post_i])
    order = np.lexsort((post, pre))
    pre, post = pre[order], post[order]

    mean_w = np.where(is_exc[pre],
                      np.where(is_exc[post], config.g_ee_per_ms, config.g_ei_per_ms),
                      np.where(is_exc[post], config.g_ie_per_ms, config.g_ii_per_ms))
    w = mean_w * (1.0 + config.weight_jitter * rng.uniform(-1.0, 1.0, len(pre)))
    ee = is_exc[pre] & is_exc[post]
    w[ee] = np.minimum(w[ee], config.g_ee_max_per_ms)
    dist = np.hypot(*(pos[pre] - pos[post]).T)
    delay = config.synaptic_delay_ms + dist / config.conduction_velocity_um_per_ms
    # Start each neuron just below its resting potential (the lower root of 0.04 v^2 + (5 - b) v
    # + 140 = 0, with u = b v), so that a new culture does not open with a synchronous volley.
    v_rest = (-(5.0 - b) - np.sqrt((5.0 - b) ** 2 - 4 * 0.04 * 140.0)) / (2 * 0.04)
    v0 = v_rest - rng.uniform(0.0, 3.0, n)
    return CultureStructure(pos, is_exc, cell_type, a, b, c, d, pre, post, w, delay, v0)


# ---------------------------------------------------------------------------------------------
# The Brian2 network (runtime target; the same equations serve a standalone backend)
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
    return {
        "tau_exc": cfg.tau_exc_ms * ms,
        "tau_inh": cfg.tau_inh_ms * ms,
        "tau_nmda": cfg.tau_nmda_ms * ms,
        "nmda_ratio": float(cfg.nmda_ratio),
        "v_floor": V_FLOOR_MV * mV,
        "v_ceiling": 1e6 * mV,
        "E_exc": cfg.e_exc_mv * mV,
        "E_inh": cfg.e_inh_mv * mV,
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
        "tau_capture": cfg.capture_tau_ms * ms,
        "capture_threshold": float(cfg.capture_threshold),
        "capture_gain": float(cfg.capture_gain),
        "w_min": 0.0,
        "w_max": float(cfg.g_ee_max_per_ms),
        "tau_homeo": cfg.homeostasis_tau_s * second,
        "homeo_target": cfg.homeostasis_target_hz * Hz,
        "homeo_rate": float(cfg.homeostasis_rate),
        "stim_gain": float(cfg.stim_gain),
        "noise_key": _stream_key(seed, _STREAM_NOISE),
        "stim_key": _stream_key(seed, _STREAM_PULSES),
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

        tagging = cfg.stdp_tagging and cfg.stdp_enabled
        G = NeuronGroup(n, NEURON_VARIABLES + (TAGGING_NEURON_VARIABLES if tagging else ""),
                        threshold=NEURON_THRESHOLD,
                        reset=(TAGGING_NEURON_RESET if tagging else "") + NEURON_RESET,
                        clock=self.clock, name="culture_neurons")
        G.run_regularly(NEURON_UPDATE, clock=self.clock, when="groups",
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
        S_ee = Synapses(G, G, model=TAGGED_EE_SYNAPSE_MODEL if tagging else EE_SYNAPSE_MODEL,
                        on_pre=TAGGED_EE_ON_PRE if tagging else EE_ON_PRE,
                        on_post=TAGGED_EE_ON_POST if tagging else EE_ON_POST,
                        clock=self.clock, name="culture_synapses_ee")
        S_st = Synapses(G, G, model=STATIC_SYNAPSE_MODEL, on_pre=STATIC_ON_PRE,
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


def warm_cache(verbose: bool = True) -> float:
    """Compile every code path of the model into Brian2's Cython cache; returns seconds taken.

    The first culture in a fresh environment spends ~30-60 s compiling (later processes reuse
    the cache and start in well under a second). Call this at install time or before a session,
    so that the wait comes with a message instead of silently in front of a user.
    """
    import time
    t0 = time.perf_counter()
    if verbose:
        print("dishbrain: compiling the culture model (first time only, up to a minute)...",
              flush=True)
    culture = Culture(CultureConfig(n_neurons=100, homeostasis_interval_ms=1.0), seed=0)
    culture.stimulate([0], 75.0, 1000.0, 1.0, random_timing=True)
    culture.run(2.0, tick=lambda t, n: None, tick_ms=1.0)
    culture.record(1.0)
    import tempfile
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
    if _codegen_target() != "cython":
        return None
    import hashlib
    import brian2
    from brian2.codegen.runtime.cython_rt.extension_manager import get_cython_cache_dir

    digest = hashlib.sha1(Path(__file__).read_bytes() + brian2.__version__.encode()).hexdigest()
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
# The culture
# ---------------------------------------------------------------------------------------------

TickCallback = Callable[[float, np.ndarray], "bool | None"]


def check_run_arguments(config: "CultureConfig", duration_ms, tick, tick_ms) -> None:
    """The checks of `run` shared by every backend: errors name the argument and the allowed values."""
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
                or not 0 <= seed < _MAX_SEED:
            raise ValueError(f"seed must be an integer in [0, {_MAX_SEED - 1}], got {seed!r}")
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
            u = hash_uniform_np(_stream_key(self.seed, _STREAM_FIRST_PULSE), idx,
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
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @classmethod
    def load(cls, path: str | Path, spike_file: str | Path | None = None) -> "Culture":
        """Rebuild a culture saved with ``save``; it continues exactly where it stopped.

        ``spike_file``: where to stream spikes from now on (appended to, not truncated).
        """
        with np.load(Path(path), allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        meta = json.loads(bytes(data["meta_json"]).decode())
        version = meta.get("format_version")
        if version != SAVE_FORMAT_VERSION:
            hint = (" (saved by an older dishbrain, before the synapses were split into E->E "
                    "and static objects; rerun to make a new one)" if version == 1 else "")
            raise ValueError(f"{path}: unsupported culture file version {version!r}, this "
                             f"dishbrain reads version {SAVE_FORMAT_VERSION}{hint}")
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
