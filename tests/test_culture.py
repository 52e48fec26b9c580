"""Behaviour of the simulated culture on small networks (a few hundred neurons, short runs)."""

import dataclasses

import numpy as np
import pytest
from culture_probes import QUIET, pairings, spike_forcer

from dishbrain.culture import SPIKE_RECORD_DTYPE, Culture, CultureConfig
from dishbrain.culture_check import burst_statistics
from dishbrain.mea import MEA

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

SMALL = CultureConfig(n_neurons=300)
# -- configuration ------------------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [
    ("n_neurons", 5),
    ("n_neurons", 1000.0),
    ("exc_fraction", 1.2),
    ("dt_ms", 0.0),
    ("dt_ms", 2.0),
    ("g_ee_per_ms", -0.1),
    ("tau_exc_ms", float("nan")),
    ("stp_enabled", "yes"),
    ("exc_type_fractions", (0.5, 0.2, 0.1)),
    ("inh_type_fractions", (1.0,)),
    ("noise_interval_ms", 0.7),
    ("g_ee_max_per_ms", 0.001),
    ("stdp_tagging", 1),
    ("tag_tau_ms", 0.0),
    ("capture_threshold", 0.5),
    ("capture_gain", -1.0),
    ("sensory_module_um", -1.0),
    ("cross_module_factor", 0.0),
    ("motor_competition_factor", 0.5),
    ("motor_module_factor", 0.0),
    ("motor_module_factor", 1.5),
    ("motor_module_scope", "all"),
    ("hub_recurrence_factor", 1.5),
    ("gaba_b_ratio", -0.5),
    ("tau_gaba_b_ms", 5.0),
    ("e_gaba_b_mv", -20.0),
])
def test_bad_config_values_raise_errors_naming_the_field(field, value):
    with pytest.raises(ValueError, match=f"CultureConfig.{field} must be"):
        CultureConfig(**{field: value})


def test_config_error_states_the_allowed_range():
    with pytest.raises(ValueError, match=r"dt_ms must be a finite number in \[0.01, 1.0\]"):
        CultureConfig(dt_ms=5.0)


def test_config_round_trips_through_dict():
    cfg = CultureConfig(n_neurons=321, exc_type_fractions=(0.5, 0.3, 0.2))
    assert CultureConfig.from_dict(cfg.to_dict()) == cfg


# -- structure ----------------------------------------------------------------------------------

def test_cell_types_sit_at_izhikevich_parameters_without_heterogeneity():
    from dishbrain.culture import CELL_TYPES, IZHIKEVICH_PARAMETERS
    c = Culture(dataclasses.replace(SMALL, heterogeneity=0.0), seed=3)
    st = c.structure
    for k, name in enumerate(CELL_TYPES):
        sel = c.cell_type == k
        assert sel.any()
        got = np.column_stack([st.a[sel], st.b[sel], st.c_mv[sel], st.d_mv[sel]])
        np.testing.assert_allclose(got, np.tile(IZHIKEVICH_PARAMETERS[name], (sel.sum(), 1)))
    # With heterogeneity the parameters spread around them.
    c2 = Culture(SMALL, seed=3)
    assert np.unique(c2.structure.c_mv[c2.is_excitatory]).size > 100


def test_structure_follows_config_and_dale():
    c = Culture(SMALL, seed=3)
    st = c.structure
    assert c.n_neurons == 300 and c.is_excitatory.sum() == 240
    assert c.neuron_positions_um.shape == (300, 2)
    # Fixed in-degree: 80 excitatory and 20 inhibitory inputs per neuron, no self-connections.
    n_in_e = np.bincount(st.post[c.is_excitatory[st.pre]], minlength=300)
    n_in_i = np.bincount(st.post[~c.is_excitatory[st.pre]], minlength=300)
    assert (n_in_e == 80).all() and (n_in_i == 20).all()
    assert not np.any(st.pre == st.post)
    # Connections are local: partners are closer than random pairs.
    d = np.hypot(*(st.positions_um[st.pre] - st.positions_um[st.post]).T)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 300, (2, 5000))
    d_random = np.hypot(*(st.positions_um[a] - st.positions_um[b]).T)
    assert np.median(d) < 0.7 * np.median(d_random)
    # Delays = synaptic delay + distance / conduction velocity.
    np.testing.assert_allclose(st.delay_ms, 1.0 + d / 300.0)
    # Dale's law in the model: excitatory neurons drive ge only, inhibitory ones gi only.
    assert set(np.unique(c._b.neurons.exc[:])) == {0.0, 1.0}
    # Firing types: RS/IB/CH among E, FS/LTS among I.
    assert set(c.cell_type[c.is_excitatory]) <= {0, 1, 2}
    assert set(c.cell_type[~c.is_excitatory]) <= {3, 4}


def test_two_module_culture_has_few_synapses_between_modules():
    from dishbrain.culture import generate_structure, sensory_module
    mea = MEA()
    # 1,000 neurons: each module holds more excitatory neurons than the in-degree of 80.
    one = CultureConfig(sensory_module_um=100.0)                      # modules, factor 1
    two = dataclasses.replace(one, cross_module_factor=0.05)
    pos = generate_structure(one, mea, seed=3).positions_um   # the same for every factor
    module = sensory_module(one, mea, pos)
    xs = mea.positions_um[list(mea.sensory), 0]
    np.testing.assert_array_equal(module, (pos[:, 0] >= xs.min() - 100)
                                  & (pos[:, 0] <= xs.max() + 100))
    assert 0.1 < module.mean() < 0.5
    assert not sensory_module(SMALL, mea, pos).any()                  # one module by default
    crossing = []
    for cfg in (one, two):
        st = generate_structure(cfg, mea, seed=3)
        assert (np.bincount(st.post, minlength=1000) == 100).all()   # in-degrees unchanged
        crossing.append(np.mean(module[st.pre] != module[st.post]))
    assert crossing[1] < 0.25 * crossing[0]


def test_competing_motor_quadrants_feed_each_others_interneurons():
    """motor_competition_factor (entry 27): the interneurons of each motor quadrant draw their E
    inputs from the other quadrants more often; excitatory neurons' inputs, every in-degree and
    the rest of the drawn culture are unchanged; the quadrants are those of the nearest
    electrode."""
    from dishbrain.culture import generate_structure, motor_region
    from dishbrain.mea import REGION_NAMES
    mea = MEA()
    base = CultureConfig()
    comp = dataclasses.replace(base, motor_competition_factor=30.0)
    st0, st1 = generate_structure(base, mea, seed=3), generate_structure(comp, mea, seed=3)
    np.testing.assert_array_equal(st0.positions_um, st1.positions_um)
    np.testing.assert_array_equal(st0.a, st1.a)
    region = motor_region(mea, st0.positions_um)
    nearest = np.argmin(np.hypot(*(st0.positions_um[:, None, :]
                                   - mea.positions_um[None, :, :]).transpose(2, 0, 1)), axis=1)
    for k, name in enumerate(REGION_NAMES, start=1):
        assert set(np.flatnonzero(region == k)) == set(
            np.flatnonzero(np.isin(nearest, mea.regions[name])))
    assert set(np.unique(region)) == {0, 1, 2, 3, 4}

    def cross_share(st, excitatory_post):
        sel = st.is_excitatory[st.pre] & (st.is_excitatory[st.post] == excitatory_post) \
            & (region[st.post] > 0)
        pr, po = region[st.pre[sel]], region[st.post[sel]]
        return np.mean((pr > 0) & (pr != po))

    assert cross_share(st1, False) > cross_share(st0, False) + 0.3
    for st in (st0, st1):
        assert (np.bincount(st.post, minlength=1000) == 100).all()
    onto_e0 = st0.is_excitatory[st0.post]
    onto_e1 = st1.is_excitatory[st1.post]
    np.testing.assert_array_equal(st0.pre[onto_e0], st1.pre[onto_e1])   # E neurons' inputs kept


def test_competing_groups_spare_a_groups_own_quadrants():
    """motor_competition_groups = "diagonals" (entry 27c): top-left's interneurons are fed by
    the other diagonal (top-right, bottom-left) more, by their own partner (bottom-right) not;
    an unknown grouping names the field and the choices."""
    from dishbrain.culture import generate_structure, motor_region
    mea = MEA()
    base = CultureConfig()
    diag = dataclasses.replace(base, motor_competition_factor=30.0,
                               motor_competition_groups="diagonals")
    st0, st1 = generate_structure(base, mea, seed=3), generate_structure(diag, mea, seed=3)
    quadrant = motor_region(mea, st0.positions_um)

    def share_from(st, source):   # of top-left interneurons' E inputs
        sel = st.is_excitatory[st.pre] & ~st.is_excitatory[st.post] & (quadrant[st.post] == 1)
        return np.mean(np.isin(quadrant[st.pre[sel]], source))

    assert share_from(st1, [2, 3]) > share_from(st0, [2, 3]) + 0.2     # the other diagonal
    assert share_from(st1, [4]) <= share_from(st0, [4]) + 0.01         # its own partner: not
    with pytest.raises(ValueError, match="motor_competition_groups must be one of"):
        CultureConfig(motor_competition_groups="rows")


def test_modular_motor_quadrants_link_sparsely_through_the_hub():
    """motor_module_factor (entry 29): synapses across motor quadrants become rarer for every
    neuron (E and I, inputs of both signs), in-degrees stay fixed, the neurons nearest no motor
    electrode (the sensory hub) keep their inputs' share from the quadrants, positions and cell
    parameters are unchanged; with competition as well, an interneuron's E inputs from the other
    quadrants carry both factors (rarer than with competition alone)."""
    from dishbrain.culture import generate_structure, motor_region
    mea = MEA()
    base = CultureConfig()
    st0 = generate_structure(base, mea, seed=3)
    st1 = generate_structure(dataclasses.replace(base, motor_module_factor=0.03), mea, seed=3)
    np.testing.assert_array_equal(st0.positions_um, st1.positions_um)
    np.testing.assert_array_equal(st0.d_mv, st1.d_mv)
    region = motor_region(mea, st0.positions_um)

    def cross(st, pre_exc, post_exc):
        sel = ((st.is_excitatory[st.pre] == pre_exc) & (st.is_excitatory[st.post] == post_exc)
               & (region[st.pre] > 0) & (region[st.post] > 0))
        return np.mean(region[st.pre[sel]] != region[st.post[sel]])

    for pre_exc in (True, False):
        for post_exc in (True, False):
            assert cross(st0, pre_exc, post_exc) > 0.1
            assert cross(st1, pre_exc, post_exc) < 0.25 * cross(st0, pre_exc, post_exc)
    for st in (st0, st1):
        assert (np.bincount(st.post, minlength=1000) == 100).all()
    hub = region[st0.post] == 0
    hub1 = region[st1.post] == 0
    from_motor0 = np.mean(region[st0.pre[hub]] > 0)
    assert abs(np.mean(region[st1.pre[hub1]] > 0) - from_motor0) < 0.05
    comp = dataclasses.replace(base, motor_competition_factor=30.0)
    both = dataclasses.replace(comp, motor_module_factor=0.03)
    st2, st3 = generate_structure(comp, mea, seed=3), generate_structure(both, mea, seed=3)
    assert cross(st3, True, False) < cross(st2, True, False) - 0.2


def test_whole_dish_modules_split_the_hub():
    """motor_module_scope = "dish" (entry 29b): every neuron is in the quadrant of its nearest
    motor electrode (no hub), and links across quadrants are rare for all of them."""
    from dishbrain.culture import generate_structure, motor_region
    mea = MEA()
    cfg = CultureConfig(motor_module_factor=0.03, motor_module_scope="dish")
    st = generate_structure(cfg, mea, seed=3)
    region = motor_region(mea, st.positions_um, whole_dish=True)
    assert set(np.unique(region)) == {1, 2, 3, 4}
    assert (motor_region(mea, st.positions_um) == 0).mean() > 0.1      # the hub of "motor"
    kept = motor_region(mea, st.positions_um) > 0
    np.testing.assert_array_equal(region[kept], motor_region(mea, st.positions_um)[kept])
    st0 = generate_structure(CultureConfig(), mea, seed=3)
    base = np.mean(region[st0.pre] != region[st0.post])
    assert base > 0.15
    assert np.mean(region[st.pre] != region[st.post]) < 0.15 * base
    assert (np.bincount(st.post, minlength=1000) == 100).all()


def test_feedforward_modules_keep_the_hubs_outputs_and_cut_its_inputs():
    """motor_module_scope = "feedforward" (entry 29d): the hub (neurons nearest no motor
    electrode) still feeds every quadrant as distance makes it, but the quadrants rarely feed
    the hub or each other."""
    from dishbrain.culture import generate_structure, motor_region
    mea = MEA()
    st0 = generate_structure(CultureConfig(), mea, seed=3)
    st1 = generate_structure(CultureConfig(motor_module_factor=0.01,
                                           motor_module_scope="feedforward"), mea, seed=3)
    region = motor_region(mea, st0.positions_um)
    for st in (st0, st1):
        assert (np.bincount(st.post, minlength=1000) == 100).all()

    def share(st, pre_ok, post_ok):
        sel = post_ok(region[st.post])
        return np.mean(pre_ok(region[st.pre[sel]]))

    hub_in_0 = share(st0, lambda r: r > 0, lambda r: r == 0)
    assert hub_in_0 > 0.2
    assert share(st1, lambda r: r > 0, lambda r: r == 0) < 0.1 * hub_in_0
    motor_from_hub_0 = share(st0, lambda r: r == 0, lambda r: r > 0)
    assert share(st1, lambda r: r == 0, lambda r: r > 0) > motor_from_hub_0 - 0.02
    pr, po = region[st1.pre], region[st1.post]
    assert np.mean((pr > 0) & (po > 0) & (pr != po)) < 0.005


def test_hub_recurrence_scales_only_the_hubs_own_excitation():
    """hub_recurrence_factor (entry 29e): the E->E weights among the hub's neurons (nearest no
    motor electrode) scale; every other weight and the wiring stay as they were."""
    from dishbrain.culture import generate_structure, motor_region
    mea = MEA()
    st0 = generate_structure(CultureConfig(), mea, seed=3)
    st1 = generate_structure(CultureConfig(hub_recurrence_factor=0.25), mea, seed=3)
    np.testing.assert_array_equal(st0.pre, st1.pre)
    np.testing.assert_array_equal(st0.post, st1.post)
    hub = motor_region(mea, st0.positions_um) == 0
    inner = hub[st0.pre] & hub[st0.post] & st0.is_excitatory[st0.pre] & st0.is_excitatory[st0.post]
    assert inner.sum() > 100
    np.testing.assert_allclose(st1.weight[inner], 0.25 * st0.weight[inner])
    np.testing.assert_array_equal(st1.weight[~inner], st0.weight[~inner])


def test_same_seed_same_culture_and_activity_other_seed_differs():
    counts = []
    for seed in (7, 7, 8):
        c = Culture(SMALL, seed=seed)
        seen = []
        c.run(300, tick=lambda t, n, seen=seen: seen.append(n.copy()))
        counts.append(np.array(seen))
    assert np.array_equal(counts[0], counts[1])
    assert counts[0].sum() > 0
    assert not np.array_equal(counts[0], counts[2])


# -- spontaneous activity -----------------------------------------------------------------------

def test_spontaneous_activity_is_sparse_with_network_bursts():
    c = Culture(CultureConfig(n_neurons=400), seed=0)
    t, i = c.record(20_000)
    rate = c.firing_rate_hz()
    assert 0.5 <= rate <= 5.0
    assert rate == pytest.approx(len(t) / 400 / 20.0)
    stats = burst_statistics(t, i, 400, 0.0, 20_000.0)
    assert stats.n_bursts >= 3
    assert stats.fraction_spikes_in_bursts > 0.3
    assert stats.mean_participation > 0.2


# -- the tick -----------------------------------------------------------------------------------

def test_tick_gets_counts_every_tick_ms_and_can_stop_the_run():
    c = Culture(SMALL, seed=1)
    calls = []

    def tick(t_ms, counts):
        calls.append((t_ms, counts))
        return False if t_ms >= 120 else None

    c.run(500, tick=tick, tick_ms=20.0)
    times = [t for t, _ in calls]
    assert times == [0, 20, 40, 60, 80, 100, 120]   # exact multiples of tick_ms
    for _, counts in calls:
        assert counts.shape == (c.mea.n_electrodes,) and counts.dtype == np.int64
    # Stopped at the tick that returned False: nothing after 120 ms was simulated.
    assert c.t_ms == pytest.approx(120.0, abs=c.config.dt_ms)
    # Counts are the recorded spikes: their sum equals spikes of recorded neurons.
    calls.clear()
    c2 = Culture(SMALL, seed=1)
    seen = []
    t, i = c2.record(200)
    c3 = Culture(SMALL, seed=1)
    c3.run(210, tick=lambda t_ms, n: seen.append(n.copy()), tick_ms=10.0)
    per_electrode = c3._record @ np.bincount(i, minlength=300)
    np.testing.assert_array_equal(np.sum(seen, axis=0), per_electrode)


def test_an_error_in_the_tick_propagates_and_the_culture_stays_usable():
    c = Culture(SMALL, seed=1)

    def tick(t_ms, counts):
        if t_ms >= 30:
            raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        c.run(100, tick=tick)
    assert c.t_ms == pytest.approx(30.0)
    seen = []
    c.run(20, tick=lambda t, n: seen.append(t))
    assert seen == [30.0, 40.0]


def test_tick_counts_cover_the_previous_interval_across_runs():
    c = Culture(SMALL, seed=2)
    seen = []
    c.run(100, tick=lambda t, n: seen.append((t, n.sum())), tick_ms=10.0)
    c.run(100, tick=lambda t, n: seen.append((t, n.sum())), tick_ms=10.0)
    assert [t for t, _ in seen] == pytest.approx(list(np.arange(0, 200, 10.0)))
    assert seen[0][1] == 0   # nothing simulated before t = 0


# -- stimulation --------------------------------------------------------------------------------

def _neurons_by_distance(c, electrode):
    d = np.hypot(*(c.neuron_positions_um - c.mea.positions_um[electrode]).T)
    return np.flatnonzero(d < 80), np.flatnonzero(d > 500)


def _best_electrode(c, radius_um=60.0):
    """The electrode with the most neurons within radius_um."""
    d = np.hypot(c.neuron_positions_um[None, :, 0] - c.mea.positions_um[:, None, 0],
                 c.neuron_positions_um[None, :, 1] - c.mea.positions_um[:, None, 1])
    return int(np.argmax((d < radius_um).sum(axis=1)))


def _pulse_times(c, duration_ms, tick=None, tick_ms=10.0):
    """Run and return the pulse times (ms) and electrodes of the electrode group."""
    from brian2 import SpikeMonitor
    mon = SpikeMonitor(c._b.electrodes, name="test_pulses")
    c._net.add(mon)
    try:
        c.run(duration_ms, tick=tick, tick_ms=tick_ms)
        return np.asarray(mon.t_[:]) * 1e3, np.asarray(mon.i[:])
    finally:
        c._net.remove(mon)


def test_stimulation_fires_neurons_near_the_electrode_and_not_far():
    # 1,000 neurons: the density of a real culture's neighbourhood matters for locality.
    c = Culture(CultureConfig(n_neurons=1000), seed=4)
    e = c.mea.sensory[3]
    near, far = _neurons_by_distance(c, e)
    assert len(near) >= 3 and len(far) >= 300
    c.run(500)
    t0 = c.t_ms
    c.stimulate([e], amplitude_mv=75.0, rate_hz=4.0, duration_ms=2500.0)
    t, i = c.record(2500)
    pulses = t0 + 250.0 * np.arange(10)

    def response(group, offset_ms=0.0):
        """Fraction of the group spiking within 20 ms of a pulse (averaged over pulses)."""
        return float(np.mean([np.isin(group, i[(t >= p + offset_ms) & (t < p + offset_ms + 20.0)])
                              .mean() for p in pulses]))

    assert response(near) > 0.7
    assert response(far) < 0.1
    # Near neurons respond far above their own baseline (the 20 ms before the next pulse).
    assert response(near) > 5 * response(near, offset_ms=220.0) + 0.5


def test_stimulation_is_stronger_and_wider_at_150_mv():
    responses = {}
    for amp in (75.0, 150.0):
        c = Culture(QUIET, seed=5)
        e = 27
        d = np.hypot(*(c.neuron_positions_um - c.mea.positions_um[e]).T)
        ring = np.flatnonzero((d > 110) & (d < 160))
        c.stimulate([e], amplitude_mv=amp, rate_hz=1.0, duration_ms=1.0)
        t, i = c.record(3)   # the direct response only
        responses[amp] = np.isin(ring, i).mean()
    assert responses[150.0] > responses[75.0] + 0.3


def test_periodic_pulses_start_at_once_and_stop_after_duration():
    c = Culture(QUIET, seed=6)
    c.run(50)
    c.stimulate([27, 5], amplitude_mv=75.0, rate_hz=20.0, duration_ms=200.0)
    t, e = _pulse_times(c, 400)
    np.testing.assert_allclose(t[e == 27], [50, 100, 150, 200])
    np.testing.assert_allclose(t[e == 5], [50, 100, 150, 200])
    # A new call replaces the ongoing train; stop_stimulation ends it.
    c.stimulate([27], amplitude_mv=75.0, rate_hz=100.0, duration_ms=1000.0)
    t, e = _pulse_times(c, 50)
    assert len(t) == 5 and set(e) == {27}
    c.stop_stimulation([27])
    t, e = _pulse_times(c, 50)
    assert len(t) == 0


def test_poisson_pulses_have_the_requested_rate():
    c = Culture(QUIET, seed=6)
    c.stimulate([27], amplitude_mv=75.0, rate_hz=40.0, duration_ms=5000.0, random_timing=True)
    t, e = _pulse_times(c, 5000)
    isi = np.diff(t)
    assert 160 <= len(t) <= 240                 # 200 expected, sd ~14
    assert 0.8 < isi.std() / isi.mean() < 1.2   # exponential intervals (CV 1)


def test_stimulate_inside_a_tick_takes_effect_at_once():
    c = Culture(QUIET, seed=8)
    e = _best_electrode(c)
    seen = {}

    def tick(t_ms, counts):
        seen[round(t_ms)] = counts[e]
        if round(t_ms) == 100:
            c.stimulate([e], amplitude_mv=75.0, rate_hz=1000.0 / 30, duration_ms=1.0)
            assert c.t_ms == pytest.approx(100.0)

    t, _ = _pulse_times(c, 150, tick=tick, tick_ms=10.0)
    np.testing.assert_allclose(t, [100.0])      # the pulse fires in the tick's own time step
    assert seen[100] == 0 and seen[110] > 0     # and its spikes show in [100, 110)


def test_stimulate_rejects_bad_arguments():
    c = Culture(QUIET, seed=0)
    with pytest.raises(ValueError, match="electrode indices"):
        c.stimulate([64], 75.0, 10.0, 100.0)
    with pytest.raises(ValueError, match="rate_hz"):
        c.stimulate([0], 75.0, 0.0, 100.0)
    with pytest.raises(ValueError, match="amplitude_mv"):
        c.stimulate([0], float("inf"), 10.0, 100.0)


# -- plasticity ---------------------------------------------------------------------------------

def _ee_synapse(c):
    """The first E->E synapse: its index in synapses_ee, pre, post and delay (ms)."""
    st = c.structure
    ee = np.flatnonzero(c.is_excitatory[st.pre] & c.is_excitatory[st.post])
    np.testing.assert_array_equal(c._b.ee_index, ee)
    k = ee[0]
    return 0, int(st.pre[k]), int(st.post[k]), float(st.delay_ms[k])


def _locate(c, k):
    """The Brian2 Synapses object holding the structure's synapse k, and k's index there."""
    for S, idx in c._b.recurrent:
        hit = np.flatnonzero(idx == k)
        if hit.size:
            return S, int(hit[0])
    raise KeyError(k)


def test_synapses_split_into_plastic_ee_and_static():
    c = Culture(SMALL, seed=9)
    st, b = c.structure, c._b
    ee = c.is_excitatory[st.pre] & c.is_excitatory[st.post]
    assert 0 < ee.sum() < len(ee)
    for S, idx in b.recurrent:
        np.testing.assert_array_equal(S.i[:], st.pre[idx])
        np.testing.assert_array_equal(S.j[:], st.post[idx])
        np.testing.assert_allclose(np.asarray(S.delay[:]) / 1e-3, st.delay_ms[idx])
    np.testing.assert_array_equal(np.sort(np.concatenate([b.ee_index, b.static_index])),
                                  np.arange(len(st.pre)))
    assert ee[b.ee_index].all() and not ee[b.static_index].any()
    np.testing.assert_array_equal(b.weights(), st.weight)
    # Only the E->E synapses carry the STDP trace and a postsynaptic pathway.
    assert "apre" in b.synapses_ee.variables and "apre" not in b.synapses_static.variables
    assert hasattr(b.synapses_ee, "post") and not hasattr(b.synapses_static, "post")


@pytest.mark.parametrize("order", ["pre_post", "post_pre"])
def test_stdp_pairing_changes_the_synapse(order):
    cfg = QUIET
    c = Culture(cfg, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    w0 = float(c._b.synapses_ee.w[k])
    lag = 10.0  # ms between arrival at the synapse and the postsynaptic spike
    n_pairs = 20
    schedule = {}
    for p in range(n_pairs):
        t_pre = 20.0 + 200.0 * p
        # Arrival = t_pre + delay (rounded to dt by Brian2).
        arrival = t_pre + round(delay / cfg.dt_ms) * cfg.dt_ms
        t_post = arrival + lag if order == "pre_post" else arrival - lag
        schedule.setdefault(t_pre, []).append(pre)
        schedule.setdefault(t_post, []).append(post)
    c.run(20.0 + 200.0 * n_pairs, tick=spike_forcer(c, schedule), tick_ms=cfg.dt_ms)
    w1 = float(c._b.synapses_ee.w[k])
    a_plus = cfg.stdp_a_plus * cfg.g_ee_max_per_ms
    if order == "pre_post":
        expected = n_pairs * a_plus * np.exp(-lag / cfg.stdp_tau_plus_ms)
    else:
        expected = -n_pairs * a_plus * cfg.stdp_a_minus_ratio * np.exp(-lag / cfg.stdp_tau_minus_ms)
    assert w1 - w0 == pytest.approx(expected, rel=0.05)


TAGGED = dataclasses.replace(QUIET, stdp_tagging=True, capture_gain=10.0)


def test_tagged_stdp_writes_the_tag_not_the_weight_and_the_tag_decays():
    cfg = TAGGED
    c = Culture(cfg, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    w0 = float(c._b.synapses_ee.w[k])
    lag, n_pairs, every = 10.0, 5, 200.0
    c.run(20.0 + every * n_pairs, tick=spike_forcer(c, pairings(c, pre, post, delay, 20.0,
                                                                   n_pairs, lag, every)),
          tick_ms=cfg.dt_ms)
    assert float(c._b.synapses_ee.w[k]) == w0
    a_plus = cfg.stdp_a_plus * cfg.g_ee_max_per_ms * np.exp(-lag / cfg.stdp_tau_plus_ms)
    # Each pairing adds a_plus; the earlier ones have decayed with tag_tau_ms by the last one.
    expected = a_plus * sum(np.exp(-every * j / cfg.tag_tau_ms) for j in range(n_pairs))
    tag = float(c._b.synapses_ee.tag[k])   # as of the last event at the synapse (event-driven)
    assert tag == pytest.approx(expected, rel=0.05)
    # Isolated presynaptic spikes (1 Hz, far below the capture threshold) never capture: the
    # weight stays, the tag keeps decaying.
    t0 = c.t_ms
    c.run(3000.0, tick=spike_forcer(c, {t0 + 1000.0: [pre], t0 + 2000.0: [pre]}),
          tick_ms=cfg.dt_ms)
    assert float(c._b.synapses_ee.w[k]) == w0
    assert 0 < float(c._b.synapses_ee.tag[k]) < tag * np.exp(-1500.0 / cfg.tag_tau_ms)


def test_a_presynaptic_high_frequency_train_captures_the_tag():
    cfg = TAGGED
    c = Culture(cfg, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    w0 = float(c._b.synapses_ee.w[k])
    c.run(1000.0, tick=spike_forcer(c, pairings(c, pre, post, delay, 20.0, 5)),
          tick_ms=cfg.dt_ms)
    tag = float(c._b.synapses_ee.tag[k])
    t_tag = c.t_ms - 1000.0 + 20.0 + 4 * 200.0   # the last pairing, about
    # 100 Hz for 100 ms: the presynaptic trace (tau 100 ms) reaches the threshold of 6 at the
    # 8th spike, whose arrival captures the tag (then decayed for ~0.3 s more).
    start = c.t_ms + 100.0
    c.run(300.0, tick=spike_forcer(c, {start + 10.0 * n: [pre] for n in range(10)}),
          tick_ms=cfg.dt_ms)
    w1 = float(c._b.synapses_ee.w[k])
    expected = cfg.capture_gain * tag * np.exp(-(start + 70.0 - t_tag) / cfg.tag_tau_ms)
    assert w1 - w0 == pytest.approx(expected, rel=0.1)
    assert abs(float(c._b.synapses_ee.tag[k])) < 0.01 * tag   # cleared (only the train's own LTD)


def test_tagging_without_stdp_keeps_weights():
    cfg = dataclasses.replace(TAGGED, stdp_enabled=False)
    c = Culture(cfg, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    w0 = c._b.weights()
    schedule = pairings(c, pre, post, delay, 20.0, 3)
    schedule.update({700.0 + 10.0 * n: [pre] for n in range(10)})
    c.run(900.0, tick=spike_forcer(c, schedule), tick_ms=cfg.dt_ms)
    np.testing.assert_array_equal(c._b.weights(), w0)


def test_stdp_off_keeps_weights():
    cfg = dataclasses.replace(QUIET, stdp_enabled=False)
    c = Culture(cfg, seed=9)
    k, pre, post, delay = _ee_synapse(c)
    w0 = c._b.weights()
    schedule = {20.0: [pre], 25.0 + delay: [post], 60.0: [post], 70.0: [pre]}
    c.run(100, tick=spike_forcer(c, schedule), tick_ms=cfg.dt_ms)
    np.testing.assert_array_equal(c._b.weights(), w0)


def test_homeostatic_scaling_scales_up_the_inputs_of_silent_neurons():
    cfg = dataclasses.replace(QUIET, homeostasis_enabled=True)
    c = Culture(cfg, seed=9)
    st = c.structure
    plastic = c.is_excitatory[st.pre] & c.is_excitatory[st.post]
    w0 = c._b.weights()
    c.run(2500)   # scaling at t = 0, 1 and 2 s; the rate estimate decays from the target
    w1 = c._b.weights()
    k = np.arange(3)
    factor = np.prod(1 + cfg.homeostasis_rate * (1 - np.exp(-k / cfg.homeostasis_tau_s)))
    free = plastic & (w0 * factor < cfg.g_ee_max_per_ms)
    np.testing.assert_allclose(w1[free], w0[free] * factor, rtol=1e-9)
    np.testing.assert_array_equal(w1[~plastic], w0[~plastic])
    assert factor > 1


def _conductance_jumps(c, k, spike_times):
    """The jump of ge in the target of synapse k at each arrival of a forced presynaptic spike.

    Quiet network: the presynaptic neuron spikes only when forced; other inputs of the target
    may still fire in response, so only the steps where this synapse delivers are read.
    """
    st = c.structure
    pre, post = int(st.pre[k]), int(st.post[k])
    dt = c.config.dt_ms
    ge = c._b.neurons.variables["ge"].get_value()
    decay = np.exp(-dt / c.config.tau_exc_ms)
    S, local = _locate(c, k)
    steps = round(float(S.delay[local] / 1e-3) / dt)
    arrivals = {round(t / dt) + steps for t in spike_times}
    force = spike_forcer(c, {t: [pre] for t in spike_times})
    trace = {}

    def tick(t_ms, counts):
        trace[round(t_ms / dt)] = float(ge[post])   # before this step: includes step - 1
        force(t_ms, counts)

    c.run(spike_times[-1] - c.t_ms + 20.0, tick=tick, tick_ms=dt)
    # The synaptic event at step a shows in ge read at step a + 1; ge decays once in between.
    return np.array([trace[a + 1] - trace[a] * decay for a in sorted(arrivals)])


def test_100hz_train_depresses_excitatory_synapses():
    c = Culture(QUIET, seed=10)
    st = c.structure
    k = np.flatnonzero(c.is_excitatory[st.pre] & c.is_excitatory[st.post])[0]
    jumps = _conductance_jumps(c, k, [20.0 + 10.0 * n for n in range(10)])
    assert len(jumps) == 10
    w = float(c._b.weights()[k])
    assert jumps[0] == pytest.approx(w, rel=1e-6)          # rested synapse: full weight
    assert np.all(np.diff(jumps) < 0)                        # every spike weaker than the last
    assert jumps[-1] < 0.2 * jumps[0]
    # Recovery with tau_rec = 800 ms: after 3 s the synapse is nearly rested again.
    again = _conductance_jumps(c, k, [c.t_ms + 3000.0])
    assert again[0] > 0.95 * w


def test_excitatory_synapses_onto_lts_facilitate():
    c = Culture(QUIET, seed=10)
    st = c.structure
    lts = c.cell_type[st.post] == 4
    k = np.flatnonzero(c.is_excitatory[st.pre] & lts)[0]
    jumps = _conductance_jumps(c, k, [20.0 + 20.0 * n for n in range(5)])
    assert len(jumps) == 5
    assert jumps[-1] > 2 * jumps[0]


# -- persistence --------------------------------------------------------------------------------

def _counts_log(c, duration, stim_at=None):
    seen = []

    def tick(t_ms, counts):
        seen.append(counts.copy())
        if stim_at is not None and round(t_ms) == stim_at:
            c.stimulate([3, 40], amplitude_mv=150.0, rate_hz=50.0, duration_ms=400.0,
                        random_timing=True)
            c.stimulate([27], amplitude_mv=75.0, rate_hz=25.0, duration_ms=400.0)

    c.run(duration, tick=tick, tick_ms=10.0)
    return np.array(seen)


def test_save_then_load_continues_bit_identically(tmp_path):
    cfg = dataclasses.replace(SMALL, homeostasis_interval_ms=100.0)
    a = Culture(cfg, seed=11)
    full = _counts_log(a, 1000, stim_at=300)

    b = Culture(cfg, seed=11)
    first = _counts_log(b, 500, stim_at=300)
    b.save(tmp_path / "culture.npz")
    c = Culture.load(tmp_path / "culture.npz")
    assert c.t_ms == pytest.approx(500.0)
    assert c.config == cfg and c.seed == 11
    second = _counts_log(c, 500)

    assert full.sum() > 0
    np.testing.assert_array_equal(np.concatenate([first, second]), full)
    np.testing.assert_array_equal(c._b.weights(), a._b.weights())
    np.testing.assert_array_equal(c._b.neurons.v[:], a._b.neurons.v[:])
    assert c.firing_rate_hz() == pytest.approx(a.firing_rate_hz())


def test_loading_a_file_of_an_older_format_says_so(tmp_path):
    import json
    Culture(QUIET, seed=1).save(tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz") as z:
        data = {k: z[k] for k in z.files}
    meta = json.loads(bytes(data["meta_json"]).decode())
    meta["format_version"] = 1
    data["meta_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "old.npz", **data)
    with pytest.raises(ValueError, match="version 1.*older dishbrain"):
        Culture.load(tmp_path / "old.npz")


# -- spike streaming ----------------------------------------------------------------------------

def test_spike_file_streams_every_spike(tmp_path):
    path = tmp_path / "spikes.bin"
    cfg = dataclasses.replace(SMALL, spike_file_chunk_ms=100.0)
    c = Culture(cfg, seed=12, spike_file=path)
    ref = Culture(cfg, seed=12)
    t_ref, i_ref = ref.record(450)
    c.run(250)
    size_mid = path.stat().st_size
    c.run(200)
    rec = np.fromfile(path, dtype=SPIKE_RECORD_DTYPE)
    assert size_mid > 0
    assert len(rec) == len(t_ref) > 0
    np.testing.assert_allclose(rec["t_ms"], t_ref)
    np.testing.assert_array_equal(rec["neuron"], i_ref)
    # The monitor is emptied at each flush: memory stays flat.
    assert int(c._stream_mon.variables["N"].get_value()) == 0


def test_record_leaves_no_monitor_behind():
    c = Culture(SMALL, seed=13)
    n_objects = len(c._net.objects)
    t, i = c.record(100)
    assert len(c._net.objects) == n_objects
    assert t.dtype == np.float64 and i.dtype == np.int32 and len(t) == len(i)


def test_culture_on_a_custom_mea():
    from dishbrain.mea import MEAConfig
    mea = MEA(MEAConfig(rows=4, cols=6, pitch_um=300.0))
    c = Culture(CultureConfig(n_neurons=150), mea=mea, seed=0)
    seen = []
    c.run(30, tick=lambda t, n: seen.append(n.shape))
    assert seen == [(24,)] * 3


# -- code generation ----------------------------------------------------------------------------

@pytest.fixture
def numpy_target():
    import dishbrain.culture.model as culture_module
    saved = culture_module._TARGET
    culture_module._TARGET = "numpy"
    yield
    culture_module._TARGET = saved
    from brian2 import prefs
    prefs.codegen.target = saved or "cython"


def test_numpy_fallback_runs_the_same_model(numpy_target):
    c = Culture(CultureConfig(n_neurons=150), seed=1)
    c.stimulate([27], 75.0, 40.0, 100.0, random_timing=True)
    seen = []
    c.run(200, tick=lambda t, n: seen.append(n.copy()))
    assert sum(s.sum() for s in seen) > 0


def test_missing_compiler_falls_back_to_numpy_with_a_warning(monkeypatch):
    from brian2.codegen.runtime.cython_rt import CythonCodeObject

    import dishbrain.culture.model as culture_module
    monkeypatch.setattr(culture_module, "_TARGET", None)
    monkeypatch.setattr(CythonCodeObject, "is_available", classmethod(lambda cls: False))
    with pytest.warns(RuntimeWarning, match="falls back to the numpy target"):
        assert culture_module._codegen_target() == "numpy"
    monkeypatch.setattr(culture_module, "_TARGET", "cython")


def test_culture_check_writes_the_figure_and_numbers(tmp_path):
    import json

    from dishbrain.culture_check import culture_check
    paths = culture_check(tmp_path / "check", n_neurons=200, seconds=3, seed=1, progress=False)
    png, js = paths
    assert png.suffix == ".png" and png.stat().st_size > 10_000
    summary = json.loads(js.read_text())
    assert summary["n_neurons"] == 200
    assert len(summary["electrode_rates_hz"]) == 8 and len(summary["electrode_rates_hz"][0]) == 8
    assert summary["stimulus_response"]["p_spike_20ms_near"] > 0.5
    assert "bursts_per_min" in summary["burst_statistics"]


def test_culture_check_of_a_config_file_uses_its_culture_and_array(tmp_path, capsys):
    import json

    from dishbrain.cli import main
    cfg = tmp_path / "c.toml"
    cfg.write_text("[culture]\nn_neurons = 150\n[culture.mea_config]\nrows = 10\ncols = 6\n"
                   "[culture.culture_config]\nnoise_exc_sigma_mv = 2.5\n"
                   "[culture.decoder_config]\nmode = \"contrast\"\n")
    assert main(["culture-check", str(cfg), "--seconds", "2", "--out", str(tmp_path / "o")]) == 0
    printed = capsys.readouterr().out
    assert "calibration target" in printed and "mean_rate_hz 1-1.7" in printed
    summary = json.loads((tmp_path / "o" / "culture-check.json").read_text())
    assert summary["n_neurons"] == 150
    assert summary["config"]["noise_exc_sigma_mv"] == 2.5
    assert summary["mea_config"]["rows"] == 10
    assert np.array(summary["electrode_rates_hz"]).shape == (10, 6)
    assert set(summary["within_target"]) == {"mean_rate_hz", "bursts_per_min", "mean_duration_ms"}


def test_culture_check_bad_config_names_the_field_and_writes_nothing(tmp_path, capsys):
    from dishbrain.cli import main
    cfg = tmp_path / "c.toml"
    cfg.write_text("[culture.mea_config]\nrows = 3\n")
    assert main(["culture-check", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "MEAConfig.rows must be an integer in [4, 64], got 3" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_burst_detection_finds_synthetic_bursts():
    from dishbrain.culture_check import burst_statistics
    rng = np.random.default_rng(0)
    n = 100
    background_t = rng.uniform(0, 10_000, 1000)             # 1 Hz per neuron
    background_i = rng.integers(0, n, 1000)
    burst_t = np.concatenate([s + rng.uniform(0, 100, 300) for s in (2000, 5000, 8000)])
    burst_i = rng.integers(0, n, 900)
    t = np.concatenate([background_t, burst_t])
    i = np.concatenate([background_i, burst_i])
    stats = burst_statistics(t, i, n, 0.0, 10_000.0)
    assert stats.n_bursts == 3
    assert stats.mean_interval_s == pytest.approx(3.0, abs=0.05)
    assert 80 <= stats.mean_duration_ms <= 130
    assert stats.fraction_spikes_in_bursts == pytest.approx(900 / 1900, abs=0.05)


# -- GABA_B (issue 17, entry 31) -----------------------------------------------------------------

def test_gaba_b_is_off_by_default_and_leaves_the_model_unchanged():
    from dishbrain.culture.model import NEURON_UPDATE, neuron_update
    assert CultureConfig().gaba_b_ratio == 0.0
    assert neuron_update(CultureConfig()) == NEURON_UPDATE
    assert "gb" not in Culture(SMALL, seed=0)._b.neurons.variables
    code = neuron_update(SMALL.replace(gaba_b_ratio=1.0))
    assert code.count("gb * (E_gabab - v") == 2 and "gb = gb * exp(-dt / tau_gabab)" in code


def test_gaba_b_is_slow_inhibition_from_the_inhibitory_synapses():
    """Each inhibitory spike adds ratio x w to gb (as it adds w to gi); gb then decays with its
    own time constant, and the culture fires less with it than without it."""
    cfg = SMALL.replace(gaba_b_ratio=2.0, tau_gaba_b_ms=150.0)
    with_b, without = Culture(cfg, seed=4), Culture(SMALL, seed=4)
    with_b.run(1000.0)
    without.run(1000.0)
    assert with_b.firing_rate_hz() < 0.9 * without.firing_rate_hz()
    G = with_b._b.neurons
    gb, gi = np.asarray(G.gb[:]), np.asarray(G.gi[:])
    assert gb.max() > 0 and np.all(gb >= 0)
    # the slow conductance outlasts the fast one: over the last 1 s its level is far above
    # what gi holds, for the neurons that received inhibition
    assert gb.sum() > 5 * gi.sum()
    # decay: with every neuron silenced (no spikes), gb falls by exp(-t / tau) exactly
    G.v_ = -0.080    # SI (volt): rest far below threshold, pulled down by the noise's mean
    G.noise_mean_ = -0.100
    G.noise_sigma_ = 0.0
    before = np.asarray(G.gb[:]).copy()
    with_b.run(30.0)
    assert np.asarray(G.t_last_[:]).max() < 1.0 + 1e-9   # no spike in the last 30 ms
    np.testing.assert_allclose(np.asarray(G.gb[:]), before * np.exp(-30.0 / 150.0), rtol=1e-6)
