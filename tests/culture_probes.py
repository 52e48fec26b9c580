"""Helpers the culture tests share: a noiseless small culture and forced spike schedules.

Imported by tests/test_culture.py and tests/test_plasticity_rules.py (pytest puts tests/ on the
path, as for tests/sweep_players.py).
"""

from dishbrain.culture import CultureConfig

# No background noise: nothing fires unless the test makes it.
QUIET = CultureConfig(n_neurons=200, noise_exc_sigma_mv=0.0, noise_inh_sigma_mv=0.0,
                      homeostasis_enabled=False)


def spike_forcer(culture, schedule):
    """A tick callback (tick_ms = dt) that makes neurons spike at given times.

    schedule: {t_ms: [neuron, ...]}; v is set above threshold at t_ms, so the neuron spikes in
    that time step.
    """
    v = culture._b.neurons.variables["v"].get_value()
    plan = {round(t / culture.config.dt_ms): list(n) for t, n in schedule.items()}

    def tick(t_ms, counts):
        k = round(t_ms / culture.config.dt_ms)
        if k in plan:
            v[plan[k]] = 0.05   # 50 mV, in volts
    return tick


def pairings(c, pre, post, delay, start_ms, n_pairs, lag_ms=10.0, every_ms=200.0):
    """A schedule of n_pairs pre->post pairings, the postsynaptic spike lag_ms after the
    presynaptic spike's arrival (lag_ms < 0: before it)."""
    dt = c.config.dt_ms
    schedule = {}
    for p in range(n_pairs):
        t_pre = start_ms + every_ms * p
        arrival = t_pre + round(delay / dt) * dt
        schedule.setdefault(t_pre, []).append(pre)
        schedule.setdefault(arrival + lag_ms, []).append(post)
    return schedule
