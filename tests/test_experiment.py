"""The protocol runner (dishbrain/experiment.py) and its report (dishbrain/report.py).

Fast: the reference players (random, static, tracker) stand in for the culture, in sessions of
a minute or less (a 1-minute session of a reference player plays in a few tens of ms).
"""

from __future__ import annotations

import json
import math
import os
import textwrap
from pathlib import Path

import numpy as np
import pytest

from agents.simple import StaticAgent
from dishbrain.cli import main
from dishbrain.experiment import (
    ConfigError,
    LocalExecutor,
    load_config,
    load_run_config,
    parse_config,
    run,
    session_finished,
)
from dishbrain.report import (
    between_tests,
    compare_groups,
    control_tests,
    curves,
    load_run,
    paired_tests,
    unpaired_tests,
    within_tests,
)

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"

RANDOM_EXPERIMENT = """
[experiment]
name = "t"
player = "random"
cultures = 3
minutes = 1
rest_minutes = 0.2
conditions = ["stimulus", "silent"]
windows = [[0, 0.5], [0.5, 1]]
bin_minutes = 0.25
workers = 1
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.glob("*.jsonl"))}


# -- config ------------------------------------------------------------------------------------

def test_shipped_configs_are_valid():
    # A sweep TOML ([sweep], dishbrain/experiment/sweep.py) is not a run config.
    found = {p.name: load_config(p) for p in EXPERIMENTS.glob("*.toml")
             if "[sweep]" not in p.read_text()}
    assert {"dishbrain.toml", "dishbrain-quick.toml", "compare.toml", "compare-quick.toml",
            "sample-efficiency.toml"} <= set(found)
    full = found["dishbrain.toml"]
    assert full.kind == "experiment" and len(full.seeds) == 8 and full.max_minutes == 20
    assert [p.condition for p in full.players] == ["stimulus", "silent", "no-feedback"]
    assert full.players[0].options == {"n_neurons": 1000}
    assert full.windows == ((0, 5), (5, 20))
    compare = found["compare.toml"]
    assert compare.reference == "culture" and len(compare.seeds) == 5
    assert {"dqn-image", "a2c-positions", "ppo-stim", "random", "static", "tracker"} \
        <= set(compare.labels)
    sample = found["sample-efficiency.toml"]
    assert sample.max_minutes == 200
    assert dict((p.label, p.minutes) for p in sample.players)["culture"] == 20


@pytest.mark.parametrize("text, expected", [
    ("[experiment]\ncultures = 0", "experiment.cultures must be an integer >= 1, got 0"),
    ("[experiment]\ncultures = 2.5", "experiment.cultures"),
    ("[experiment]\nminutes = -1", "experiment.minutes must be a finite number"),
    ("[experiment]\nconditions = ['stimulus', 'loud']",
     "experiment.conditions must list conditions out of stimulus, silent, no-feedback, rest"),
    ("[experiment]\nconditions = []", "experiment.conditions must be a non-empty list"),
    ("[experiment]\ncultres = 3", "unknown key 'cultres' in experiment; allowed:"),
    ("[experiment]\nplayer = 'nobody'",
     "experiment.player: unknown player 'nobody'; installed: a2c,"),
    ("[experiment]\nplayer = 'no_such_module:make'", "cannot import 'no_such_module'"),
    ("[experiment]\nwindows = [[5, 0]]",
     "experiment.windows must be a non-empty list of [start, end]"),
    ("[experiment]\nminutes = 2\nwindows = [[0, 5]]",
     "experiment.windows: the window [0, 5] ends after"),
    ("[experiment]\nplayer = 'tracker'\n[culture]\ndead_bnd = 0.1",
     "culture.dead_bnd is not an option of player 'tracker'; allowed: dead_band"),
    ("[experiment]\nplayer = 'random'\n[culture]\nseed = 3", "culture.seed is set by the runner"),
    ("[experiment]\n[game]\ntick_ms = 0", "[game]: PongConfig.tick_ms must be"),
    ("[experiment]\n[game]\nspeed = 2", "[game]: unknown PongConfig field(s) ['speed']"),
    ("[experiment]\n[extra]\nx = 1",
     "unknown key 'extra' at the top level; allowed: culture, experiment, game"),
    ("[compare]\n", "players is required"),
    ("[compare]\n[[players]]\nlabel = 'x'", "players[0].player is required"),
    ("[compare]\n[[players]]\nplayer = 'random'\n[[players]]\nplayer = 'random'",
     "players[1].label 'random' is used twice"),
    ("[compare]\nreference = 'culture'\n[[players]]\nplayer = 'random'",
     "compare.reference must be one of the player labels random"),
    ("[compare]\n[[players]]\nplayer = 'random'\nlabel = 'a b'", "players[0].label must be"),
    ("[compare]\n[[players]]\nplayer = 'random'\nspeed = 3", "unknown key 'speed' in players[0]"),
    ("[compare]\n[[players]]\nplayer = 'random'\nminutes = 0",
     "players[0].minutes must be a finite number"),
    ("x = 1", "expected one [experiment] or [compare] table"),
    ("[experiment]\nplayer = 'human'", "player 'human' needs a window"),
])
def test_config_errors_name_the_key(text, expected, tmp_path):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert expected in message, message
    assert message.startswith(str(path)) and "\n" not in message


def test_config_kind_and_defaults(tmp_path):
    path = write(tmp_path / "mine.toml", "[compare]\n[[players]]\nplayer = 'static'\n"
                                         "[[players]]\nplayer = 'tracker'\nminutes = 40\n")
    config = load_config(path)
    assert config.name == "mine" and config.seeds == (0, 1, 2, 3, 4)
    assert config.reference == "static" and config.comparisons() == [("static", "tracker")]
    assert [p.minutes for p in config.players] == [20, 40]
    with pytest.raises(ConfigError,
                       match=r"expected an \[experiment\] table .*use dishbrain compare"):
        load_config(path, kind="experiment")
    exp = parse_config({"experiment": {"player": "random", "conditions": ["silent", "rest"]}})
    assert exp.comparisons() == [("silent", "rest")] and exp.seeds == tuple(range(8))


def test_sessions_are_independent_tasks(tmp_path):
    config = parse_config({"experiment": {"player": "random", "cultures": 2, "minutes": 1,
                                          "windows": [[0, 1]], "rest_minutes": 0.5}})
    specs = config.sessions(tmp_path)
    assert len(specs) == 6 and len({s.log_path for s in specs}) == 6
    assert {(s.label, s.seed) for s in specs} == {
        (c, s) for c in ("stimulus", "silent", "no-feedback") for s in (0, 1)}
    spec = specs[0]
    assert spec.rest is not None and spec.rest.minutes == 0.5
    assert spec.log_path == tmp_path / "sessions" / "stimulus-seed0.jsonl"
    with pytest.raises(AttributeError):
        spec.seed = 3  # frozen


def test_session_finished(tmp_path):
    log = tmp_path / "a.jsonl"
    assert not session_finished(log)
    lines = ['{"kind":"header"}', '{"kind":"serve","t":0}']
    log.write_text("\n".join(lines) + "\n")
    assert not session_finished(log)
    log.write_text("\n".join(lines + ['{"kind":"end","t":1,"stopped":true}']) + "\n")
    assert not session_finished(log)
    log.write_text("\n".join(lines + ['{"kind":"end","t":1,"stopped":false}']) + "\n")
    assert session_finished(log)
    log.write_text("\n".join(lines + ['{"kind":"end","t":1,"stopped":fal']))
    assert not session_finished(log)


# -- running and resuming ----------------------------------------------------------------------

@pytest.fixture
def finished_run(tmp_path):
    config_path = write(tmp_path / "t.toml", RANDOM_EXPERIMENT)
    config = load_config(config_path)
    out = tmp_path / "run"
    summary = run(config, out, LocalExecutor(1), progress=False,
                  config_text=config_path.read_text(),
                  command=["dishbrain", "experiment", "t.toml"])
    return config, out, summary


def test_run_folder_layout(finished_run):
    config, out, summary = finished_run
    assert summary.planned == 6 and len(summary.ran) == 6 and not summary.failed
    assert (out / "config.toml").read_text() == textwrap.dedent(RANDOM_EXPERIMENT)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["command"] == "dishbrain experiment t.toml"
    assert manifest["versions"]["numpy"] and manifest["wall_s"] >= 0
    assert manifest["started"] <= manifest["ended"]
    assert manifest["sessions"]["ran"] == 6 and manifest["sessions"]["interrupted"] is False
    assert "git" in manifest
    logs = sorted(p.name for p in (out / "sessions").glob("*.jsonl"))
    assert logs == sorted([f"{c}-seed{s}{r}.jsonl" for c in ("stimulus", "silent") for s in range(3)
                           for r in ("", "-rest")])
    assert all(session_finished(out / "sessions" / name) for name in logs)
    header = json.loads((out / "sessions" / "silent-seed2.jsonl").read_text().splitlines()[0])
    assert (header["seed"], header["condition"], header["steps_planned"]) == (2, "silent", 6000)
    for name in ("summary.csv", "tests.csv", "report.md", "fig5_boxplots.png",
                 "learning_curve.png"):
        assert (out / name).stat().st_size > 0, name
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("label,player,condition,phase,seed,window,")
    # 6 sessions x 2 windows, and one row per rest recording.
    assert sum(",session," in r for r in rows) == 12 and sum(",rest," in r for r in rows) == 6
    report = (out / "report.md").read_text()
    for text in ("## Gameplay per window", "## Learning within each group", "## Between groups",
                 "stimulus vs silent", "Wilcoxon", "fig5_boxplots.png", "learning_curve.png"):
        assert text in report, text
    assert summary.report == out / "report.md"


def test_resume_reruns_only_unfinished_sessions(finished_run):
    config, out, _ = finished_run
    sessions = out / "sessions"
    before = mtimes(sessions)
    # A crash mid-session: the log has no end line. A stopped session: "stopped": true.
    cut = sessions / "silent-seed1.jsonl"
    cut.write_text("".join(cut.read_text().splitlines(keepends=True)[:-1]))
    stopped = sessions / "stimulus-seed0.jsonl"
    lines = stopped.read_text().splitlines()
    end = json.loads(lines[-1])
    end["stopped"] = True
    stopped.write_text("\n".join(lines[:-1] + [json.dumps(end)]) + "\n")
    (sessions / "stimulus-seed2.jsonl").unlink()
    # Back-date every log, so that a rewrite shows whatever the clock's granularity.
    for path in sessions.glob("*.jsonl"):
        os.utime(path, ns=(10**18, 10**18))
    after_edit = mtimes(sessions)

    summary = run(config, out, LocalExecutor(1), progress=False)
    assert sorted(summary.ran) == ["silent-seed1", "stimulus-seed0", "stimulus-seed2"]
    assert summary.skipped == 3
    now = mtimes(sessions)
    changed = {name for name in now if now[name] != after_edit.get(name)}
    assert changed == {"silent-seed1.jsonl", "stimulus-seed0.jsonl", "stimulus-seed2.jsonl"}
    assert all(session_finished(sessions / name) for name in now)
    # A finished rest recording is kept (the random player has no state to carry).
    assert now["silent-seed1-rest.jsonl"] == after_edit["silent-seed1-rest.jsonl"]
    assert set(before) - set(now) == set()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sessions"]["already_finished"] == 3 and len(manifest["history"]) == 1

    # Nothing left: a third run plays nothing.
    assert run(config, out, LocalExecutor(1), progress=False).ran == []


def test_a_different_config_is_refused_in_the_same_folder(finished_run):
    config, out, _ = finished_run
    other = parse_config({"experiment": {"player": "random", "cultures": 3, "minutes": 2,
                                         "windows": [[0, 1]]}})
    with pytest.raises(ConfigError, match="different config .*minutes"):
        run(other, out, LocalExecutor(1), progress=False)
    # workers and name do not change the results: allowed.
    assert load_run_config(out).identity() == config.identity()


def test_parallel_workers(tmp_path):
    config = parse_config({"compare": {"seeds": 2, "minutes": 0.5, "windows": [[0, 0.5]],
                                       "bin_minutes": 0.25},
                           "players": [{"player": "random"}, {"player": "tracker"}]})
    summary = run(config, tmp_path / "run", LocalExecutor(2), progress=False)
    assert len(summary.ran) == 4 and not summary.failed
    assert all(session_finished(s.log_path) for s in config.sessions(tmp_path / "run"))


class Broken(StaticAgent):
    """A player that fails on its first move."""

    def act(self, obs):
        raise RuntimeError("boom")


def test_a_failing_session_is_reported_and_the_others_finish(tmp_path):
    config = parse_config({"compare": {"seeds": 1, "minutes": 0.2, "windows": [[0, 0.2]]},
                           "players": [{"player": "random"},
                                       {"player": f"{__name__}:Broken", "label": "broken"}]},
                          check_players=False)
    summary = run(config, tmp_path, LocalExecutor(1), progress=False)
    assert summary.ran == ["random-seed0"]
    assert summary.failed == [("broken-seed0", "RuntimeError: boom")]
    assert "RuntimeError: boom" in (tmp_path / "sessions" / "broken-seed0.error.txt").read_text()
    assert "broken-seed0" in (tmp_path / "report.md").read_text()  # listed as not finished


class InterruptOnce(StaticAgent):
    """Presses Ctrl-C in its first session (once per test), after 100 steps."""

    pressed = False

    def __init__(self):
        self.steps = 0

    def act(self, obs):
        self.steps += 1
        if self.steps == 100 and not InterruptOnce.pressed:
            InterruptOnce.pressed = True
            raise KeyboardInterrupt
        return super().act(obs)


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes(tmp_path, monkeypatch):
    monkeypatch.setattr(InterruptOnce, "pressed", False)
    config = parse_config({"compare": {"seeds": 2, "minutes": 0.2, "windows": [[0, 0.2]]},
                           "players": [{"player": f"{__name__}:InterruptOnce",
                                        "label": "interrupt-once"}]})
    with pytest.raises(KeyboardInterrupt):
        run(config, tmp_path, LocalExecutor(1), progress=False)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["sessions"]["interrupted"] is True and manifest["ended"]
    log = tmp_path / "sessions" / "interrupt-once-seed0.jsonl"
    assert json.loads(log.read_text().splitlines()[-1])["stopped"] is True
    assert not (tmp_path / "sessions" / "interrupt-once-seed1.jsonl").exists()
    summary = run(config, tmp_path, LocalExecutor(1), progress=False)
    assert sorted(summary.ran) == ["interrupt-once-seed0", "interrupt-once-seed1"]


# -- statistics and report ---------------------------------------------------------------------

def test_tests_produce_numbers():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 0.2, 8)
    b = a + rng.normal(0.5, 0.1, 8)
    paired = paired_tests(a, b)
    assert paired["design"] == "paired" and paired["n_a"] == 8
    assert 0 < paired["p"] < 0.05 and 0 < paired["p2"] < 0.05
    unpaired = unpaired_tests(a, b + 1)
    assert unpaired["test"] == "Mann-Whitney U" and 0 < unpaired["p"] < 0.05
    assert math.isfinite(unpaired["p2"])
    # Same seeds: paired; different seeds: unpaired; too few: NaN, not an error.
    assert compare_groups({0: 1.0, 1: 2.0, 2: 3.0}, {0: 2.0, 1: 2.5, 2: 4.0})["design"] == "paired"
    assert compare_groups({0: 1.0, 1: 2.0}, {1: 2.0, 2: 3.0})["design"] == "unpaired"
    assert math.isnan(paired_tests([1.0], [2.0])["p"])
    assert paired_tests([1.0, 2.0], [1.0, 2.0])["p"] == 1.0


def test_within_and_between_tests_of_a_run(finished_run):
    config, out, _ = finished_run
    data = load_run(out)
    within = within_tests(data)
    between = between_tests(data)
    assert len(within) == 2 * 3  # 2 conditions x 3 metrics, 0-0.5 vs 0.5-1
    assert len(between) == 1 * 2 * 3  # stimulus vs silent, 2 windows, 3 metrics
    arl = next(r for r in within if r["metric"] == "arl")
    assert arl["n_a"] == 3 and math.isfinite(arl["p"]) and math.isfinite(arl["p2"])
    assert all(r["design"] == "paired" for r in between)
    assert any(math.isfinite(r["p"]) for r in between)


def test_stimulus_against_its_controls_level_and_change_with_holm(finished_run):
    """Issue 17's judgement: Stimulus vs each control, paired by culture, on ARL in the last
    window and on its change from the first; Holm over the controls; in tests.csv and report.md."""
    _, out, _ = finished_run
    data = load_run(out)
    rows = control_tests(data)
    assert [(r["kind"], r["a"], r["b"]) for r in rows] == [
        ("control-level", "stimulus", "silent"), ("control-change", "stimulus", "silent")]
    level, change = rows
    early = {lab: data.values(lab, 0, "arl") for lab in ("stimulus", "silent")}
    late = {lab: data.values(lab, 1, "arl") for lab in ("stimulus", "silent")}
    seeds = sorted(set(late["stimulus"]) & set(late["silent"]))
    assert level["n_a"] == len(seeds) and level["window_a"] == level["window_b"] == "0.5-1"
    assert level["mean_a"] == pytest.approx(np.mean([late["stimulus"][s] for s in seeds]))
    assert level["higher"] == sum(late["stimulus"][s] > late["silent"][s] for s in seeds)
    d = {lab: {s: late[lab][s] - early[lab][s] for s in set(late[lab]) & set(early[lab])}
         for lab in late}
    both = sorted(set(d["stimulus"]) & set(d["silent"]))
    assert change["window_a"] == "0-0.5" and change["n_a"] == len(both)
    assert change["mean_b"] == pytest.approx(np.mean([d["silent"][s] for s in both]))
    for r in rows:  # a family of one control: Holm changes nothing
        assert r["p_holm"] == r["p"] or (math.isnan(r["p"]) and math.isnan(r["p_holm"]))
    csv_kinds = [line.split(",")[0] for line in (out / "tests.csv").read_text().splitlines()]
    assert csv_kinds.count("control-level") == 1 and csv_kinds.count("control-change") == 1
    assert "## Stimulus against its controls" in (out / "report.md").read_text()


def test_holm_adjusts_a_family_and_leaves_nan_out():
    from dishbrain.report.statistics import holm
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    out = holm([0.02, math.nan])
    assert out[0] == pytest.approx(0.02) and math.isnan(out[1])


def test_learning_curve_spans_each_players_minutes(tmp_path):
    config = parse_config({"compare": {"seeds": 2, "minutes": 1, "windows": [[0, 1], [1, 3]],
                                       "bin_minutes": 0.5},
                           "players": [{"player": "random"},
                                       {"player": "tracker", "minutes": 3}]})
    run(config, tmp_path, LocalExecutor(1), progress=False)
    lines = curves(load_run(tmp_path))
    assert len(lines["random"][0]) == 2 and len(lines["tracker"][0]) == 6
    report = (tmp_path / "report.md").read_text()
    # The 1-3 window is beyond the random player's session: not tested, not tabulated.
    assert "| random vs tracker | 0-1 |" in report and "| random vs tracker | 1-3 |" not in report
    assert "| tracker | 1-3 |" in report and "| random | 1-3 |" not in report


# -- command line ------------------------------------------------------------------------------

def run_cli(argv, capsys) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.toml", "no such config file"),
    (lambda d: write(d / "bad.toml", "[experiment\ncultures = 2"), "not valid TOML"),
    (lambda d: write(d / "bad.toml", "[experiment]\ncultures = 'x'"), "experiment.cultures"),
    (lambda d: d, "is a folder"),
    (lambda d: write(d / "c.toml", "[compare]\n[[players]]\nplayer = 'random'"),
     "expected an [experiment] table (it holds [compare]: use dishbrain compare)"),
])
def test_cli_bad_config_is_a_one_line_error(make, message, tmp_path, capsys):
    code, _, err = run_cli(["experiment", str(make(tmp_path)), "--out", str(tmp_path / "o")],
                           capsys)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith("dishbrain experiment: error: ")


def test_cli_experiment_resume_and_report(tmp_path, capsys):
    config = write(tmp_path / "t.toml", RANDOM_EXPERIMENT)
    out = tmp_path / "run"
    code, text, _ = run_cli(["experiment", str(config), "--out", str(out), "--quiet"], capsys)
    assert code == 0
    assert "sessions: 6 played, 0 already finished, 0 failed" in text and "ARL" in text
    code, text, _ = run_cli(["experiment", str(config), "--out", str(out), "--quiet",
                             "--workers", "2"], capsys)
    assert code == 0 and "sessions: 0 played, 6 already finished" in text
    (out / "report.md").unlink()
    code, text, _ = run_cli(["report", str(out)], capsys)
    assert code == 0 and (out / "report.md").exists() and "stimulus" in text


def test_cli_compare(tmp_path, capsys):
    config = write(tmp_path / "c.toml", """
        [compare]
        seeds = 2
        minutes = 0.5
        windows = [[0, 0.25], [0.25, 0.5]]
        [[players]]
        player = "static"
        [[players]]
        player = "tracker"
        options = { dead_band = 0.05 }
        """)
    code, text, _ = run_cli(["compare", str(config), "--out", str(tmp_path / "run"), "--quiet",
                             "--workers", "1"], capsys)
    assert code == 0 and "tracker" in text
    report = (tmp_path / "run" / "report.md").read_text()
    assert "static vs tracker" in report
    assert "## Sample efficiency" not in report                # no player outlasts the reference
    assert not (tmp_path / "run" / "sample_efficiency.png").exists()


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "nowhere", "no such run folder"),
    (lambda d: d, "is not a run folder (no config.toml) nor a sweep folder (no sweep.json)"),
])
def test_cli_report_errors(make, message, tmp_path, capsys):
    code, _, err = run_cli(["report", str(make(tmp_path))], capsys)
    assert code == 2 and message in err and err.count("\n") == 1


# -- the run folder's libraries and layout -----------------------------------------------------

@pytest.mark.parametrize("doc", [
    {"experiment": {"player": "tracker", "cultures": 2, "first_seed": 3, "minutes": 1.5,
                    "rest_minutes": 0.25, "conditions": ["silent", "rest"],
                    "windows": [[0, 0.5], [0.5, 1.5]], "workers": 3},
     "culture": {"dead_band": 0.05}, "game": {"miss_pause_ms": 500.0}},
    {"compare": {"seeds": 2, "minutes": 0.5, "windows": [[0, 0.5]], "reference": "t",
                 "long_threshold": 2, "bin_minutes": 0.25},
     "players": [{"player": "random"},
                 {"player": "tracker", "label": "t", "condition": "silent", "minutes": 1,
                  "options": {"dead_band": 0.1}}]},
])
def test_config_written_as_toml_loads_back_the_same(doc, tmp_path):
    from dishbrain.experiment import config_toml

    config = parse_config(doc, stem="mine")
    (tmp_path / "config.toml").write_text(config_toml(config))
    again = load_run_config(tmp_path)
    assert again.identity() == config.identity() and again.workers == config.workers
    # A run started from a RunConfig (no file) copies exactly that config in.
    run(config, tmp_path / "run", LocalExecutor(1), progress=False, report=False)
    assert load_run_config(tmp_path / "run").identity() == config.identity()


def test_a_second_run_on_the_same_folder_is_refused(finished_run):
    from dishbrain.experiment.runfolder import RunLock

    config, out, _ = finished_run
    with RunLock(out):
        with pytest.raises(ConfigError, match="another run is writing to") as exc:
            run(config, out, LocalExecutor(1), progress=False)
    assert "\n" not in str(exc.value)
    assert run(config, out, LocalExecutor(1), progress=False).ran == []  # released


def test_compressed_logs_count_as_finished(finished_run):
    import gzip

    config, out, _ = finished_run
    sessions = out / "sessions"
    for log in sessions.glob("*.jsonl"):
        log.with_name(log.name + ".gz").write_bytes(gzip.compress(log.read_bytes()))
        log.unlink()
    assert all(session_finished(s.log_path) for s in config.sessions(out))
    assert run(config, out, LocalExecutor(1), progress=False, report=False).ran == []
    # An unfinished compressed log is replayed, and its replay is the session's only log.
    cut = sessions / "silent-seed1.jsonl.gz"
    lines = gzip.decompress(cut.read_bytes()).splitlines(keepends=True)
    cut.write_bytes(gzip.compress(b"".join(lines[:-1])))
    summary = run(config, out, LocalExecutor(1), progress=False, report=False)
    assert summary.ran == ["silent-seed1"] and not cut.exists()
    assert session_finished(sessions / "silent-seed1.jsonl")


def test_the_config_dataclasses_check_their_fields():
    from dishbrain.experiment import PlayerSpec, RunConfig

    with pytest.raises(ValueError, match=r"PlayerSpec.minutes must be a finite number .*, got -1$"):
        PlayerSpec(label="a", player="random", options={}, condition=None, minutes=-1)
    with pytest.raises(ValueError, match=r"PlayerSpec.options.seed is set by the runner"):
        PlayerSpec(label="a", player="random", options={"seed": 1}, condition=None, minutes=1)
    p = PlayerSpec(label="a", player="random", options={}, condition="silent", minutes=1)
    with pytest.raises(ValueError, match=r"RunConfig.workers must be an integer >= 1"):
        RunConfig(kind="compare", name="x", players=(p,), seeds=(0,), workers=0,
                  windows=((0, 1),))
    with pytest.raises(ValueError, match=r"RunConfig.windows: the window \[0, 5\] ends after"):
        RunConfig(kind="compare", name="x", players=(p,), seeds=(0,), workers=1)


def test_report_reads_the_run_folder_not_the_runner():
    import ast

    root = Path(__file__).resolve().parents[1] / "dishbrain" / "report"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module not in ("dishbrain.experiment",
                                           "dishbrain.experiment.runner",
                                           "dishbrain.experiment.executors"), (path, node.module)


# -- Stage 1b conditions (issue 17): Frozen and Yoked --------------------------------------------

def test_yoked_sessions_replay_the_next_cultures_stimulus_session(tmp_path):
    config = parse_config({"experiment": {"player": "random", "cultures": 3, "first_seed": 10,
                                          "minutes": 1, "windows": [[0, 1]],
                                          "conditions": ["stimulus", "yoked", "frozen"]}})
    specs = config.sessions(tmp_path)
    yoke = {s.seed: s.yoke_log for s in specs if s.condition == "yoked"}
    assert yoke == {10: tmp_path / "sessions" / "stimulus-seed11.jsonl",
                    11: tmp_path / "sessions" / "stimulus-seed12.jsonl",
                    12: tmp_path / "sessions" / "stimulus-seed10.jsonl"}
    assert all(s.yoke_log is None for s in specs if s.condition != "yoked")
    for conditions, cultures in ((["silent", "yoked"], 3), (["stimulus", "yoked"], 1)):
        with pytest.raises(ConfigError, match="'yoked' replays another culture's Stimulus"):
            parse_config({"experiment": {"player": "random", "cultures": cultures,
                                         "conditions": conditions}})
    with pytest.raises(ConfigError, match="yoke_log is set by the runner"):
        parse_config({"experiment": {"player": "culture"}, "culture": {"yoke_log": "x.jsonl"}})


@pytest.mark.slow
def test_a_run_with_frozen_and_yoked_cultures(tmp_path):
    path = write(tmp_path / "y.toml", """
        [experiment]
        cultures = 2
        minutes = 0.3
        conditions = ["yoked", "stimulus", "frozen"]
        windows = [[0, 0.3]]
        bin_minutes = 0.1
        workers = 1
        [culture]
        n_neurons = 50
        layout = "vertical"
        """)
    config = load_config(path)
    summary = run(config, tmp_path / "run", LocalExecutor(1), progress=False)
    assert not summary.failed and len(summary.ran) == 6
    sessions = tmp_path / "run" / "sessions"
    # The yoked sessions ran after the Stimulus sessions whose logs they replay.
    for seed, partner in ((0, 1), (1, 0)):
        header = json.loads((sessions / f"yoked-seed{seed}.jsonl").read_text().splitlines()[0])
        assert header["agent_config"]["yoke_log"] == str(
            (sessions / f"stimulus-seed{partner}.jsonl").resolve())
        assert header["agent_config"]["condition"] == "yoked"
        frozen = json.loads((sessions / f"frozen-seed{seed}.jsonl").read_text().splitlines()[0])
        assert frozen["agent_config"]["culture"]["stdp_enabled"] is False


def test_first_block_reaching_and_the_reach_of_a_curve():
    from dishbrain.report.efficiency import EfficiencyCurve, first_block_reaching
    assert first_block_reaching(np.array([0.5, np.nan, 1.2, 0.9]), 1.0) == 2
    assert first_block_reaching(np.array([0.5, np.nan]), 1.0) is None
    cv = EfficiencyCurve("p", np.array([0.0, 20.0, 40.0, 60.0]),
                         {0: np.array([0.5, 1.5, 0.5, 1.5]), 1: np.array([0.5, 0.5, 1.5, 1.5]),
                          2: np.array([0.2, 0.2, 0.2, 0.2])})
    np.testing.assert_allclose(cv.mean, [0.4, 2.2 / 3, 2.2 / 3, 3.2 / 3])
    r = cv.reach(0.6, 20.0)
    assert r["mean_min"] == 40.0 and r["stays_min"] == 40.0
    assert r["seeds_reaching"] == 2 and r["seeds"] == 3 and r["median_min"] == 50.0
    r = cv.reach(1.0, 20.0)
    assert r["mean_min"] == 80.0 and r["stays_min"] == 80.0
    dips = EfficiencyCurve("q", np.array([0.0, 20.0, 40.0]), {0: np.array([1.0, 0.1, 1.0])})
    assert dips.reach(0.5, 20.0)["mean_min"] == 20.0 and dips.reach(0.5, 20.0)["stays_min"] == 60.0
    assert dips.reach(5.0, 20.0) == {"mean_min": None, "stays_min": None, "seeds_reaching": 0,
                                     "seeds": 1, "median_min": None}


def test_a_block_inside_one_long_rally_reaches_by_that_rally_not_nan(tmp_path):
    """Sample efficiency: a block in which no rally ended lies inside one rally; it takes that
    rally's hits (the one the session's end cut, too), so a player that stops missing reaches
    the levels instead of reading NaN. The report's own learning curve keeps NaN there."""
    from dishbrain.metrics import Session
    from dishbrain.report.efficiency import first_block_reaching
    from dishbrain.report.loading import RunData
    config = parse_config({"compare": {"seeds": 1, "minutes": 1, "windows": [[0, 1]],
                                       "reference": "random"},
                           "players": [{"player": "random"}, {"player": "tracker", "minutes": 4}]})
    data = RunData(config=config, run_dir=tmp_path, specs=[])
    # rallies of 2 hits (ends 30 s), 30 hits (ends 170 s: spans 60-120 s), 12 hits cut by the
    # end at 240 s (no miss in 180-240 s)
    data.sessions[("tracker", 0)] = Session(tmp_path / "x.jsonl", "jsonl", {}, 240.0,
                                            np.array([2, 30, 12]), np.array([30.0, 170.0, 240.0]))
    _, plain = data.bin_arl("tracker", 1.0)
    np.testing.assert_array_equal(plain[0], [2.0, np.nan, 30.0, 12.0])
    _, spanning = data.bin_arl("tracker", 1.0, spanning=True)
    np.testing.assert_array_equal(spanning[0], [2.0, 30.0, 30.0, 12.0])
    assert first_block_reaching(plain[0], 20.0) == 2
    assert first_block_reaching(spanning[0], 20.0) == 1
    # no rally after the block (a session log without an end): NaN stays NaN
    data.sessions[("tracker", 0)] = Session(tmp_path / "x.jsonl", "jsonl", {}, 240.0,
                                            np.array([2]), np.array([30.0]))
    _, spanning = data.bin_arl("tracker", 1.0, spanning=True)
    assert spanning[0][0] == 2.0 and np.isnan(spanning[0][1:]).all()


def test_a_compare_run_longer_than_its_reference_reports_sample_efficiency(tmp_path):
    """Players longer than the reference: the report's sample-efficiency table (blocks of the
    reference's length, the reference's own level) and its figure; none for an experiment."""
    config = parse_config({"compare": {"seeds": 2, "minutes": 1, "windows": [[0, 1]],
                                       "reference": "random"},
                           "players": [{"player": "random"},
                                       {"player": "tracker", "minutes": 3},
                                       {"player": "static", "minutes": 2}]})
    run(config, tmp_path, LocalExecutor(1), progress=False)
    from dishbrain.report import load_run, sample_efficiency
    from dishbrain.report.loading import load_published
    data = load_run(tmp_path)
    eff = sample_efficiency(data, load_published())
    assert eff.block_min == 1.0 and eff.reference == "random"
    assert eff.levels[0][0] == "random, minutes 0-1"
    level = eff.levels[0][1]
    assert level == pytest.approx(np.mean(list(data.values("random", 0, "arl").values())))
    by = {cv.label: cv for cv in eff.curves}
    assert set(by) == {"tracker", "static"}
    assert len(by["tracker"].block_starts_min) == 3 and len(by["static"].block_starts_min) == 2
    from dishbrain.metrics import learning_curve
    for seed, arl in by["tracker"].per_seed.items():   # each block's ARL, seed by seed
        plain = np.asarray(learning_curve(data.sessions[("tracker", seed)], 1.0,
                                          until_min=3.0).arl, dtype=float)
        done = np.isfinite(plain)   # blocks in which a rally ended: their own ARL
        np.testing.assert_array_equal(arl[done], plain[done])
        # the others (the tracker rarely misses): the rally that spans them
        np.testing.assert_array_equal(arl, data.bin_arl("tracker", 1.0, spanning=True)[1][seed])
    report = (tmp_path / "report.md").read_text()
    assert "## Sample efficiency" in report and "| tracker | 3 |" in report
    assert (tmp_path / "sample_efficiency.png").stat().st_size > 0
    assert "![sample_efficiency](sample_efficiency.png)" in report
