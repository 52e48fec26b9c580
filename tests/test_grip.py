"""`dishbrain grip` (dishbrain/grip.py): the weight edits, the map, the summary's formula, the
run folder (resume, refusal of another configuration) and the command line's errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dishbrain.grip import (
    ARMS,
    DOSE_ARMS,
    GripConfig,
    grip_ratio,
    load_grip_toml,
    push_map,
    run_grip,
    summarize,
)
from dishbrain.weight_edits import direct_index, dose_weights, edit_weights

TINY = {"n_neurons": 100, "decoder_config": {"mode": "contrast", "dead_band": 0.0}}


def _groups():
    # neurons 0-1: band 0 (top) sensory, 2-3: band 1 (bottom) sensory, 4: up, 5: down
    n = 6
    sens = [np.isin(np.arange(n), [0, 1]), np.isin(np.arange(n), [2, 3])]
    up, down = np.arange(n) == 4, np.arange(n) == 5
    return sens, up, down


def test_direct_edit_sets_right_to_max_and_wrong_to_zero_and_mirrors():
    pre = np.array([0, 0, 2, 2, 1, 3])
    post = np.array([4, 5, 4, 5, 0, 1])       # the last two: sensory -> sensory, untouched
    w = np.full(6, 0.03)
    pos = np.zeros((6, 2))
    toward = edit_weights(w, pre, post, pos, _groups(), 0.08, "direct", toward=True)
    np.testing.assert_allclose(toward, [0.08, 0.0, 0.0, 0.08, 0.03, 0.03])
    against = edit_weights(w, pre, post, pos, _groups(), 0.08, "direct", toward=False)
    np.testing.assert_allclose(against, [0.0, 0.08, 0.08, 0.0, 0.03, 0.03])
    np.testing.assert_allclose(w, 0.03)         # the input is not changed


def test_motor_inputs_edit_doubles_inputs_from_the_right_half_and_cuts_the_others():
    pos = np.array([[0, 0], [0, 10], [0, 100], [0, 110], [0, 50], [0, 60]], float)  # y down
    pre = np.array([0, 2, 0, 2, 1, 3])
    post = np.array([4, 4, 5, 5, 2, 0])         # inputs of up (4), down (5), and two others
    w = np.array([0.05, 0.05, 0.05, 0.05, 0.02, 0.02])
    top = pos[:, 1] < np.median(pos[:, 1])      # neurons 0, 1, 4 are in the top half
    assert top.tolist() == [True, True, False, False, True, False]
    toward = edit_weights(w, pre, post, pos, _groups(), 0.08, "motor-inputs", toward=True)
    np.testing.assert_allclose(toward, [0.08, 0.0, 0.0, 0.08, 0.02, 0.02])   # 2 x 0.05 capped
    against = edit_weights(w, pre, post, pos, _groups(), 0.08, "motor-inputs", toward=False)
    np.testing.assert_allclose(against, [0.0, 0.08, 0.08, 0.0, 0.02, 0.02])
    with pytest.raises(ValueError, match="grip.edit must be one of"):
        edit_weights(w, pre, post, pos, _groups(), 0.08, "all", toward=True)


def test_push_map_of_a_perfect_tracker_is_two():
    ball_y = np.tile(np.linspace(0.01, 0.99, 8), 50)
    push = np.where(ball_y < 0.5, 1, -1)
    in_play = np.ones_like(push, bool)
    in_play[:8] = False
    push[:8] = -1                                # ticks out of play do not count
    m = push_map(ball_y, in_play, push)
    assert m["map"] == pytest.approx(2.0)
    assert m["per_band"] == pytest.approx([1, 1, 1, 1, -1, -1, -1, -1])
    assert math.isnan(push_map(ball_y, np.zeros_like(in_play), push)["map"])


def _result(seed, arm, map_, arl):
    return {"seed": seed, "arm": arm, "map": map_, "arl": arl, "per_band": [0.0] * 8,
            "up_frac": 0.5}


def test_summary_means_sems_and_the_grip_formula():
    maps = {"toward": (0.4, 0.6), "against": (-0.2, 0.0), "vertical": (1.0, 1.2),
            "mirrored": (-1.0, -1.2)}
    arls = {"toward": (2.0, 1.6), "against": (0.5, 0.3), "vertical": (4.0, 5.0),
            "mirrored": (0.1, 0.1)}
    results = [_result(s, a, maps[a][i], arls[a][i]) for i, s in enumerate((3, 4)) for a in ARMS]
    out = summarize(results, GripConfig(seeds=(3, 4, 5), minutes=5.0))
    assert out["seeds"] == [3, 4] and out["n"] == 2          # seed 5 has no arm yet
    assert out["map_toward"] == pytest.approx(0.5)
    assert out["map_toward_sem"] == pytest.approx(0.1)       # sd 0.1414 / sqrt 2
    assert out["grip"] == pytest.approx((0.5 - (-0.1)) / (1.1 - (-1.1)))
    assert out["per_seed"][0]["grip"] == pytest.approx(0.6 / 2.0)
    assert out["arl_toward"] == pytest.approx(1.8) and out["arl_against"] == pytest.approx(0.4)
    assert out["gate"]["met"] is False                       # 2 seeds: never the gate
    eight = [_result(s, a, maps[a][0], arls[a][0]) for s in range(8) for a in ARMS]
    assert summarize(eight, GripConfig(seeds=tuple(range(8))))["gate"]["met"] is True
    bad = [dict(r, arl=0.7) if r["arm"] == "against" else r for r in eight]
    assert summarize(bad, GripConfig(seeds=tuple(range(8))))["gate"]["met"] is False
    assert math.isnan(grip_ratio(0.5, 0.1, 0.3, 0.3))       # no span: no ratio


@pytest.mark.parametrize("fields, message", [
    ({"seeds": ()}, "GripConfig.seeds must be a non-empty list"),
    ({"seeds": (1, 1)}, "must not repeat a seed"),
    ({"seeds": (-1,)}, "GripConfig.seeds must be an integer >= 0"),
    ({"minutes": 0}, "GripConfig.minutes must be a finite number > 0"),
    ({"edit": "all"}, "GripConfig.edit must be one of"),
    ({"condition": "yoked-nope"}, "GripConfig.condition must be one of"),
    ({"player_options": {"seed": 3}}, "must not set \\['seed'\\]"),
    ({"dose": -0.5}, "GripConfig.dose must be a finite number in \\(0, 10\\]"),
    ({"dose": float("nan")}, "GripConfig.dose must be a finite number in \\(0, 10\\]"),
])
def test_config_validation_names_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        GripConfig(**fields)


def test_toml_reads_culture_game_and_grip_tables(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('[experiment]\nname = "x"\n[grip]\nseeds = 3\nfirst_seed = 100\n'
                    'minutes = 2\n[culture]\nn_neurons = 50\n[culture.decoder_config]\n'
                    'mode = "contrast"\n[game]\nball_speed_x = 300.0\n')
    fields = load_grip_toml(path)
    assert fields["seeds"] == (100, 101, 102) and fields["minutes"] == 2
    assert fields["player_options"] == {"n_neurons": 50, "decoder_config": {"mode": "contrast"}}
    assert fields["game"] == {"ball_speed_x": 300.0}
    path.write_text("[grip]\nworkers = 2\n")
    with pytest.raises(ValueError, match=r"unknown \[grip\] key\(s\) \['workers'\]"):
        load_grip_toml(path)


@pytest.mark.slow
def test_run_writes_grip_json_plays_edited_cultures_and_resumes(tmp_path):
    config = GripConfig(seeds=(7,), minutes=0.05, player_options=TINY)
    out = run_grip(config, tmp_path, workers=1, progress=False)
    data = json.loads((tmp_path / "grip.json").read_text())
    for key in ("grip", "map_toward", "map_against", "map_vertical", "map_mirrored",
                "arl_toward", "arl_against", "per_seed"):
        assert key in data
    assert data == json.loads(json.dumps(out))
    assert (tmp_path / "grip.png").stat().st_size > 0
    arms = {a: json.loads((tmp_path / "arms" / f"seed7-{a}.json").read_text()) for a in ARMS}
    assert arms["toward"]["synapses_edited"] > 0 and arms["against"]["synapses_edited"] > 0
    assert arms["vertical"]["synapses_edited"] == 0
    assert (arms["toward"]["layout"], arms["vertical"]["layout"], arms["mirrored"]["layout"]) \
        == ("dishbrain", "vertical", "vertical_mirrored")
    row = data["per_seed"][0]
    assert row["map_toward"] == pytest.approx(arms["toward"]["map"])
    if data["grip"] is not None:
        assert data["grip"] == pytest.approx(
            (row["map_toward"] - row["map_against"]) / (row["map_vertical"] - row["map_mirrored"]))
    # A rerun plays nothing (the arms' files stay as they were); another config is refused.
    stamps = {a: (tmp_path / "arms" / f"seed7-{a}.json").stat().st_mtime_ns for a in ARMS}
    run_grip(config, tmp_path, workers=1, progress=False)
    assert stamps == {a: (tmp_path / "arms" / f"seed7-{a}.json").stat().st_mtime_ns
                      for a in ARMS}
    with pytest.raises(ValueError, match="holds a grip run of another configuration"):
        run_grip(config.replace(minutes=0.1), tmp_path, workers=1, progress=False)


def _exit_code(argv) -> int:
    """The command's exit status, whether argparse (SystemExit) or the command itself ends it."""
    from dishbrain.cli import main

    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv, message", [
    (["--minutes", "0"], "minutes must be a number > 0"),
    (["--seeds", "0"], "seeds must be a whole number >= 1"),
    (["--edit", "all"], "invalid choice"),
    (["--dose", "0"], "dose must be a number > 0"),
    (["--seed-list", "1", "1"], "must not repeat a seed"),
    (["--layout", "diagonal"], "layout must be one of ['dishbrain', 'dishbrain_swapped'"),
])
def test_cli_rejects_bad_input_with_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert _exit_code(["grip", *argv, "--out", str(out), "--quiet"]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()                        # nothing written before the error


def test_cli_rejects_an_unknown_culture_option_in_the_toml(tmp_path, capsys):
    path = tmp_path / "g.toml"
    path.write_text("[culture]\nneurons = 50\n")
    out = tmp_path / "out"
    assert _exit_code(["grip", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "dishbrain grip: error: unknown culture option(s) ['neurons']" in err
    assert not out.exists()


@pytest.mark.parametrize("table, message", [
    ("[culture.culture_config]\nmotor_competition_factor = 0.5\n",
     "CultureConfig.motor_competition_factor must be a finite number in [1.0, 10000.0]"),
    ("[culture.encoder_config]\nrate_curve = \"cubic\"\n", "EncoderConfig.rate_curve"),
    ("[culture.feedback_config]\nnot_a_field = 1\n", "not_a_field"),
])
def test_cli_rejects_a_bad_culture_table_before_any_session(table, message, tmp_path, capsys):
    path = tmp_path / "g.toml"
    path.write_text("[culture]\nn_neurons = 50\n" + table)
    out = tmp_path / "out"
    assert _exit_code(["grip", str(path), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("dishbrain grip: error") == 1
    assert not out.exists()


def test_a_failing_session_is_reported_and_the_others_are_kept(tmp_path, monkeypatch):
    import dishbrain.grip as grip

    def play(config, seed, arm, run_dir):
        if arm == "against":
            raise RuntimeError("binary failed\nmore lines")
        result = _result(seed, arm, 0.1, 1.0)
        path = grip._arm_path(run_dir, seed, arm)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result))
        return result

    monkeypatch.setattr(grip, "play_arm", play)
    with pytest.raises(RuntimeError, match=r"1 session\(s\) failed \(seed 3 against: "
                                           r"RuntimeError: binary failed\)"):
        run_grip(GripConfig(seeds=(3,)), tmp_path, workers=1, progress=False)
    assert sorted(p.name for p in (tmp_path / "arms").iterdir()) == [
        "seed3-mirrored.json", "seed3-toward.json", "seed3-vertical.json"]
    assert not (tmp_path / "grip.json").exists()


# -- every committed config is valid --------------------------------------------------------------

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


@pytest.mark.parametrize("path", sorted(EXPERIMENTS.glob("grip/*.toml")), ids=lambda p: p.name)
def test_every_grip_preset_is_valid(path):
    """A preset the README or the notebook names must load and pass the checks `dishbrain grip`
    and `dishbrain culture-check` make before anything is written."""
    from dishbrain.cli.tools import culture_check_configs
    from dishbrain.grip import GripConfig, check_config, load_grip_toml

    fields = load_grip_toml(path)
    check_config(GripConfig(**fields))
    config, mea = culture_check_configs(str(path))
    assert config.n_neurons == fields["player_options"].get("n_neurons", 1000)


@pytest.mark.parametrize("path", sorted(p for p in EXPERIMENTS.rglob("*.toml")
                                        if p.parent.name != "grip"), ids=lambda p: p.name)
def test_every_experiment_and_sweep_config_is_valid(path):
    from dishbrain.experiment.sweep import load_sweep

    sweep = load_sweep(path)
    assert sweep.sessions(Path("/nonexistent/out"))


def test_dose_scales_the_direct_route_and_its_index_is_twice_the_dose():
    """The graded edit: right side x e^(d/2), wrong x e^(-d/2), mirrored against; the index of
    the move (entry 26l's) is +2d / -2d, less where the cap at the maximum bites."""
    pre = np.array([0, 0, 2, 2, 1, 3])
    post = np.array([4, 5, 4, 5, 0, 1])
    w = np.full(6, 0.03)
    d = 0.5
    toward = dose_weights(w, pre, post, _groups(), 0.08, d, toward=True)
    e = np.exp(d / 2)
    np.testing.assert_allclose(toward, [0.03 * e, 0.03 / e, 0.03 / e, 0.03 * e, 0.03, 0.03])
    against = dose_weights(w, pre, post, _groups(), 0.08, d, toward=False)
    np.testing.assert_allclose(against, [0.03 / e, 0.03 * e, 0.03 * e, 0.03 / e, 0.03, 0.03])
    assert direct_index(w, toward, pre, post, _groups()) == pytest.approx(2 * d)
    assert direct_index(w, against, pre, post, _groups()) == pytest.approx(-2 * d)
    assert direct_index(w, w, pre, post, _groups()) == pytest.approx(0.0)
    capped = dose_weights(w, pre, post, _groups(), 0.035, d, toward=True)
    assert capped[0] == 0.035 and direct_index(w, capped, pre, post, _groups()) == \
        pytest.approx(2 * (np.log(0.035 / 0.03) + d / 2))
    assert np.isnan(direct_index(w, np.zeros(6), pre, post, _groups()))   # nothing left


def test_summary_with_a_dose_reports_the_sensitivity():
    maps = {"toward": 0.5, "against": -0.1, "vertical": 1.0, "mirrored": -1.0,
            "dose-toward": 0.3, "dose-against": 0.1}
    results = []
    for i, s in enumerate((3, 4)):
        for a in ARMS + DOSE_ARMS:
            r = _result(s, a, maps[a] + 0.1 * i, 1.0)
            if a in DOSE_ARMS:
                r["direct_index"] = (1.0 if a == "dose-toward" else -1.0) * (1 + i)
            results.append(r)
    out = summarize(results, GripConfig(seeds=(3, 4), dose=0.5))
    assert out["dose"] == 0.5
    assert out["index_dose_toward"] == pytest.approx(1.5)
    assert out["index_dose_against"] == pytest.approx(-1.5)
    assert out["sensitivity"] == pytest.approx((0.35 - 0.15) / 3.0)
    assert [r["sensitivity"] for r in out["per_seed"]] == pytest.approx([0.1, 0.05])
    assert out["sensitivity_sem"] == pytest.approx(0.025)
    from dishbrain.grip import format_table
    table = format_table(out)
    assert "dose 0.5" in table and "= +0.067 map per unit of the direct route's index" in table
    assert summarize(results, GripConfig(seeds=(3, 4)))["n"] == 2     # no dose: four arms
    assert "sensitivity" not in summarize(results, GripConfig(seeds=(3, 4)))
    assert GripConfig().identity() == {k: v for k, v in GripConfig(dose=1.0).identity().items()
                                       if k != "dose"}


@pytest.mark.slow
def test_run_with_a_dose_plays_the_graded_arms(tmp_path):
    config = GripConfig(seeds=(7,), minutes=0.05, player_options=TINY, dose=0.5)
    out = run_grip(config, tmp_path, workers=1, progress=False)
    arms = {a: json.loads((tmp_path / "arms" / f"seed7-{a}.json").read_text())
            for a in ARMS + DOSE_ARMS}
    assert arms["dose-toward"]["synapses_edited"] > 0
    assert 0 < arms["dose-toward"]["direct_index"] <= 1.0 + 1e-9
    assert -1.0 - 1e-9 <= arms["dose-against"]["direct_index"] < 0
    assert arms["toward"]["direct_index"] != 0.0
    assert "sensitivity" in out and out["dose"] == 0.5
