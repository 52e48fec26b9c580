"""Issue 17's plasticity options on the runtime backend: weight-dependent (multiplicative) STDP
and bidirectional, frequency-dependent capture of tags (`CultureConfig.stdp_weight_dependence`,
`ltd_capture`). The compiled backend runs the same equations (tests/test_culture_standalone.py).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from culture_probes import QUIET, pairings, spike_forcer

from dishbrain.culture import Culture, CultureConfig, model

MULT = dataclasses.replace(QUIET, stdp_weight_dependence="multiplicative")
BIDIR = dataclasses.replace(QUIET, stdp_tagging=True, capture_gain=10.0, ltd_capture=True,
                            ltd_capture_gain=10.0)


def _ee_synapse(c):
    """The first E->E synapse: its index in synapses_ee (0), pre, post and delay (ms)."""
    st = c.structure
    k = int(c._b.ee_index[0])
    return 0, int(st.pre[k]), int(st.post[k]), float(st.delay_ms[k])


def test_options_are_off_by_default_and_leave_the_default_code_unchanged():
    cfg = CultureConfig()
    assert cfg.stdp_weight_dependence == "additive" and not cfg.ltd_capture
    code = model.ee_code(cfg)
    assert code == {"model": model.EE_SYNAPSE_MODEL, "on_pre": model.EE_ON_PRE,
                    "on_post": model.EE_ON_POST, "neuron_variables": "", "neuron_reset": ""}
    tagged = model.ee_code(dataclasses.replace(cfg, stdp_tagging=True))
    assert tagged["on_pre"] == model.TAGGED_EE_ON_PRE
    assert tagged["neuron_reset"] == model.TAGGING_NEURON_RESET
    # ltd_capture without tagging (e.g. the Frozen condition turns tagging off) changes nothing.
    assert model.ee_code(dataclasses.replace(cfg, ltd_capture=True)) == code


@pytest.mark.parametrize("field,value", [("stdp_weight_dependence", "mult"),
                                         ("ltd_capture", 1), ("ltd_capture_threshold", 0.1),
                                         ("ltd_capture_gain", -1.0), ("ltd_capture_hf_max", 1.0),
                                         ("ltd_capture_tau_ms", 0.0)])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CultureConfig(**{field: value})


def _pair(cfg, w_start, order, n_pairs=20, lag=10.0):
    c = Culture(cfg, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    c._b.value(c._b.synapses_ee, "w")[k] = w_start
    c.run(20.0 + 200.0 * n_pairs,
          tick=spike_forcer(c, pairings(c, pre, post, delay, 20.0, n_pairs,
                                         lag if order == "pre_post" else -lag, 200.0)),
          tick_ms=cfg.dt_ms)
    return float(c._b.value(c._b.synapses_ee, "w")[k])


def test_multiplicative_ltd_is_proportional_to_the_weight():
    cfg, n, lag = MULT, 20, 10.0
    step = cfg.stdp_a_plus * cfg.stdp_a_minus_ratio * cfg.g_ee_max_per_ms * np.exp(-lag / 20.0)
    for w0 in (0.02, 0.06):
        w1 = _pair(cfg, w0, "post_pre", n, lag)
        # Each pairing removes the same fraction step / g_ee of the weight.
        assert w1 / w0 == pytest.approx((1 - step / cfg.g_ee_per_ms) ** n, rel=0.01)
    # Additive: the same absolute step whatever the weight.
    assert 0.06 - _pair(QUIET, 0.06, "post_pre", n, lag) == pytest.approx(n * step, rel=0.05)
    assert 0.02 - _pair(QUIET, 0.02, "post_pre", n, lag) == pytest.approx(n * step, rel=0.05)


def test_multiplicative_ltp_does_not_depend_on_the_weight():
    cfg, n, lag = MULT, 20, 10.0
    step = cfg.stdp_a_plus * cfg.g_ee_max_per_ms * np.exp(-lag / cfg.stdp_tau_plus_ms)
    for w0 in (0.02, 0.05):
        assert _pair(cfg, w0, "pre_post", n, lag) - w0 == pytest.approx(n * step, rel=0.05)


def _tagged_culture(cfg):
    """A culture with a positive tag on synapse 0 (5 pre->post pairings); (c, k, pre, tag, t)."""
    c = Culture(cfg, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    # Pairings 400 ms apart: the presynaptic slow trace stays below 3 (1 / (1 - e^-0.4) = 3.0
    # only in the limit), so the pairings themselves do not depress.
    c.run(2000.0, tick=spike_forcer(c, pairings(c, pre, post, delay, 20.0, 5, 10.0, 400.0)),
          tick_ms=cfg.dt_ms)
    tag = float(c._b.value(c._b.synapses_ee, "tag")[k])
    assert tag > 0
    return c, k, pre, delay, tag, 20.0 + 4 * 400.0 + delay + 10.0


def test_low_frequency_presynaptic_firing_captures_the_tag_as_depression():
    cfg = BIDIR
    c, k, pre, delay, tag, t_tag = _tagged_culture(cfg)
    w0 = float(c._b.value(c._b.synapses_ee, "w")[k])
    # 4 Hz (250 ms apart, hf ~1.08 < 1.5): lf = 1, 1.78, 2.39, 2.86, 3.23 (plus what is left
    # of the pairings' spikes) reaches 3 by the 5th spike at the latest; that spike's arrival
    # removes the tag from the weight and clears the tag.
    start = c.t_ms + 100.0
    c.run(1500.0, tick=spike_forcer(c, {start + 250.0 * n: [pre] for n in range(5)}),
          tick_ms=cfg.dt_ms)
    w1 = float(c._b.value(c._b.synapses_ee, "w")[k])
    tags = c._b.value(c._b.synapses_ee, "tag")
    lf = float(c._b.value(c._b.neurons, "lf")[pre])
    assert lf >= cfg.ltd_capture_threshold
    # Depression by gain x the tag, decayed to the arrival of one of the train's spikes.
    lo = cfg.ltd_capture_gain * tag * np.exp(-(start + 1000.0 + delay - t_tag) / cfg.tag_tau_ms)
    hi = cfg.ltd_capture_gain * tag * np.exp(-(start + delay - t_tag) / cfg.tag_tau_ms)
    assert lo * 0.9 <= w0 - w1 <= hi * 1.05
    assert abs(float(tags[k])) < 0.05 * tag


def test_a_tetanus_still_captures_as_potentiation_with_ltd_capture_on():
    cfg = BIDIR
    c, k, pre, delay, tag, t_tag = _tagged_culture(cfg)
    w0 = float(c._b.value(c._b.synapses_ee, "w")[k])
    # 100 Hz: hf >= 1.5 from the 2nd spike, so no depression; the 8th spike captures (entry 3).
    start = c.t_ms + 100.0
    c.run(300.0, tick=spike_forcer(c, {start + 10.0 * n: [pre] for n in range(10)}),
          tick_ms=cfg.dt_ms)
    w1 = float(c._b.value(c._b.synapses_ee, "w")[k])
    expected = cfg.capture_gain * tag * np.exp(-(start + 70.0 - t_tag) / cfg.tag_tau_ms)
    assert w1 - w0 == pytest.approx(expected, rel=0.1)


def test_sparse_or_bursty_presynaptic_firing_neither_depresses_nor_potentiates():
    cfg = BIDIR
    # After 2 s the pairings' part of lf has decayed to ~0.3. Sparse: lf stays < 3; two 50 Hz
    # bursts: lf >= 3 only within the second burst, where hf >= 1.5 (and < 6).
    for spikes in ([0.0, 700.0, 1400.0], [0.0, 20.0, 40.0, 1000.0, 1020.0, 1040.0]):
        c, k, pre, delay, tag, t_tag = _tagged_culture(cfg)
        w0 = float(c._b.value(c._b.synapses_ee, "w")[k])
        start = c.t_ms + 2000.0
        c.run(3600.0, tick=spike_forcer(c, {start + s: [pre] for s in spikes}),
              tick_ms=cfg.dt_ms)
        assert float(c._b.value(c._b.synapses_ee, "w")[k]) == w0
        assert float(c._b.value(c._b.synapses_ee, "tag")[k]) > 0


# -- entry 12: capture of the positive part only, tags gated by the presynaptic rate ----------

POSITIVE = dataclasses.replace(QUIET, stdp_tagging=True, capture_gain=10.0,
                               capture_positive_only=True)


def _tetanus(c, pre, post=None, delay=0.0, start=None, n=10):
    """10 presynaptic spikes at 100 Hz (hf reaches 6 at the 8th: capture), each followed 1 ms
    after its arrival by a postsynaptic spike when `post` is given (pre -> post pairings)."""
    start = c.t_ms + 100.0 if start is None else start
    spikes: dict[float, list[int]] = {}
    for m in range(n):
        spikes.setdefault(start + 10.0 * m, []).append(pre)
        if post is not None:
            spikes.setdefault(start + 10.0 * m + round(delay) + 1.0, []).append(post)
    c.run(300.0, tick=spike_forcer(c, spikes), tick_ms=c.config.dt_ms)
    return start


def test_positive_only_capture_leaves_a_negative_tag_out_of_the_weight():
    for cfg, moves in ((dataclasses.replace(POSITIVE, capture_positive_only=False), True),
                       (POSITIVE, False)):
        c = Culture(cfg, seed=9)
        k, pre, post, delay = _ee_synapse(c)
        # post -> pre pairings: a negative tag.
        c.run(2000.0, tick=spike_forcer(c, pairings(c, pre, post, delay, 20.0, 5, -10.0, 400.0)),
              tick_ms=cfg.dt_ms)
        assert float(c._b.value(c._b.synapses_ee, "tag")[k]) < 0
        w0 = float(c._b.value(c._b.synapses_ee, "w")[k])
        _tetanus(c, pre)
        w1 = float(c._b.value(c._b.synapses_ee, "w")[k])
        assert (w1 < w0 - 1e-6) if moves else (w1 == w0)
        # Either way the capture clears the tag.
        assert abs(float(c._b.value(c._b.synapses_ee, "tag")[k])) < 1e-9


def test_positive_only_capture_potentiates_by_the_positive_tag():
    c, k, pre, delay, tag, t_tag = _tagged_culture(POSITIVE)
    w0 = float(c._b.value(c._b.synapses_ee, "w")[k])
    start = _tetanus(c, pre)
    expected = POSITIVE.capture_gain * tag * np.exp(-(start + 70.0 - t_tag) / POSITIVE.tag_tau_ms)
    assert float(c._b.value(c._b.synapses_ee, "w")[k]) - w0 == pytest.approx(expected, rel=0.1)


def test_gated_tags_capture_what_came_before_the_tetanus_not_the_tetanus_itself():
    gains = {}
    for gate in (0.0, 2.0):
        cfg = dataclasses.replace(POSITIVE, tag_hf_max=gate)
        c, k, pre, delay, tag, t_tag = _tagged_culture(cfg)
        post = int(c.structure.post[int(c._b.ee_index[0])])
        w0 = float(c._b.value(c._b.synapses_ee, "w")[k])
        start = _tetanus(c, pre, post, delay)
        old = cfg.capture_gain * tag * np.exp(-(start + 70.0 - t_tag) / cfg.tag_tau_ms)
        gains[gate] = (float(c._b.value(c._b.synapses_ee, "w")[k]) - w0, old)
    (ungated, old), (gated, _) = gains[0.0], gains[2.0]
    # Ungated, the tetanus's own pre -> post pairings add to the captured tag; gated, only its
    # first two pulses (hf < 2) may, so most of that addition is gone.
    assert ungated > old * 1.5
    assert gated >= old * 0.9
    assert ungated - gated > 0.6 * (ungated - old)


@pytest.mark.parametrize("field,value", [("capture_positive_only", 1), ("tag_hf_max", 0.5),
                                         ("tag_hf_max", -1.0), ("tag_rule", "rate"),
                                         ("tag_hebb_tau_ms", 0.0)])
def test_entry_12_options_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CultureConfig(**{field: value})


def test_entry_12_options_change_only_the_tagged_code():
    cfg = CultureConfig()
    assert model.ee_code(dataclasses.replace(cfg, capture_positive_only=True, tag_hf_max=3.0)) \
        == model.ee_code(cfg)
    tagged = dataclasses.replace(cfg, stdp_tagging=True)
    assert model.ee_code(dataclasses.replace(tagged, tag_hf_max=0.0)) == model.ee_code(tagged)


def test_hebbian_tags_mark_co_activity_within_the_nmda_window_whatever_the_order_of_a_pair():
    cfg = dataclasses.replace(POSITIVE, tag_rule="hebbian")
    tags = {}
    for lag in (50.0, -50.0):  # post 50 ms after pre (outside STDP's ~20 ms), and before it
        c = Culture(cfg, seed=9)
        k, pre, post, delay = _ee_synapse(c)
        c.run(2000.0, tick=spike_forcer(c, pairings(c, pre, post, delay, 20.0, 5, lag, 400.0)),
              tick_ms=cfg.dt_ms)
        tags[lag] = float(c._b.value(c._b.synapses_ee, "tag")[k])
    # pre then post: the trace at the post spike is ~exp(-(50 - delay) / 100) per pairing; post
    # then pre: nothing (no depression term, and the next pre is 350 ms away), ~exp(-3.5) less.
    step = cfg.stdp_a_plus * cfg.g_ee_max_per_ms
    assert tags[50.0] > 5 * 0.4 * step * np.exp(-1.6)  # 5 pairings, decayed over the 2 s run
    assert 0 <= tags[-50.0] < 0.1 * tags[50.0]
    assert model.ee_code(dataclasses.replace(QUIET, tag_rule="hebbian")) == model.ee_code(QUIET)


def _tag_after(cfg, schedule_of):
    c = Culture(cfg, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    c.run(2000.0, tick=spike_forcer(c, schedule_of(c, pre, post, delay)), tick_ms=cfg.dt_ms)
    return float(c._b.value(c._b.synapses_ee, "tag")[k])


def test_covariance_tags_fall_when_the_target_fires_below_its_own_mean_rate():
    hebb = dataclasses.replace(POSITIVE, tag_rule="hebbian")
    cov = dataclasses.replace(POSITIVE, tag_rule="covariance")

    def paired(c, pre, post, delay):
        return pairings(c, pre, post, delay, 20.0, 5, 50.0, 400.0)

    def pre_only(c, pre, post, delay):
        return {t: [n for n in ns if n == pre]
                for t, ns in paired(c, pre, post, delay).items() if pre in ns}

    # The source fires, the target stays silent: each presynaptic spike takes A+ tau_hebb <r_post>
    # (the target's running rate starts at the homeostasis target) from the tag.
    alone = _tag_after(cov, pre_only)
    per_spike = cov.stdp_a_plus * cov.g_ee_max_per_ms * cov.tag_hebb_tau_ms / 1000.0 \
        * cov.homeostasis_target_hz
    assert -5 * per_spike < alone < -5 * per_spike * np.exp(-2.0)  # decayed over the 2 s run
    assert _tag_after(hebb, pre_only) == 0.0
    # Paired, the Hebbian term less the same subtraction (the target's 5 spikes raise its
    # running rate by 5 / 60 s, ~6 %).
    assert _tag_after(cov, paired) == pytest.approx(_tag_after(hebb, paired) + alone, rel=0.1)
    assert _tag_after(cov, paired) > 0


def test_covariance_tags_replace_only_the_depression_line():
    hebb = model.ee_code(dataclasses.replace(POSITIVE, tag_rule="hebbian", tag_hf_max=2.0))
    cov = model.ee_code(dataclasses.replace(POSITIVE, tag_rule="covariance", tag_hf_max=2.0))
    assert cov["on_post"] == hebb["on_post"] and cov["neuron_reset"] == hebb["neuron_reset"]
    extra = [line for line in cov["on_pre"].splitlines() if line not in hebb["on_pre"]]
    assert extra == ["tag = tag - " + model.TAG_GATE + model.TAG_COVARIANCE_LTD]


def test_tag_baseline_follows_the_tag_and_capture_takes_the_deviation():
    cfg = dataclasses.replace(POSITIVE, capture_positive_only=False, tag_rule="hebbian",
                              tag_baseline_tau_s=5.0)
    share = cfg.tag_tau_ms / 1000.0 / cfg.tag_baseline_tau_s
    c = Culture(cfg, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    c.run(1000.0, tick=spike_forcer(c, pairings(c, pre, post, delay, 20.0, 1, 10.0)),
          tick_ms=cfg.dt_ms)
    syn = c._b.synapses_ee
    tag, mean = float(c._b.value(syn, "tag")[k]), float(c._b.value(syn, "tag_mean")[k])
    # Both as of the pairing (event-driven): the baseline got the same step, scaled.
    assert tag > 0 and mean == pytest.approx(share * tag, rel=1e-6)
    # A baseline above the tag's decayed value: the capture depresses by gain x the difference.
    c._b.value(syn, "tag_mean")[k] = mean = 0.8 * tag
    w0 = float(c._b.value(syn, "w")[k])
    t_pair = 20.0 + round(delay / cfg.dt_ms) * cfg.dt_ms + 10.0
    start = _tetanus(c, pre)
    t_capture = start + 70.0 + round(delay / cfg.dt_ms) * cfg.dt_ms
    tag_c = tag * np.exp(-(t_capture - t_pair) / cfg.tag_tau_ms)
    mean_c = mean * np.exp(-(t_capture - t_pair) / (1000.0 * cfg.tag_baseline_tau_s))
    assert tag_c < mean_c
    dw = float(c._b.value(syn, "w")[k]) - w0
    assert dw == pytest.approx(cfg.capture_gain * (tag_c - mean_c), rel=0.05)
    # The capture consumes the deviation: the tag is set to its baseline, which takes the
    # tag's change, scaled (so the tetanus's later pulses capture nothing more).
    new_mean = float(c._b.value(syn, "tag_mean")[k])
    assert new_mean == pytest.approx(mean_c + share * (mean_c - tag_c), rel=0.02)
    assert float(c._b.value(syn, "tag")[k]) == pytest.approx(new_mean, rel=0.02)


@pytest.mark.parametrize("fields", [{"tag_baseline_tau_s": -1.0},
                                    {"tag_baseline_tau_s": 0.5},  # not longer than the tag
                                    {"tag_baseline_tau_s": 60.0, "ltd_capture": True}])
def test_tag_baseline_bad_values_name_the_field(fields):
    with pytest.raises(ValueError, match="tag_baseline_tau_s"):
        CultureConfig(**fields)


# --- Heterosynaptic normalisation of a neuron's outputs (entry 25) ------------------------------

NORM = dataclasses.replace(QUIET, output_normalization=True,
                           output_normalization_interval_ms=10.0)


def test_normalisation_is_off_by_default_and_off_without_stdp():
    c = Culture(QUIET, seed=9)
    assert "w_out" not in c._b.neurons.variables
    frozen = Culture(dataclasses.replace(NORM, stdp_enabled=False), seed=9)
    assert "w_out" not in frozen._b.neurons.variables


@pytest.mark.parametrize("field,value", [("output_normalization", 1),
                                         ("output_normalization_interval_ms", 0.0),
                                         ("output_normalization_interval_ms", 0.75)])
def test_normalisation_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        CultureConfig(**{**dataclasses.asdict(QUIET), field: value})


def test_normalisation_restores_each_neurons_output_sum_and_keeps_relative_weights():
    c = Culture(NORM, seed=9)
    b = c._b
    st = c.structure
    pre = st.pre[b.ee_index]
    w = b.value(b.synapses_ee, "w")
    start = w.copy()
    # One neuron's outputs: its weakest synapse tripled (still below the ceiling), the rest as
    # they were; another neuron's outputs all doubled (a change every output shares).
    n1, n2 = pre[0], pre[np.flatnonzero(pre != pre[0])[0]]
    k1 = np.flatnonzero(pre == n1)
    k1 = k1[np.argsort(start[k1])]
    k2 = np.flatnonzero(pre == n2)
    # The scaling comes before the clip to the ceiling, so n2's doubled weights, scaled back by
    # 1/2, stay below it; n1's tripled synapse is below it before the scaling already.
    assert 3.0 * start[k1[0]] < NORM.g_ee_max_per_ms
    w[k1[0]] *= 3.0
    w[k2] *= 2.0
    c.run(15.0)   # one normalisation (at 10 ms); nothing fires in the quiet culture
    after = b.value(b.synapses_ee, "w")
    for k in (k1, k2):
        assert after[k].sum() == pytest.approx(start[k].sum(), rel=1e-9)
    # n1: the tripled synapse keeps 3x its old weight relative to its siblings, all scaled alike
    # (none reaches the ceiling here).
    ratio = after[k1] / start[k1]
    assert ratio[0] == pytest.approx(3.0 * ratio[1], rel=1e-9)
    np.testing.assert_allclose(ratio[1:], ratio[1], rtol=1e-9)
    assert ratio[1] < 1.0
    # n2: a change shared by all of a neuron's outputs is undone.
    np.testing.assert_allclose(after[k2], start[k2], rtol=1e-9)
    # Neurons whose outputs were not touched keep their weights.
    rest = ~np.isin(pre, [n1, n2])
    np.testing.assert_allclose(after[rest], start[rest], rtol=1e-9)


CONDITIONAL = dataclasses.replace(QUIET, stdp_tagging=True, capture_gain=0.0,
                                  tag_rule="conditional", tag_conditional_spikes=4.0,
                                  tag_tau_ms=1e6)


def test_conditional_tags_grow_by_the_targets_departure_from_what_the_source_usually_meets():
    """Entry 34: at each presynaptic arrival the tag grows by A+ (h - m) and m by (h - m) / N,
    h the target's fast trace then; a source firing onto a silent target tags nothing (the
    covariance rule would tag down), and with the target's activity the same at every arrival
    the increments shrink as m learns it (the geometry cancels)."""
    c = Culture(CONDITIONAL, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    schedule = pairings(c, pre, post, delay, 20.0, 6, -5.0, 400.0)
    c.run(2600.0, tick=spike_forcer(c, schedule), tick_ms=CONDITIONAL.dt_ms)
    dt, tau = CONDITIONAL.dt_ms, CONDITIONAL.capture_tau_ms
    posts = sorted(t for t, ns in schedule.items() if post in ns)
    arrivals = [t + round(delay / dt) * dt for t, ns in sorted(schedule.items()) if pre in ns]
    step = CONDITIONAL.stdp_a_plus * CONDITIONAL.g_ee_max_per_ms
    tag = m = 0.0
    for j, t in enumerate(arrivals):   # the tag decays (tag_tau_ms) between its updates
        h = sum(np.exp(-(t - tp) / tau) for tp in posts if tp <= t)
        if j:
            tag *= np.exp(-(t - arrivals[j - 1]) / CONDITIONAL.tag_tau_ms)
        tag += step * (h - m)
        m += (h - m) / CONDITIONAL.tag_conditional_spikes
    assert float(c._b.value(c._b.synapses_ee, "hp_mean")[k]) == pytest.approx(m, rel=1e-6)
    assert float(c._b.value(c._b.synapses_ee, "tag")[k]) == pytest.approx(tag, rel=1e-6)
    hebbian_like = step * sum(sum(np.exp(-(t - tp) / tau) for tp in posts if tp <= t)
                              for t in arrivals)
    assert 0 < tag < 0.6 * hebbian_like     # N = 4: the sixth arrival adds a quarter of the first

    alone = Culture(CONDITIONAL, seed=9)
    pre_only = {t: [n for n in ns if n == pre] for t, ns in schedule.items() if pre in ns}
    alone.run(2600.0, tick=spike_forcer(alone, pre_only), tick_ms=CONDITIONAL.dt_ms)
    assert float(alone._b.value(alone._b.synapses_ee, "tag")[k]) == 0.0
    assert float(alone._b.value(alone._b.synapses_ee, "hp_mean")[k]) == 0.0


def test_conditional_tags_have_no_postsynaptic_term_and_take_the_gate():
    code = model.ee_code(dataclasses.replace(CONDITIONAL, tag_hf_max=5.0))
    assert code["on_post"] == "" and "hp_mean : 1" in code["model"]
    assert code["on_pre"].count(model.TAG_GATE) == 2        # the tag and its running mean
    ungated = model.ee_code(CONDITIONAL)
    assert model.TAG_GATE not in ungated["on_pre"]
    assert model.ee_code(dataclasses.replace(QUIET, tag_rule="conditional")) == model.ee_code(QUIET)
    with pytest.raises(ValueError, match="tag_conditional_spikes"):
        CultureConfig(tag_conditional_spikes=0.5)
