"""The compiled backend's spike queue: a ring of spiking neurons, synapses grouped by delay.

Brian2's ``CSpikeQueue`` pushes every synapse of every spike into the vector of the step its
delay ends in (a modulo and a ``push_back`` per synapse), and its ``SynapticPathway`` copies
that vector again on every ``peek``. At 10k neurons these pushes took ~13 % of the closed loop
(perf, issue 16). ``DELAY_QUEUE`` replaces the class in the generated project
(``brianlib/spikequeue.h``) with the same interface: ``prepare`` sorts each source neuron's
synapses by delay once (stably, so synapses of one delay keep their index order); ``push``
stores only the step's spiking neurons in a ring of max-delay + 1 slots; ``peek`` lists the
synapses whose delay ends now by copying contiguous runs: for each delay from the longest to 0,
the spikes of that many steps ago in spike order, each with its run of that delay.

That is exactly the order Brian2's queue delivers in (pushes of earlier steps first; within a
step, spikes in index order, each neuron's synapses in index order), so the pathways apply the
same events in the same order and results are bit-identical. ``_full_state`` rebuilds Brian2's
representation (the results folder's queue files are unchanged); restored state is kept as
explicit lists delivered before anything pushed later, as in Brian2.

``patch_project`` writes it into a generated project and makes ``SynapticPathway::peek`` hand
out the queue's list instead of a copy (one thread: Brian2's copy only merges per-thread queues).
"""

from __future__ import annotations

import re
from pathlib import Path

DELAY_QUEUE = r"""#ifndef C_SPIKEQUEUE_H
#define C_SPIKEQUEUE_H
// dishbrain (dishbrain/culture/queue.py): Brian2's CSpikeQueue interface, spikes kept per step
// and synapses grouped by delay; delivers the same synapses in the same order.
#include<iostream>
#include<vector>
#include<algorithm>
#include<iterator>
#include<cstring>
#include"stdint_compat.h"
#include<assert.h>
using namespace std;

class CSpikeQueue
{
public:
    double dt;
    int offset;               // ring slot of the current step
    int openmp_padding;
    int32_t source_start;
    int32_t source_end;
    int n_slots;              // max_delay + 1
    int min_delay, max_delay;
    vector<int32_t> by_delay;               // synapse indices, per source then delay
    vector<int64_t> run_start;              // (n_sources * n_slots + 1) offsets into by_delay
    vector< vector<int32_t> > spikes;       // per ring slot: the local indices that spiked
    vector< vector<int32_t> > restored;     // per ring slot: lists _restore_from_full_state gave
    vector<int32_t> out;                    // the current step's synapses (peek)
    bool have_restored;

    CSpikeQueue(int _source_start, int _source_end)
        : dt(0.0), offset(0), openmp_padding(0), source_start(_source_start),
          source_end(_source_end), n_slots(1), min_delay(0), max_delay(0), have_restored(false)
    {
        spikes.resize(1);
        restored.resize(1);
        run_start.assign((size_t)(source_end - source_start) + 1, 0);
    };

    template <typename scalar> void prepare(scalar *real_delays, int n_delays,
                 int32_t *sources, int n_synapses,
                 double _dt)
    {
        assert(n_delays == 1 || n_delays == n_synapses);
        const int n_src = source_end - source_start;
        vector<int> delays(n_synapses > 0 ? n_synapses : 1, 0);
        int lo = 0, hi = 0;
        for (int i = 0; i < n_synapses; i++)
        {
            const scalar real = n_delays == 1 ? real_delays[0] : real_delays[i];
            delays[i] = (int)(real / _dt + 0.5);   // Brian2's rounding
            if (i == 0 || delays[i] > hi) hi = delays[i];
            if (i == 0 || delays[i] < lo) lo = delays[i];
        }
        if (n_synapses == 0 && n_delays > 0)
            lo = hi = (int)(real_delays[0] / _dt + 0.5);
        // Spikes in the ring survive a new prepare only if the layout is unchanged.
        const bool same = (dt == _dt) && (hi + 1 == n_slots) && (lo == min_delay);
        min_delay = lo;
        max_delay = hi;
        const int slots = hi + 1;
        const size_t n_runs = (size_t)n_src * slots;
        run_start.assign(n_runs + 1, 0);
        for (int i = 0; i < n_synapses; i++)
            run_start[(size_t)(sources[i] - source_start) * slots + delays[i] + 1]++;
        for (size_t r = 0; r < n_runs; r++)
            run_start[r + 1] += run_start[r];
        by_delay.assign(n_synapses > 0 ? n_synapses : 1, 0);
        vector<int64_t> fill(run_start.begin(), run_start.end() - 1);
        for (int i = 0; i < n_synapses; i++)   // ascending i: stable within a run
            by_delay[fill[(size_t)(sources[i] - source_start) * slots + delays[i]]++]
                = i + openmp_padding;
        if (!same)
        {
            spikes.assign(slots, vector<int32_t>());
            restored.assign(slots, vector<int32_t>());
            have_restored = false;
            offset = 0;
        }
        n_slots = slots;
        dt = _dt;
    }

    // Brian2's representation: (offset, queue) with queue[(offset + i) % size] the synapses
    // delivered i steps from now (i = 0: the current step, as peek returned it).
    pair <int, vector< vector<int32_t> > > _full_state() const
    {
        vector< vector<int32_t> > queue(n_slots);
        for (int i = 0; i < n_slots; i++)
        {
            vector<int32_t> &list = queue[(offset + i) % n_slots];
            list = restored[(offset + i) % n_slots];
            for (int d = max_delay; d >= i && d >= min_delay; d--)
                append_runs(list, (offset + i - d + n_slots) % n_slots, d);
        }
        return pair <int, vector< vector<int32_t> > >(offset, queue);
    }

    void _clear()
    {
    }

    void _restore_from_full_state(const pair <int, vector< vector<int32_t> > > state)
    {
        const vector< vector<int32_t> > &stored = state.second;
        const int size = stored.size() > 0 ? (int)stored.size() : 1;
        if (size > n_slots)
        {
            n_slots = size;
            max_delay = size - 1;
        }
        spikes.assign(n_slots, vector<int32_t>());
        restored.assign(n_slots, vector<int32_t>());
        offset = 0;
        have_restored = false;
        for (int i = 0; i < (int)stored.size(); i++)
        {
            restored[i] = stored[(state.first + i) % stored.size()];
            have_restored = have_restored || !restored[i].empty();
        }
    }

    inline void append_runs(vector<int32_t> &list, int slot, int d) const
    {
        const vector<int32_t> &who = spikes[slot];
        for (size_t k = 0; k < who.size(); k++)
        {
            const size_t r = (size_t)who[k] * n_slots + d;
            const int64_t a = run_start[r], b = run_start[r + 1];
            if (b > a)
                list.insert(list.end(), by_delay.begin() + a, by_delay.begin() + b);
        }
    }

    void push(int32_t *spikes_in, int nspikes)
    {
        if(nspikes==0) return;
        int32_t* const end = spikes_in + nspikes;
        const int start = (int)distance(spikes_in, lower_bound(spikes_in, end, source_start));
        const int stop = (int)distance(spikes_in, upper_bound(spikes_in, end, source_end - 1));
        vector<int32_t> &slot = spikes[offset];
        for (int k = start; k < stop; k++)
            slot.push_back(spikes_in[k] - source_start);
    };

    inline vector<int32_t>* peek()
    {
        out.clear();
        if (have_restored)
            out.insert(out.end(), restored[offset].begin(), restored[offset].end());
        for (int d = max_delay; d >= min_delay; d--)
            append_runs(out, (offset - d + n_slots) % n_slots, d);
        return &out;
    };

    void advance()
    {
        offset = (offset + 1) % n_slots;
        spikes[offset].clear();
        if (have_restored)
        {
            restored[(offset + n_slots - 1) % n_slots].clear();
            have_restored = false;
            for (int i = 0; i < n_slots; i++)
                have_restored = have_restored || !restored[i].empty();
        }
    };
};

extern ostream& operator<<(ostream& os, const CSpikeQueue& queue);
extern istream& operator>>(istream& is, CSpikeQueue& queue);
#endif
"""

# SynapticPathway::peek with one thread: the queue's own list, not a copy of it.
_PEEK = re.compile(r"vector<int32_t>\* peek\(\)\s*\{.*?return &all_peek;\s*\}", re.S)
_PEEK_DIRECT = "vector<int32_t>* peek()\n    {\n    \treturn queue[0]->peek();\n    }"


def patch_project(project: Path) -> None:
    """Put ``DELAY_QUEUE`` into a generated cpp_standalone project (before ``make``)."""
    (project / "brianlib" / "spikequeue.h").write_text(DELAY_QUEUE)
    classes = project / "synapses_classes.h"
    text = classes.read_text()
    if "_nb_threads = 1;" not in text:
        raise RuntimeError("synapses_classes.h: expected one thread per pathway")
    new, count = _PEEK.subn(_PEEK_DIRECT, text)
    if count != 1:
        raise RuntimeError("synapses_classes.h: cannot find SynapticPathway::peek")
    classes.write_text(new)
