"""The culture behind Cortical Labs' CL API (dishbrain.cl; the [cl] extra, Python >= 3.12).

Without cl-sdk (Python 3.11) only the import hint is tested; the rest is skipped with the reason.
Small cultures on the runtime backend (tests/conftest.py), accelerated time, a few seconds each.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HAVE_CL = importlib.util.find_spec("cl") is not None and sys.version_info >= (3, 12)
needs_cl = pytest.mark.skipif(not HAVE_CL, reason="cl-sdk (the [cl] extra) is not installed; "
                              "it needs Python >= 3.12: pip install 'dishbrain[cl]'")
ROOT = Path(__file__).resolve().parents[1]
SMALL = {"seed": 3, "n_neurons": 300, "backend": "runtime"}


@pytest.mark.skipif(HAVE_CL, reason="cl-sdk is installed: the hint is for its absence")
def test_import_without_cl_names_the_extra():
    with pytest.raises(ImportError) as err:
        import dishbrain.cl  # noqa: F401
    msg = str(err.value)
    assert 'pip install "dishbrain[cl]"' in msg and "3.12" in msg and "\n" not in msg


@needs_cl
def test_cli_cl_check_rejects_bad_channel(capsys):
    from dishbrain.cli import main

    assert main(["cl-check", "--channels", "65"]) == 2
    assert "--channels must be CL1 channels in [0, 63], got [65]" in capsys.readouterr().err


@needs_cl
@pytest.mark.parametrize("config, message", [
    ({"sede": 1}, "unknown dishbrain.cl:culture_source config field(s) ['sede']"),
    ({"seed": -1}, "CultureSourceConfig.seed must be an integer in [0, 134217727], got -1"),
    ({"channel_count": 65}, "CultureSourceConfig.channel_count must be 64"),
    ({"silent_channels": [0, 65]}, "CultureSourceConfig.silent_channels must be channels in "
                                   "[0, 63], got [65]"),
    ({"mea": {"rows": 5, "cols": 13}}, "CultureSourceConfig.mea must keep 64 electrodes"),
    ({"culture": {"dt_ms": 5}}, "CultureConfig.dt_ms must be"),
    ({"frames": "pink"}, "CultureSourceConfig.frames must be one of ('synthetic', 'zeros')"),
    ({"state": "/nonexistent.npz"}, "CultureSourceConfig.state must be a saved culture"),
])
def test_bad_config_is_one_clear_error(config, message):
    from dishbrain.cl import culture_source

    with pytest.raises(ValueError) as err:
        culture_source(**config)
    assert message in str(err.value) and "\n" not in str(err.value)


@needs_cl
def test_bad_config_fails_at_cl_open():
    import cl

    cl.sim.set_simulator_data_source("dishbrain.cl:culture_source", config={"seed": -1})
    try:
        with pytest.raises(ValueError, match="seed must be an integer"), cl.open():
            pass
    finally:
        cl.sim.clear_simulator_data_source()


@needs_cl
def test_pulse_amplitude_is_charge_of_the_strongest_phase():
    from dishbrain.cl import pulse_amplitude_mv

    assert pulse_amplitude_mv((160, 160), (-1.0, 1.0)) == pytest.approx(40.0)
    assert pulse_amplitude_mv((200, 200), (-1.5, 1.5)) == pytest.approx(75.0)
    assert pulse_amplitude_mv((100, 400), (-2.0, 0.5), mv_per_ua=10.0,
                              reference_phase_us=100.0) == pytest.approx(20.0)


@needs_cl
@pytest.mark.slow
def test_stim_through_the_api_fires_neurons_near_the_electrode_within_20_ms():
    from dishbrain.cl.check import evoked_response

    rows = evoked_response("culture", {**SMALL, "frames": "zeros"}, channels=(27,), repeats=4,
                           current_ua=2.0, window_ms=20.0, gap_ms=300.0, settle_ms=200.0,
                           seed=SMALL["seed"])
    (r,) = rows
    assert r.stims == 4
    after, before = r.own_after + r.near_after, r.own_before + r.near_before
    assert after >= 2 * r.stims, (after, before)        # every pulse answers near the electrode
    assert after > 3 * before, (after, before)
    assert r.first_latency_ms and max(r.first_latency_ms) < 20.0


@needs_cl
@pytest.mark.slow
def test_without_stimulation_the_rate_is_the_cultures_own():
    """The same seed through the API and run directly: the same spikes per electrode (the
    lock-step adds nothing; tolerance 2 %, observed 0)."""
    import cl

    from dishbrain.culture import CultureConfig, make_culture

    seconds = 2.0
    os.environ["CL_SDK_ACCELERATED_TIME"] = "1"
    cl.sim.set_simulator_data_source("dishbrain.cl:culture_source",
                                     config={**SMALL, "frames": "zeros", "silent_channels": []})
    try:
        with cl.open() as neurons:
            res = neurons.read(int(seconds * 25_000), 0, analysis=True)
    finally:
        cl.sim.clear_simulator_data_source()
    api = np.bincount([s.channel for s in res.spikes], minlength=64)

    culture = make_culture(CultureConfig(n_neurons=SMALL["n_neurons"]), seed=SMALL["seed"],
                           backend="runtime")
    direct = np.zeros(64, dtype=np.int64)

    def tick(t_ms, counts):
        direct[:] += counts

    culture.run(seconds * 1000.0, tick=tick, tick_ms=culture.config.dt_ms)
    direct += culture.electrode_counts()     # the last tick
    assert direct.sum() > 50
    assert abs(int(api.sum()) - int(direct.sum())) <= 0.02 * direct.sum()
    np.testing.assert_allclose(api, direct, atol=max(2, 0.02 * direct.max()))


def _run_example(script: str, args: list[str], tmp_path: Path, culture: bool):
    env = dict(os.environ, CL_SDK_ACCELERATED_TIME="1", CL_SDK_VISUALISATION="0",
               CL_SDK_RANDOM_SEED="1", CL_SDK_REPLAY_START_OFFSET="0")
    env.pop("CL_SDK_DATA_SOURCE", None)
    if culture:
        env["CL_SDK_DATA_SOURCE"] = "dishbrain.cl:culture_source"
        env["CL_SDK_DATA_SOURCE_CONFIG"] = json.dumps({**SMALL, "frames": "synthetic"})
    return subprocess.run([sys.executable, str(ROOT / "examples" / script), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@needs_cl
@pytest.mark.slow
@pytest.mark.parametrize("culture", [True, False], ids=["culture", "stock"])
def test_cl_pong_plays_and_writes_a_log_dishbrain_analyze_reads(tmp_path, culture):
    from dishbrain.logs import read_session_log
    from dishbrain.metrics import load_sessions

    log = tmp_path / "pong.jsonl"
    out = _run_example("cl_pong.py", ["--minutes", "0.1", "--log", str(log)], tmp_path, culture)
    assert out.returncode == 0, out.stderr[-3000:]
    events = read_session_log(log)
    assert events.finished and events.end["step"] == 600
    assert events.events[0] == ("serve", 0.0)
    assert len(load_sessions(log)) == 1
    from dishbrain.cli import main

    assert main(["analyze", str(log)]) == 0


@needs_cl
@pytest.mark.slow
@pytest.mark.parametrize("culture", [True, False], ids=["culture", "stock"])
def test_cl_stim_response_prints_its_table(tmp_path, culture):
    out = _run_example("cl_stim_response.py", ["--channels", "27", "--repeats", "2",
                                               "--gap-ms", "100"], tmp_path, culture)
    assert out.returncode == 0, out.stderr[-3000:]
    row = [ln for ln in out.stdout.splitlines() if ln.strip().startswith("27 |")]
    assert len(row) == 1


@needs_cl
@pytest.mark.slow
def test_save_state_then_state_continues_the_culture(tmp_path):
    """The source saves the culture when it closes; a source built from that file starts where
    it stopped (driven here through the source's own calls, as cl-sdk's producer drives it)."""
    from dishbrain.cl import culture_source

    path = tmp_path / "c.npz"
    first = culture_source(**SMALL, frames="zeros", save_state=str(path))
    first.open()
    first.read(0, 12_500)                  # 0.5 s
    first.close()
    assert path.is_file()
    second = culture_source(state=str(path), backend="runtime", frames="zeros")
    second.open()
    batch = second.read(0, 250)
    assert second._lock.culture.t_ms >= 500.0
    assert batch.frames is None
    second.close()
