"""What the compiled backend patches into Brian2's generated project, on text and in arithmetic:
the decay table (dishbrain.culture.decay) and the run loop's clock (dishbrain.culture.build)."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest

from dishbrain.culture.build import _STEP_CLOCK, _patch_run_loop
from dishbrain.culture.decay import HEADER, TABLE_SIZE, patch_code

# The shapes Brian2 writes for an E->E pathway (trimmed from a generated code object).
SNIPPET = """#include "objects.h"
void _run_culture_synapses_ee_pre_codeobject()
{
    const double t = _ptr_array_culture_clock_t[0];
    const double _lio_1 = 1.0f*1.0/tau_plus;
    const double _lio_2 = 1.0f*1.0/tau_minus;
    const double _lio_3 = 0.0 - t;
    const double _lio_4 = 0.5 - t;
    for (int k = 0; k < n; k++) {
        const double _apre = apre * exp(_lio_1 * (- (t - lastupdate)));
        w = _clip(w - (A_minus * (apost_post * exp(_lio_2 * (_lio_3 + t_last_post)))), 0, 1);
        x = exp(_lio_2 * (_lio_4 + t_last_post));
        y = exp(_lio_9 * (- (t - lastupdate)));
    }
}
"""


def test_patch_replaces_the_grid_decays_only():
    text, n = patch_code(SNIPPET, 0.0005)
    assert n == 2
    assert "apre * ds_decay(_ds_tab_lio_1, _lio_1, t - lastupdate)" in text
    assert "ds_decay(_ds_tab_lio_2, _lio_2, t - t_last_post)" in text
    # not "0.5 - t" (not the current time), not an unknown constant: left as Brian2 wrote them
    assert "x = exp(_lio_2 * (_lio_4 + t_last_post));" in text
    assert "y = exp(_lio_9 * (- (t - lastupdate)));" in text
    # one table per time constant, filled after its definition; the header before the includes
    assert text.count("ds_decay_fill(_ds_tab_lio_1, _lio_1)") == 1
    assert text.index("#define DS_DECAY_DEFINED") < text.index('#include "objects.h"')
    assert text.index("const double _lio_1") < text.index("static double _ds_tab_lio_1")


def test_patch_leaves_other_code_alone():
    other = '#include "objects.h"\nvoid f() { v = exp(-dt / tau); }\n'
    assert patch_code(other, 0.0005) == (other, 0)


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++")
def test_table_equals_exp_on_the_grid_and_falls_back_off_it(tmp_path):
    dt, tau = 0.0005, 0.02
    src = tmp_path / "t.cpp"
    src.write_text(HEADER.format(size=TABLE_SIZE, dt=dt, inv_dt=1.0 / dt) + r"""
#include <cstdio>
static double table[DS_DECAY_N];
int main() {
    const double inv_tau = 1.0 / 0.02;
    ds_decay_fill(table, inv_tau);
    double x;
    while (scanf("%lf", &x) == 1) printf("%.17g\n", ds_decay(table, inv_tau, x));
    return 0;
}
""")
    exe = tmp_path / "t"
    subprocess.run(["g++", "-O2", str(src), "-o", str(exe)], check=True)
    steps = np.arange(0, TABLE_SIZE + 50)
    t_now = 12345 * dt
    on_grid = t_now - (12345 - steps) * dt          # as the code computes t - t_x
    off = np.array([-dt, -1.0, 0.3 * dt, 3.7 * dt, 5.0, 1e9])
    values = np.concatenate([on_grid, off])
    out = subprocess.run([str(exe)], input="\n".join(repr(float(v)) for v in values),
                         capture_output=True, text=True, check=True).stdout.split()
    got = np.array([float(v) for v in out])
    want = np.array([math.exp(-float(v) / tau) for v in values])
    np.testing.assert_allclose(got[:len(on_grid)], want[:len(on_grid)], rtol=1e-13, atol=0)
    # off the grid the nearest step's factor, beyond the table or negative: exp itself
    near = [math.exp(-round(v / dt) * dt / tau) for v in off[2:4]]
    np.testing.assert_allclose(got[len(on_grid) + 2:len(on_grid) + 4], near, rtol=1e-13)
    for k in (0, 1, 4, 5):
        assert got[len(on_grid) + k] == pytest.approx(want[len(on_grid) + k], rel=1e-13, abs=0)


RUN_LOOP = """    while(clock && clock->running() && !Network::_globally_stopped)
    {
        clock = next_clocks();
""" + _STEP_CLOCK + """
    }
    Network::_globally_running = false;
    _last_run_time = elapsed_realtime;
"""


def test_run_loop_reads_the_clock_once(tmp_path):
    (tmp_path / "network.cpp").write_text(RUN_LOOP)
    _patch_run_loop(tmp_path)
    text = (tmp_path / "network.cpp").read_text()
    assert _STEP_CLOCK not in text and text.count("std::clock()") == 1
    assert (text.index("std::clock()") > text.index("    }\n")
            and text.index("std::clock()") < text.index("_last_run_time"))
    # a loop of another shape is left alone
    (tmp_path / "network.cpp").write_text("while (1) { f(); }\n")
    _patch_run_loop(tmp_path)
    assert (tmp_path / "network.cpp").read_text() == "while (1) { f(); }\n"
