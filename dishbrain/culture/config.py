"""CultureConfig: every parameter of the simulated culture, with its source, checked when built.

The model these parameters drive is described in `dishbrain.culture.model` (equations, synapses,
plasticity, noise, stimulation) and `dishbrain.culture.structure` (cell types, placement, wiring,
delays). Each biological parameter's source is cited at its field: Izhikevich 2003 (IEEE TNN
14:1569) and 2004 (IEEE TNN 15:1063) for the neurons; Izhikevich & Edelman 2008 (PNAS 105:3593)
for the conductances; Tsodyks & Markram 1997 (PNAS 94:719) and Tsodyks, Uziel & Markram 2000
(J Neurosci 20:RC50) for short-term plasticity; Song, Miller & Abbott 2000 (Nat Neurosci 3:919)
and Bi & Poo 1998 (J Neurosci 18:10464) for STDP; Frey & Morris 1997 (Nature 385:533) for tagging
and capture; Turrigiano et al. 1998 (Nature 391:892) for homeostatic scaling.

Pure Python and numpy (no Brian2), so a config can be built and checked cheaply, e.g. before a
command line goes on to the slow part.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from envs.config import Config, check_bool, check_choice, check_int, check_number

#: CultureConfig.stdp_weight_dependence: Song et al. 2000 / van Rossum, Bi & Turrigiano 2000.
STDP_WEIGHT_DEPENDENCES = ("additive", "multiplicative")
TAG_RULES = ("stdp", "hebbian", "covariance", "conditional")
#: CultureConfig.motor_competition_groups: each value's group of each quadrant (top-left,
#: top-right, bottom-left, bottom-right: dishbrain.mea.REGION_NAMES).
MOTOR_COMPETITION_GROUPS = {"quadrants": (1, 2, 3, 4), "diagonals": (1, 2, 2, 1),
                            "halves": (1, 1, 2, 2), "sides": (1, 2, 1, 2)}
#: CultureConfig.motor_module_scope: which neurons the motor groups hold (entries 29-29d).
MOTOR_MODULE_SCOPES = ("motor", "dish", "feedforward")


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
    # Competing motor regions (issue 17, entries 27-27c; 1: off, the default). An inhibitory
    # neuron in one of the four motor quadrants (``dishbrain.mea``; a neuron belongs to the
    # region of its nearest electrode) draws its excitatory inputs from the quadrants of the
    # *other* competing groups (motor_competition_groups) this many times as likely as distance
    # alone would make them (in-degrees stay fixed): long
    # excitatory axons onto the interneurons of the other regions, so that a quadrant's activity
    # inhibits the others (feedforward lateral inhibition, the circuit of winner-take-all
    # competition: e.g. Pouille & Scanziani 2001, Science 293:1159, for feedforward inhibition;
    # Coultrip, Granger & Lynch 1992, Neural Netw 5:47, for competition by lateral inhibition).
    # The groups compete symmetrically, so the culture is not told which region moves the
    # paddle which way. In vitro this would be a patterned culture whose motor
    # areas are linked by axon channels onto one another's interneurons, as in the two-module
    # cultures above; a modelling assumption, not a measured property of a plain culture.
    # Measured (docs/learning.md, 27-27c): it decorrelates the quadrants at 100 ms, not the up
    # and the down regions' counts over a second (network bursts recruit every group).
    motor_competition_factor: float = 1.0
    # Which quadrants compete (entry 27c): "quadrants", each with the other three; or the
    # quadrants in two groups of two that compete with each other, a group's own two not:
    # "diagonals" (top-left + bottom-right against top-right + bottom-left: the dishbrain
    # layout's pairs), "halves" (top against bottom: the vertical layouts'), "sides" (left
    # against right: the horizontal layouts'). Symmetric between the groups, so the culture is
    # still not told which group pushes which way.
    motor_competition_groups: str = "quadrants"
    # Modular motor regions (issue 17, entry 29; 1: off, the default). A synapse between neurons
    # of two different motor groups (motor_competition_groups; neurons nearest no motor
    # electrode, i.e. the sensory columns and any motor gap, belong to no group and connect as
    # distance alone makes them) is this factor times as likely as one within a group at the
    # same distance (in-degrees stay fixed): every group a module of its own, linked to the
    # others sparsely and through the sensory hub. With motor_competition_factor as well, an
    # interneuron's excitatory inputs from the competing groups carry both factors. In vitro:
    # micropatterned modular cultures, whose modules burst partly on their own (Yamamoto et al.
    # 2018, Sci Adv 4:eaau4914; Shein-Idelson et al. 2011, Front Neuroeng 4:10); a modelling
    # choice, not a property of DishBrain's plain cultures.
    motor_module_factor: float = 1.0
    # Which neurons the motor groups hold (entry 29b): "motor", the neurons nearest a motor
    # electrode (the rest, the sensory columns and any gap, a hub linked freely to all); "dish",
    # every neuron, in the group of its nearest motor electrode (no hub: the sensory columns are
    # split between the groups); "feedforward" (entry 29d), the groups of "motor", and the hub
    # projects freely onto them while they project back onto it as sparsely as onto each other
    # (motor_module_factor): directional links from a sensory compartment to motor ones, as axon
    # diodes make in vitro (Peyrin et al. 2011, Lab Chip 11:3663; Forro et al. 2018, Biosens
    # Bioelectron 122:75). Read by motor_module_factor and motor_competition_factor.
    motor_module_scope: str = "motor"
    # The hub's own recurrent excitation (entry 29e; 1: unchanged): the initial E->E weights
    # among the neurons nearest no motor electrode (the sensory columns; "motor_module_scope"'s
    # hub) are scaled by this factor, so that the input layer relays the stimulation without
    # bursting on its own. A modelling choice (a weakly recurrent input compartment), stated.
    hub_recurrence_factor: float = 1.0
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
    # GABA_B (issue 17, entry 31; 0: off, the default, and the model is the one without it): each
    # inhibitory synapse also opens a slow conductance gaba_b_ratio times its GABA_A increment,
    # decaying with tau_gaba_b_ms, reversing at e_gaba_b_mv (the fourth conductance of
    # Izhikevich & Edelman 2008, PNAS 105:3593: 150 ms, -90 mV; single-exponential, without
    # the G-protein cascade that makes real GABA_B responses favour interneuron bursts, Destexhe
    # & Sejnowski 1995, PNAS 92:9515). Inhibition that outlasts a volley by a hundred ms or more.
    gaba_b_ratio: float = 0.0
    tau_gaba_b_ms: float = 150.0
    e_gaba_b_mv: float = -90.0

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
    # Weight dependence of STDP. "additive" (Song et al. 2000, the default): both steps fixed, so
    # under uncorrelated firing the weights split towards the hard bounds (entry 4 of
    # docs/learning.md: 50 % of E->E synapses at 0 after 20 minutes). "multiplicative" (van
    # Rossum, Bi & Turrigiano 2000, J Neurosci 20:8812): the LTP step stays A+, independent of
    # w, the LTD step becomes A- * w / g_ee_per_ms, i.e. proportional to the weight and equal to
    # the additive one at the initial mean weight (Bi & Poo 1998 measured a relative depression
    # independent of the synapse's initial strength, the relative potentiation falling with it).
    # Uncorrelated pairing then has a stable fixed point w* = g_ee_per_ms * A+ tau+ / (A- tau-)
    # (= g_ee_per_ms / 1.05 at the defaults) and the weights stay unimodal around it. Applies to
    # the tag's LTD term as well when stdp_tagging is on.
    stdp_weight_dependence: str = "additive"
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
    # Bidirectional, frequency-dependent capture (issue 17, Stage 2; acts only with stdp_tagging and
    # stdp_enabled on, like the tags it captures). Beside
    # the high-frequency capture above (LTP after a tetanus, Bliss & Lomo 1973), a tag is
    # captured as depression after low-frequency presynaptic firing (LTD after 1-5 Hz
    # stimulation: Dudek & Bear 1992, PNAS 89:4363; low-frequency stimulation shortly after an
    # induction reverses not-yet-consolidated potentiation, "depotentiation": Staubli & Lynch
    # 1990, Brain Res 513:113; Zhou, Tao & Poo 2003, Science 300:1953): on a presynaptic spike
    # whose neuron's slow trace lf (+1 per spike, decay ltd_capture_tau_ms) is at or above
    # ltd_capture_threshold while its fast trace hf is below ltd_capture_hf_max, the positive
    # part of the tag is removed from the weight (w -= ltd_capture_gain * max(tag, 0)) and the
    # tag is cleared. One presynaptic rate decides the sign, a BCM-like threshold (Bienenstock,
    # Cooper & Munro 1982, J Neurosci 2:32; the frequency-response curve measured by Dudek &
    # Bear 1992: depression at 1-3 Hz, none near 10 Hz, potentiation at >= 50 Hz): sustained
    # firing at low frequency depresses, a tetanus potentiates, sparse firing (lf below
    # ltd_capture_threshold) and firing in between (bursts, ~10-50 Hz) do neither. Local: the
    # synapse's tag and its presynaptic neuron's two spike traces, nothing from the game.
    # Capture of the tag's positive part only (issue 17, entry 12): w += capture_gain * max(tag, 0)
    # at the tetanus, so capture potentiates tagged synapses and never depresses, as in synaptic
    # tagging and capture, where the plasticity-related products a strong tetanus makes are taken
    # up by synapses carrying an LTP tag (Frey & Morris 1997; LTD tags are a separate process:
    # Sajikumar & Frey 2004, Neurobiol Learn Mem 82:12). Off: the signed tag is moved (entry 3).
    capture_positive_only: bool = False
    # Tags written only outside presynaptic high-frequency firing (issue 17, entry 12; a modelling
    # assumption, not a measured property): a pairing writes the tag only while the presynaptic
    # fast trace hf (decayed to the pairing's time) is below tag_hf_max, so a tetanus does not tag
    # the synapses it is about to capture and what it captures is what the preceding seconds
    # wrote. hf < 2 admits regular firing up to ~14 Hz (hf = 1 / (1 - exp(-1 / (f tau))), tau =
    # capture_tau_ms) and the first 2 pulses of a 100 Hz train; hf < 3 up to ~25 Hz and 3 pulses.
    # 0: off (every pairing tags).
    tag_hf_max: float = 0.0
    # What writes the tag (issue 17, entry 12): "stdp", the pair-STDP increments above (windows of
    # ~20 ms, LTP and LTD nearly balanced, so co-activity without a spike-timing order writes
    # almost nothing); "hebbian", co-activity within the NMDA receptor's coincidence window: at a
    # postsynaptic spike the tag grows by A+ times a presynaptic spike trace of time constant
    # tag_hebb_tau_ms (~100 ms: the NMDA current's decay, and the pairing window of LTP
    # induction, Gustafsson et al. 1987, J Neurosci 7:774), with no depression term — tags mark
    # what fired together on the readout's own time scale (its ~100 ms smoothing);
    # "covariance" (entry 13), the Hebbian term less, at each presynaptic spike, A+ tag_hebb_tau
    # times the postsynaptic neuron's own running rate (its homeostasis estimate, tau
    # homeostasis_tau_s): the tag drifts by A+ tau r_pre (r_post - <r_post>), the covariance
    # rule (Sejnowski 1977, J Math Biol 4:303) with a sliding, per-neuron threshold as in BCM
    # (Bienenstock, Cooper & Munro 1982) — a target firing above its own mean while the source
    # fires tags up, below it tags down.
    # "conditional" (entry 34): at each presynaptic spike the tag grows by A+ (h - m), h the
    # postsynaptic neuron's fast trace then (its spikes of the last ~capture_tau_ms, as the
    # postsynaptic depolarisation a presynaptic spike meets in the voltage-based rule of Clopath
    # et al. 2010, Nat Neurosci 13:344) and m, per synapse, the running mean of h over the
    # source's last ~tag_conditional_spikes spikes (m += (h - m) / N; starts at 0): BCM's
    # sliding threshold kept at the synapse and conditional on its source firing, so what the
    # target usually does while this source fires (the geometry of where its input spreads)
    # cancels and the tag marks the target's departure from it. No postsynaptic term.
    tag_rule: str = "stdp"
    tag_hebb_tau_ms: float = 100.0
    tag_conditional_spikes: float = 200.0
    # Tags against their own baseline (entry 13; 0: off). A second per-synapse trace, of time
    # constant tag_baseline_tau_s (~1 min: longer than a rally, shorter than a session), gets
    # every change of the tag scaled by tag_tau / tag_baseline_tau, so its long-run mean is the
    # tag's own; a capture moves tag - baseline into the weight. The part of a tag that every
    # second carries alike (the drive that geometry and bursts give a synapse) is then not
    # captured, only its deviation: on average a capture changes the weight by the covariance of
    # the tag with the trains that capture it. A modelling assumption in the spirit of synaptic
    # metaplasticity (a synapse's own history sets what counts as potentiating: Abraham & Bear
    # 1996, Trends Neurosci 19:126), and the eligibility of Loewenstein & Seung's covariance rule
    # (2006, PNAS 103:15224). Not with ltd_capture.
    tag_baseline_tau_s: float = 0.0
    ltd_capture: bool = False
    # ~1 s: the window over which the firing rate is read (Dudek & Bear's effect depends on the
    # number and frequency of pulses over seconds to minutes; 1 s is the tag's own time scale).
    ltd_capture_tau_ms: float = 1000.0
    # lf >= 3: about 3 or more spikes within the last ~1-2 s (>= ~2-3 Hz sustained), above the
    # culture's mean rate (~1.5 Hz), within Dudek & Bear's 1-5 Hz depression range.
    ltd_capture_threshold: float = 3.0
    ltd_capture_gain: float = 1.0
    # hf < 1.5 at the spike: the previous spike >= ~70 ms before (a regular train below ~9 Hz:
    # hf = 1 / (1 - exp(-1 / (f tau))) with tau = capture_tau_ms), so the first spikes of a
    # tetanus or a burst, whose hf is already >= 1.5 by the second spike, never depress; Dudek &
    # Bear 1992 found depression after 1-3 Hz and no change near 10 Hz.
    ltd_capture_hf_max: float = 1.5

    # Heterosynaptic normalisation of each excitatory neuron's outgoing E->E weights (issue 17,
    # entry 25; off by default): every output_normalization_interval_ms, each presynaptic
    # neuron's E->E weights are scaled by one common factor so that their sum returns to its
    # initial value (then clipped to [0, g_ee_max_per_ms]). A change that every output of a
    # neuron shares (what captured co-activity mostly is: entry 25 measured the push as ~3 % of
    # the motor co-activity at the tags' time scale) is undone, while its outputs' *relative*
    # weights, what one target gained over another, are kept. Competition among a neuron's
    # synapses for a limited pool of resources: multiplicative normalisation of a neuron's
    # weights (von der Malsburg 1973, Kybernetik 14:85), a limit on the summed outgoing weight of
    # each neuron in STDP networks (Fiete et al. 2010, Neuron 65:563), conservation of total
    # synaptic weight by heterosynaptic plasticity (Royer & Pare 2003, Nature 422:518, measured
    # on a neuron's inputs; Chistiakova et al. 2014, Neuroscientist 20:483, review). Applying it
    # to a neuron's outputs is a modelling assumption. Applied after homeostatic scaling (which
    # then only redistributes weight between targets: the total E->E weight is conserved). Acts
    # only with stdp_enabled (the Frozen condition turns it off with the rest of the plasticity).
    output_normalization: bool = False
    output_normalization_interval_ms: float = 1000.0

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
        check_number(self, "motor_competition_factor", self.motor_competition_factor, 1.0,
                     1e4, numpy=True)
        check_choice(self, "motor_competition_groups", self.motor_competition_groups,
                     tuple(MOTOR_COMPETITION_GROUPS))
        check_number(self, "motor_module_factor", self.motor_module_factor, 0.0, 1.0,
                     lo_open=True, numpy=True)
        check_choice(self, "motor_module_scope", self.motor_module_scope, MOTOR_MODULE_SCOPES)
        check_number(self, "hub_recurrence_factor", self.hub_recurrence_factor, 0.0, 1.0,
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
        check_number(self, "gaba_b_ratio", self.gaba_b_ratio, 0.0, 5.0, numpy=True)
        check_number(self, "tau_gaba_b_ms", self.tau_gaba_b_ms, 10.0, 1000.0, numpy=True)
        check_number(self, "e_gaba_b_mv", self.e_gaba_b_mv, -120.0, -60.0, numpy=True)
        for name in ("g_ee_per_ms", "g_ei_per_ms", "g_ie_per_ms", "g_ii_per_ms"):
            check_number(self, name, getattr(self, name), 0.0, 10.0, numpy=True)
        check_number(self, "weight_jitter", self.weight_jitter, 0.0, 1.0, numpy=True)
        check_number(self, "g_ee_max_per_ms", self.g_ee_max_per_ms, 0.0, 10.0, numpy=True)
        if self.g_ee_max_per_ms < self.g_ee_per_ms:
            raise ValueError(f"CultureConfig.g_ee_max_per_ms must be in [g_ee_per_ms="
                             f"{self.g_ee_per_ms}, 10.0], got {self.g_ee_max_per_ms!r}")
        for name in ("stp_enabled", "stdp_enabled", "homeostasis_enabled", "stdp_tagging",
                     "ltd_capture", "capture_positive_only", "output_normalization"):
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
        check_choice(self, "stdp_weight_dependence", self.stdp_weight_dependence,
                     STDP_WEIGHT_DEPENDENCES)
        if self.tag_hf_max != 0.0:
            check_number(self, "tag_hf_max", self.tag_hf_max, 1.0, 1000.0, lo_open=True,
                         numpy=True)
        check_choice(self, "tag_rule", self.tag_rule, TAG_RULES)
        check_number(self, "tag_hebb_tau_ms", self.tag_hebb_tau_ms, 1.0, 1e5, numpy=True)
        check_number(self, "tag_conditional_spikes", self.tag_conditional_spikes, 1.0, 1e6,
                     numpy=True)
        if self.tag_baseline_tau_s != 0.0:
            check_number(self, "tag_baseline_tau_s", self.tag_baseline_tau_s, 0.01, 1e5,
                         numpy=True)
            if self.tag_baseline_tau_s * 1000.0 <= self.tag_tau_ms:
                raise ValueError(f"CultureConfig.tag_baseline_tau_s must be longer than "
                                 f"tag_tau_ms ({self.tag_tau_ms} ms), got "
                                 f"{self.tag_baseline_tau_s!r} s")
            if self.ltd_capture:
                raise ValueError("CultureConfig.tag_baseline_tau_s: not with ltd_capture = true "
                                 "(set one of them off)")
        check_number(self, "ltd_capture_tau_ms", self.ltd_capture_tau_ms, 1.0, 1e6, numpy=True)
        check_number(self, "ltd_capture_threshold", self.ltd_capture_threshold, 0.5, 1000.0,
                     numpy=True)
        check_number(self, "ltd_capture_gain", self.ltd_capture_gain, 0.0, 1e4, numpy=True)
        check_number(self, "ltd_capture_hf_max", self.ltd_capture_hf_max, 1.0, 1000.0,
                     lo_open=True, numpy=True)
        check_number(self, "output_normalization_interval_ms",
                     self.output_normalization_interval_ms, 1.0, 1e7, numpy=True)
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
        for name in ("noise_interval_ms", "homeostasis_interval_ms", "spike_file_chunk_ms",
                     "output_normalization_interval_ms"):
            ratio = getattr(self, name) / self.dt_ms
            if abs(ratio - round(ratio)) > 1e-6:
                raise ValueError(f"CultureConfig.{name} must be a multiple of dt_ms="
                                 f"{self.dt_ms}, got {getattr(self, name)!r}")

    @property
    def n_exc(self) -> int:
        return int(round(self.n_neurons * self.exc_fraction))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
