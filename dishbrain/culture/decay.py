"""The compiled backend's decay factors on the time grid: exp(-elapsed / tau) from a table.

Event-driven synapse variables and the closed-form traces decay by exp(-(t - t_x) / tau) at each
synaptic event (Brian2 writes ``exp(_lio_1 * (- (t - lastupdate)))`` for the presynaptic STDP
trace and ``exp(_lio_2 * (_lio_3 + t_last_post))``, with ``_lio_3 = 0.0 - t``, for the
postsynaptic one): two to four libm calls per E->E event. ``t`` and every ``t_x`` lie on the
simulation's grid, so the elapsed time is a whole number k of steps, and the factor is
exp(-k dt / tau): ``patch_decays`` replaces each such call in the synaptic pathways' code
objects with ``ds_decay``, a lookup in a table of ``TABLE_SIZE`` factors per time constant,
filled once per process with libm's exp (issue 16: 24 % less CPU at 10,000 neurons, 12.7 -> 9.6 s
for 20 s simulated, medians of 8 runs of ``benchmarks/culture_speed.py --sizes 10000``
interleaved with the libm build's binary).

Beyond the table (k >= ``TABLE_SIZE``, i.e. 2 s at dt 0.5 ms), for a negative or non-finite
elapsed time, ``ds_decay`` calls exp as before. Inside it, each factor equals libm's
exp(-(k dt) / tau); the generated code computed exp(-(t - t_x) / tau), whose argument can differ
from that in the last bit (t and t_x are each rounded), so a factor can differ from the libm
build's by an ulp. In the tests it changes nothing: the golden standalone session (recorded with
libm's exp) plays event for event, and the equivalence test's cultures match the runtime
backend's spike for spike, their weights within 1e-9.

Only the code objects of synaptic pathways are patched (per event); neuron code (one decay per
spike) is left as Brian2 wrote it. A code object whose text does not match the patterns (another
Brian2 version) keeps its exp calls: slower, not wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

TABLE_SIZE = 4096

HEADER = r"""
// dishbrain (dishbrain/culture/decay.py): exp(-elapsed * inv_tau) for elapsed on the time grid.
#ifndef DS_DECAY_DEFINED
#define DS_DECAY_DEFINED
#include <cmath>
#define DS_DECAY_N {size}
static const double ds_decay_dt = {dt!r};
static const double ds_decay_inv_dt = {inv_dt!r};
static inline void ds_decay_fill(double* table, double inv_tau)
{{
    for (int k = 0; k < DS_DECAY_N; k++)
        table[k] = exp(-(k * ds_decay_dt) * inv_tau);
}}
static inline double ds_decay(const double* table, double inv_tau, double elapsed)
{{
    const double x = elapsed * ds_decay_inv_dt + 0.5;
    if (x >= 0.0 && x < DS_DECAY_N)
        return table[(int)x];
    return exp(-elapsed * inv_tau);
}}
#endif
"""

# A loop invariant 1 / tau, as Brian2 writes it.
_INV_TAU = re.compile(r"const double (_lio_\d+) = 1\.0f\*1\.0/\w+;")
# exp(_lio_A * (- (t - lastupdate)))
_SINCE_UPDATE = re.compile(r"exp\((_lio_\d+) \* \(- \(t - lastupdate\)\)\)")
# exp(_lio_A * (_lio_B + t_x)) with _lio_B = 0.0 - t
_SINCE_SPIKE = re.compile(r"exp\((_lio_\d+) \* \((_lio_\d+) \+ (\w+)\)\)")
_MINUS_T = "const double {} = 0.0 - t;"


def patch_code(text: str, dt_s: float) -> tuple[str, int]:
    """One code object's text with its grid decays looked up; returns (text, calls replaced)."""
    # each loop invariant 1 / tau by name, with its definition (where its table is filled)
    inv_taus = {m.group(1): m.group(0) for m in _INV_TAU.finditer(text)}
    used: set[str] = set()

    def since_update(m: re.Match) -> str:
        a = m.group(1)
        if a not in inv_taus:
            return m.group(0)
        used.add(a)
        return f"ds_decay(_ds_tab{a}, {a}, t - lastupdate)"

    def since_spike(m: re.Match) -> str:
        a, b, tx = m.groups()
        if a not in inv_taus or _MINUS_T.format(b) not in text:
            return m.group(0)
        used.add(a)
        return f"ds_decay(_ds_tab{a}, {a}, t - {tx})"

    text = _SINCE_SPIKE.sub(since_spike, _SINCE_UPDATE.sub(since_update, text))
    replaced = text.count("ds_decay(_ds_tab")
    if not used:
        return text, 0
    for a in sorted(used):
        fill = (f"\n    static double _ds_tab{a}[DS_DECAY_N];"
                f"\n    static double _ds_inv{a} = -1.0;"
                f"\n    if (_ds_inv{a} != {a}) "
                f"{{ ds_decay_fill(_ds_tab{a}, {a}); _ds_inv{a} = {a}; }}")
        text = text.replace(inv_taus[a], inv_taus[a] + fill, 1)
    header = HEADER.format(size=TABLE_SIZE, dt=float(dt_s), inv_dt=1.0 / float(dt_s))
    first = text.index("#include")
    return text[:first] + header + text[first:], replaced


def patch_decays(project: Path, dt_s: float) -> int:
    """Patch every synaptic pathway code object of a generated project (before ``make``);
    returns how many exp calls were replaced."""
    total = 0
    for path in sorted((project / "code_objects").glob("*synapses*_p*_codeobject.cpp")):
        if not re.search(r"_(pre|post)_codeobject\.cpp$", path.name):
            continue
        text, n = patch_code(path.read_text(), dt_s)
        if n:
            path.write_text(text)
            total += n
    return total
