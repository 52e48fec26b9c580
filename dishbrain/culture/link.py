"""The link between Python and the compiled culture: the C++ the binary calls every tick.

The compiled backend (`dishbrain.culture.standalone`) runs the binary in lock-step with the
Python loop over two pipes. Every ``tick_ms`` a ``run_regularly`` operation (``EXCHANGE_CODE``)
calls ``ds_exchange`` for each neuron; after the last one the binary sums each electrode's spikes
since the last counts Python took (the recording matrix, CSR by neuron, from the file
``DISHBRAIN_RECORD``: int32 indptr[n_neurons + 1], indices[nnz], data[nnz]), writes one message
``int64[MESSAGE_HEADER + n_electrodes]``: the step, the total spike count, then the counts per
electrode, and blocks reading the reply, ``double[1 + 5 * n_electrodes]``: flags (``STOP``: end
the run; ``TAKEN``: Python took these counts, the next ones start from here), then per electrode
the fields ``FIELDS`` (NaN = unchanged). A second ``run_regularly`` (``APPLY_CODE``) writes the
reply into the electrode group through ``ds_cmd``. The spike counters at the last counts taken
start from ``DISHBRAIN_LAST_COUNTS`` (int32 per neuron) and are written to
``DISHBRAIN_LAST_COUNTS_OUT`` when the run ends (``ds_finish``, called after the run in main.cpp).
The file descriptors, the seed and the run's start and duration come from the environment
(``DISHBRAIN_FD_OUT``, ``DISHBRAIN_FD_IN``, ``DISHBRAIN_SEED``, ``DISHBRAIN_T0``,
``DISHBRAIN_DURATION``). Summing in C++ keeps the per-tick message small (64 counts, not one
counter per neuron) and spares Python a sparse product per tick.

`dishbrain.culture.build` compiles these sources into the binary; the random numbers they inline
are those of `dishbrain.culture.rng` (``CPP_HASH``).
"""

from __future__ import annotations

from dishbrain.culture.rng import CPP_HASH

# The electrode group's fields a tick can change, in the reply's order.
FIELDS = ("amplitude", "rate", "t_end", "next_pulse", "random_timing")
# The message: step, total spikes, then the counts per electrode (int64 each).
MESSAGE_HEADER = 2
# Reply flags (its first double).
STOP, TAKEN = 1, 2

LINK_HEADER = r"""
#ifndef DISHBRAIN_LINK_H
#define DISHBRAIN_LINK_H
double ds_exchange(int i, int n_spikes, long long step);
double ds_cmd(int i, int field, double current);
void ds_finish();

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
static std::vector<int32_t> ds_now, ds_last;        // spike counters: now, at the counts taken
static std::vector<int32_t> ds_rec_ptr, ds_rec_el, ds_rec_w;   // recording matrix, by neuron
static std::vector<int64_t> ds_msg;
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

static std::vector<int32_t> ds_read_file(const char* env, size_t offset, size_t count) {
    const char* path = getenv(env);
    if (!path) ds_fail("recording files not set (DISHBRAIN_RECORD / DISHBRAIN_LAST_COUNTS)");
    FILE* f = fopen(path, "rb");
    if (!f) ds_fail("cannot open a recording file");
    std::vector<int32_t> out(count);
    if (fseek(f, (long)(offset * sizeof(int32_t)), SEEK_SET) != 0
            || fread(out.data(), sizeof(int32_t), count, f) != count)
        ds_fail("short recording file");
    fclose(f);
    return out;
}

static void ds_init() {
    const char* o = getenv("DISHBRAIN_FD_OUT");
    const char* in = getenv("DISHBRAIN_FD_IN");
    if (!o || !in) ds_fail("DISHBRAIN_FD_OUT / DISHBRAIN_FD_IN not set");
    ds_fd_out = atoi(o);
    ds_fd_in = atoi(in);
    ds_now.assign(DS_N, 0);
    ds_last = ds_read_file("DISHBRAIN_LAST_COUNTS", 0, DS_N);
    ds_rec_ptr = ds_read_file("DISHBRAIN_RECORD", 0, DS_N + 1);
    const size_t nnz = (size_t)ds_rec_ptr[DS_N];
    ds_rec_el = ds_read_file("DISHBRAIN_RECORD", DS_N + 1, nnz);
    ds_rec_w = ds_read_file("DISHBRAIN_RECORD", DS_N + 1 + nnz, nnz);
    ds_msg.assign(2 + DS_NE, 0);
    ds_reply.assign(1 + DS_NE * 5, NAN);
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
    if (ds_fd_out < 0) ds_init();
    ds_now[i] = n_spikes;
    if (i == DS_N - 1) {
        int64_t* counts = ds_msg.data() + 2;
        int64_t total = 0;
        for (int e = 0; e < DS_NE; e++) counts[e] = 0;
        for (int j = 0; j < DS_N; j++) {
            total += ds_now[j];
            const int64_t d = (int64_t)ds_now[j] - ds_last[j];
            if (d != 0)
                for (int32_t r = ds_rec_ptr[j]; r < ds_rec_ptr[j + 1]; r++)
                    counts[ds_rec_el[r]] += d * ds_rec_w[r];
        }
        ds_msg[0] = step;
        ds_msg[1] = total;
        ds_write_all(ds_msg.data(), sizeof(int64_t) * ds_msg.size());
        ds_read_all(ds_reply.data(), sizeof(double) * ds_reply.size());
        const int flags = (int)ds_reply[0];
        if (flags & 2) ds_last = ds_now;
        if (flags & 1) Network::_globally_stopped = true;
    }
    return 0.0;
}

void ds_finish() {
    const char* path = getenv("DISHBRAIN_LAST_COUNTS_OUT");
    if (!path) return;
    if (ds_last.empty()) ds_last = ds_read_file("DISHBRAIN_LAST_COUNTS", 0, DS_N);
    FILE* f = fopen(path, "wb");
    if (!f || fwrite(ds_last.data(), sizeof(int32_t), DS_N, f) != (size_t)DS_N)
        ds_fail("cannot write DISHBRAIN_LAST_COUNTS_OUT");
    fclose(f);
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
