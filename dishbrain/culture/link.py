"""The link between Python and the compiled culture: the C++ the binary calls every tick.

The compiled backend (`dishbrain.culture.standalone`) runs the binary in lock-step with the
Python loop over two pipes. Every ``tick_ms`` a ``run_regularly`` operation (``EXCHANGE_CODE``)
calls ``ds_exchange`` for each neuron; after the last one the binary writes one message,
``int64 step`` then ``int32 n_spikes[n_neurons]`` (the neurons' spike counters), and blocks
reading the reply, ``double[1 + 5 * n_electrodes]``: a stop flag, then per electrode the fields
``FIELDS`` (NaN = unchanged). A second ``run_regularly`` (``APPLY_CODE``) writes the reply into the
electrode group through ``ds_cmd``. The file descriptors, the seed and the run's start and
duration come from the environment (``DISHBRAIN_FD_OUT``, ``DISHBRAIN_FD_IN``, ``DISHBRAIN_SEED``,
``DISHBRAIN_T0``, ``DISHBRAIN_DURATION``).

`dishbrain.culture.build` compiles these sources into the binary; the random numbers they inline
are those of `dishbrain.culture.rng` (``CPP_HASH``).
"""

from __future__ import annotations

from dishbrain.culture.rng import CPP_HASH

# The electrode group's fields a tick can change, in the reply's order.
FIELDS = ("amplitude", "rate", "t_end", "next_pulse", "random_timing")

LINK_HEADER = r"""
#ifndef DISHBRAIN_LINK_H
#define DISHBRAIN_LINK_H
double ds_exchange(int i, int n_spikes, long long step);
double ds_cmd(int i, int field, double current);

// The random numbers are inline here, not in dishbrain_link.cpp, so that the per-neuron noise
// loop makes no function calls (and vectorises).
extern const long long ds_seed8;
""" + CPP_HASH + r"""#endif
"""

LINK_SOURCE = r"""
#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <cmath>
#include <vector>
#include "network.h"
#include "dishbrain_link.h"

static int ds_fd_out = -1, ds_fd_in = -1;
static std::vector<int32_t> ds_counts;
static std::vector<double> ds_reply;
// Set before main() runs, i.e. before any code object draws a random number.
extern const long long ds_seed8 = [] {
    const char* s = getenv("DISHBRAIN_SEED");
    return s ? atoll(s) * 8 : 0LL;
}();

static void ds_fail(const char* what) {
    fprintf(stderr, "dishbrain link: %s\n", what);
    exit(3);
}

static void ds_write_all(const void* buf, size_t n) {
    const char* p = (const char*)buf;
    while (n > 0) {
        ssize_t k = write(ds_fd_out, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) ds_fail("write failed");
        p += k; n -= (size_t)k;
    }
}

static void ds_read_all(void* buf, size_t n) {
    char* p = (char*)buf;
    while (n > 0) {
        ssize_t k = read(ds_fd_in, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) ds_fail("read failed (parent gone)");
        p += k; n -= (size_t)k;
    }
}

double ds_exchange(int i, int n_spikes, long long step) {
    if (ds_fd_out < 0) {
        const char* o = getenv("DISHBRAIN_FD_OUT");
        const char* in = getenv("DISHBRAIN_FD_IN");
        if (!o || !in) ds_fail("DISHBRAIN_FD_OUT / DISHBRAIN_FD_IN not set");
        ds_fd_out = atoi(o);
        ds_fd_in = atoi(in);
        ds_counts.assign(DS_N, 0);
        ds_reply.assign(1 + DS_NE * 5, NAN);
    }
    ds_counts[i] = n_spikes;
    if (i == DS_N - 1) {
        int64_t s = step;
        ds_write_all(&s, sizeof(s));
        ds_write_all(ds_counts.data(), sizeof(int32_t) * DS_N);
        ds_read_all(ds_reply.data(), sizeof(double) * ds_reply.size());
        if (ds_reply[0] != 0.0) Network::_globally_stopped = true;
    }
    return 0.0;
}

double ds_cmd(int i, int field, double current) {
    if (ds_reply.empty()) return current;
    double v = ds_reply[1 + i * 5 + field];
    return std::isnan(v) ? current : v;
}
"""

EXCHANGE_CODE = "_ds_dummy = ds_exchange(i, n_spikes, t_in_timesteps)"
APPLY_CODE = """
amplitude = ds_cmd(i, 0, amplitude / volt) * volt
rate = ds_cmd(i, 1, rate / Hz) * Hz
t_end = ds_cmd(i, 2, t_end / second) * second
next_pulse = ds_cmd(i, 3, next_pulse / second) * second
random_timing = ds_cmd(i, 4, random_timing)
"""
