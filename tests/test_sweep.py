"""dishbrain sweep: the sweep TOML's checks, the plan, resume, the comparative report, and the Ray
executor (a local cluster: same sessions as the local pool, a killed worker retried)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from dishbrain.cli import main
from dishbrain.experiment import ConfigError, LocalExecutor
from dishbrain.experiment.plan import estimate_seconds, machine_probe, plan_text
from dishbrain.experiment.sweep import INDEX_NAME, SWEEP_NAME, load_sweep
from dishbrain.experiment.sweep_runner import order_sessions, run_sweep
from dishbrain.logs import read_jsonl

TESTS = Path(__file__).resolve().parent

# 2 variants (a grid over a game field) x 2 seeds x 1 condition x 0.1 min of the random paddle.
TINY = """
[sweep]
name = "tiny"
workers = 1
[base.experiment]
player = "{player}"
cultures = 2
minutes = 0.1
conditions = ["stimulus"]
windows = [[0, 0.05], [0.05, 0.1]]
bin_minutes = 0.05
{options}
[grid]
"game.paddle_height" = [250.0, 150.0]
"""


def write(tmp_path: Path, text: str, name: str = "sweep.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def tiny(tmp_path: Path, player: str = "random", options: str = "") -> Path:
    return write(tmp_path, TINY.format(player=player, options=options))


def events(path: Path, root: Path | None = None) -> list[dict]:
    """A session log without its wall-clock fields (when it started, how long it took), and with
    the run folder's path (in the saved cultures' paths) written as ROOT."""
    out = []
    for record in read_jsonl(path):
        record = {k: v for k, v in record.items() if k not in ("started", "wall_s")}
        if root is not None:
            text = json.dumps(record).replace(json.dumps(str(root.resolve()))[1:-1], "ROOT")
            record = json.loads(text)
        out.append(record)
    return out


def logs(out: Path) -> dict[str, list[dict]]:
    return {str(p.relative_to(out)): events(p, out)
            for p in sorted(out.rglob("sessions/*.jsonl"))}


# -- the sweep TOML's checks ---------------------------------------------------------------------

BAD = {
    "unknown field": ("""
        [sweep]
        base = "{base}"
        [grid]
        "culture.culture_config.stdp_taging" = [false, true]
        """, ["stdp_taging", "stdp_tagging"]),
    "unknown experiment key": ("""
        [sweep]
        base = "{base}"
        [[variants]]
        name = "a"
        set = {{ "experiment.minutez" = 2 }}
        """, ["minutez", "allowed:", "minutes"]),
    "unknown player option": ("""
        [sweep]
        base = "{base}"
        [[variants]]
        name = "a"
        set = {{ "culture.n_neuronz" = 2 }}
        """, ["n_neuronz", "allowed:", "n_neurons"]),
    "empty grid": ("""
        [sweep]
        base = "{base}"
        [grid]
        "culture.mea_config.motor_gap_cols" = []
        """, ["culture.mea_config.motor_gap_cols", "empty grid"]),
    "duplicate variant": ("""
        [sweep]
        base = "{base}"
        [[variants]]
        name = "a"
        [[variants]]
        name = "a"
        """, ["'a'", "used twice"]),
    "bad value": ("""
        [sweep]
        base = "{base}"
        [grid]
        "culture.decoder_config.dead_band" = [0.5, -1.0]
        """, ["DecoderConfig.dead_band", "-1.0"]),
    "held-out overlap": ("""
        [sweep]
        base = "{base}"
        [sweep.heldout]
        first_seed = 1
        seeds = 2
        """, ["heldout", "tuning seeds"]),
    "unknown sweep key": ("""
        [sweep]
        base = "{base}"
        seedz = 3
        """, ["seedz", "allowed:"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sweep_is_one_line_exit_2_nothing_written(tmp_path, capsys, case):
    text, needles = BAD[case]
    base = Path(__file__).resolve().parent.parent / "experiments" / "dishbrain-quick.toml"
    path = write(tmp_path, text.format(base=base))
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, (needle, err)
    assert not out.exists()


def test_grid_crossed_with_variants_and_held_out_block(tmp_path):
    base = Path(__file__).resolve().parent.parent / "experiments" / "dishbrain-quick.toml"
    path = write(tmp_path, f"""
        [sweep]
        base = "{base}"
        seeds = 3
        conditions = ["stimulus", "silent"]
        [sweep.heldout]
        first_seed = 100
        seeds = 2
        variants = ["tagged"]
        [[variants]]
        name = "plain"
        [[variants]]
        name = "tagged"
        set = {{ culture.culture_config.stdp_tagging = true }}
        [grid]
        "culture.mea_config.motor_gap_cols" = [0, 1]
        """)
    sweep = load_sweep(path)
    names = [v.name for v in sweep.variants]
    assert names == ["plain+motor_gap_cols-0", "plain+motor_gap_cols-1",
                     "tagged+motor_gap_cols-0", "tagged+motor_gap_cols-1"]
    v = sweep.variants[3]
    assert v.document["culture"]["culture_config"]["stdp_tagging"] is True
    assert v.document["culture"]["mea_config"]["motor_gap_cols"] == 1
    assert v.config.seeds == (0, 1, 2)
    assert [p.condition for p in v.config.players] == ["stimulus", "silent"]
    assert [h.name for h in sweep.heldout] == ["tagged+motor_gap_cols-0",
                                               "tagged+motor_gap_cols-1"]
    assert sweep.heldout[0].config.seeds == (100, 101)
    pairs = sweep.sessions(tmp_path / "out")
    assert len(pairs) == 4 * 3 * 2 + 2 * 2 * 2
    assert [s.seed for _, s in pairs[:8]] == [0] * 8  # seed-major: every variant early
    assert all(s.seed >= 100 for _, s in pairs[-8:])  # the held-out block last
    text = plan_text(sweep, tmp_path / "out", workers=2)
    assert "32 sessions" in text and "CPU-h" in text and "probe" in text
    # The estimate scales with the machine's speed relative to the one that measured it.
    spec = pairs[0][1]
    assert estimate_seconds(spec, speed=2.0) == pytest.approx(estimate_seconds(spec) / 2)
    assert "x2.00" in plan_text(sweep, tmp_path / "out", workers=2, speed=2.0)
    assert machine_probe(0.06) > 1000  # env steps per second, on any machine that runs this


def test_dry_run_writes_nothing(tmp_path, capsys):
    path = tiny(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "paddle_height-250+" not in text and "paddle_height-250" in text
    assert "4 sessions" in text
    assert not out.exists()


@pytest.mark.parametrize("kind, config", [("experiment", "experiments/dishbrain-quick.toml"),
                                          ("compare", "experiments/compare-quick.toml")])
def test_experiment_and_compare_dry_run_print_the_plan_and_write_nothing(tmp_path, capsys, kind,
                                                                         config):
    out = tmp_path / "out"
    root = Path(__file__).resolve().parents[1]
    assert main([kind, str(root / config), "--out", str(out), "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "sessions" in text and "CPU-h" in text and "to play" in text
    assert not out.exists()


# -- running, resuming, reporting (local executor) --------------------------------------------


def test_local_sweep_runs_resumes_and_reports(tmp_path, capsys):
    path = tiny(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    assert "4 played" in capsys.readouterr().out
    index = json.loads((out / INDEX_NAME).read_text())
    assert [r["folder"] for r in index["runs"]] == ["variants/paddle_height-250",
                                                    "variants/paddle_height-150"]
    assert (out / SWEEP_NAME).exists()
    for run in index["runs"]:
        assert (out / run["folder"] / "report.md").exists()
    report = (out / "report.md").read_text()
    assert "paddle_height-150" in report and "Holm" in report
    assert (out / "sweep_ratios.png").stat().st_size > 0
    # The variants really differ: a shorter paddle is a different game.
    found = logs(out)
    assert len(found) == 4
    short = found["variants/paddle_height-150/sessions/stimulus-seed0.jsonl"]
    assert short[0]["env_config"]["paddle_height"] == 150.0

    # Rerun: nothing replayed. The driver killed mid-run (one log cut short) -> only it is.
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    assert "0 played, 4 already finished" in capsys.readouterr().out
    victim = out / "variants/paddle_height-250/sessions/stimulus-seed1.jsonl"
    lines = victim.read_text().splitlines()
    victim.write_text("\n".join(lines[:-1]) + "\n")
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    assert "1 played, 3 already finished" in capsys.readouterr().out
    assert events(victim, out) == found["variants/paddle_height-250/sessions/stimulus-seed1.jsonl"]

    # `dishbrain report SWEEP_FOLDER` rewrites every report from the logs and plays nothing.
    for run in index["runs"]:
        (out / run["folder"] / "report.md").unlink()
    (out / "report.md").unlink()
    victim.write_text("\n".join(lines[:-1]) + "\n")                 # unfinished again
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"sweep report: {out / 'report.md'}" in printed
    assert all((out / run["folder"] / "report.md").exists() for run in index["runs"])
    assert "(3 of 4 sessions finished)" in (out / "report.md").read_text()
    assert victim.read_text().count("\n") == len(lines) - 1            # not replayed


def test_folder_of_another_sweep_is_refused(tmp_path, capsys):
    path = tiny(tmp_path)
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    changed = path.read_text().replace("minutes = 0.1", "minutes = 0.2").replace(
        "[0.05, 0.1]", "[0.05, 0.2]")
    path.write_text(changed)
    assert main(["sweep", str(path), "--out", str(out), "--quiet"]) == 2
    assert "different config" in capsys.readouterr().err


def test_interrupt_keeps_finished_sessions(tmp_path):
    sweep = load_sweep(tiny(tmp_path))
    out = tmp_path / "out"

    class StopAfterTwo:
        """The local executor, with Ctrl-C pressed after its second session."""

        workers = 1

        def run(self, tasks, progress):
            for i, outcome in enumerate(LocalExecutor(1).run(tasks, progress)):
                yield outcome
                if i == 1:
                    raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, out, StopAfterTwo(), progress=False)
    assert len(logs(out)) == 2
    summary = run_sweep(sweep, out, LocalExecutor(1), progress=False)
    assert (summary.skipped, len(summary.ran)) == (2, 2)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["history"][0]["sessions"]["interrupted"] is True


def test_cost_order_queues_cheapest_first_with_the_same_results(tmp_path):
    # The demonstration workload: the culture's 20 minutes first, the RL image players' 200 last.
    sweep = load_sweep(Path(__file__).resolve().parents[1] / "experiments/sample-efficiency.toml")
    specs = [s for _, s in sweep.sessions(tmp_path / "se")]
    queued = order_sessions(specs, "cost")
    assert sorted(map(str, queued)) == sorted(map(str, specs))
    costs = [estimate_seconds(s) for s in queued]
    assert costs == sorted(costs)
    assert {s.player for s in queued[:5]} == {"culture"}
    assert all(s.options.get("obs") == "image" for s in queued[-15:])
    assert order_sessions(specs, "seed") == specs
    with pytest.raises(ConfigError, match="order: 'fast' is not one of seed, cost"):
        order_sessions(specs, "fast")
    # Each session's result does not depend on the queue.
    path = tiny(tmp_path)
    by_seed, by_cost = tmp_path / "a", tmp_path / "b"
    with pytest.raises(ConfigError, match="order: 'fast' is not one of seed, cost"):
        run_sweep(load_sweep(path), by_seed, LocalExecutor(1), progress=False, order="fast")
    assert not by_seed.exists()  # refused before anything was written
    run_sweep(load_sweep(path), by_seed, LocalExecutor(1), progress=False)
    run_sweep(load_sweep(path), by_cost, LocalExecutor(1), progress=False, order="cost")
    assert json.loads((by_cost / "manifest.json").read_text())["order"] == "cost"
    assert len(logs(by_seed)) == 4 and logs(by_seed) == logs(by_cost)


# -- the Ray executor --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster (2 CPUs) for the module: Ray takes ~10-20 s to start."""
    ray = pytest.importorskip("ray", reason="the [cluster] extra (ray) is not installed")
    # Workers import the test players (sweep_players) from here, and play as the tests do.
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(TESTS), old) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


def test_ray_sessions_equal_local_ones(tmp_path, ray_cluster):
    from dishbrain.experiment.ray_executor import RayExecutor

    sweep = load_sweep(tiny(tmp_path))
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_sweep(sweep, local, LocalExecutor(2), progress=False)
    summary = run_sweep(sweep, remote, RayExecutor(max_retries=1), progress=False)
    assert len(summary.ran) == 4 and not summary.failed
    a, b = logs(local), logs(remote)
    assert len(a) == 4 and a == b
    assert (remote / "report.md").read_text().count("paddle_height") >= 2


def test_ray_retries_a_killed_worker(tmp_path, ray_cluster):
    from dishbrain.experiment.ray_executor import RayExecutor

    marker = tmp_path / "killed-once.txt"
    path = tiny(tmp_path, "sweep_players:make_crash_once",
                f'[base.culture]\nmarker = "{marker}"')
    sweep = load_sweep(path)
    summary = run_sweep(sweep, tmp_path / "out", RayExecutor(max_retries=2), progress=False)
    assert marker.exists()  # one task's process was killed ...
    assert not summary.failed and len(summary.ran) == 4  # ... and replayed: the sweep is whole
    assert len(logs(tmp_path / "out")) == 4


def test_ray_without_retries_reports_the_lost_session(tmp_path, ray_cluster):
    from dishbrain.experiment.ray_executor import RayExecutor

    marker = tmp_path / "killed-once.txt"
    path = tiny(tmp_path, "sweep_players:make_crash_once",
                f'[base.culture]\nmarker = "{marker}"')
    summary = run_sweep(load_sweep(path), tmp_path / "out", RayExecutor(max_retries=0),
                        progress=False)
    assert len(summary.failed) == 1 and len(summary.ran) == 3
    assert "ray:" in summary.failed[0][1]


@pytest.mark.slow
def test_ray_culture_sessions_equal_local_ones(tmp_path, ray_cluster):
    """The culture (150 neurons, the runtime backend as in the other tests, with a rest
    recording that travels to the task with it): the same spikes, the same rallies."""
    from dishbrain.experiment.ray_executor import RayExecutor

    path = write(tmp_path, """
        [sweep]
        name = "culture"
        workers = 2
        [base.experiment]
        player = "culture"
        cultures = 1
        minutes = 0.1
        rest_minutes = 0.05
        conditions = ["stimulus"]
        windows = [[0, 0.05], [0.05, 0.1]]
        bin_minutes = 0.05
        [base.culture]
        n_neurons = 150
        [grid]
        "culture.decoder_config.dead_band" = [0.5, 0.0]
        """)
    sweep = load_sweep(path)
    local, remote = tmp_path / "local", tmp_path / "ray"
    run_sweep(sweep, local, LocalExecutor(2), progress=False)
    summary = run_sweep(sweep, remote, RayExecutor(), progress=False)
    assert not summary.failed
    a, b = logs(local), logs(remote)
    assert len(a) == 4 and a == b  # 2 variants x (rest + session)
    assert a["variants/dead_band-0/sessions/stimulus-seed0.jsonl"][0]["agent_config"] != \
        a["variants/dead_band-0.5/sessions/stimulus-seed0.jsonl"][0]["agent_config"]


def test_executor_ray_without_ray_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    path = tiny(tmp_path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--executor", "ray"]) == 2
    assert "[cluster]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
