"""Bad input, generated (issue 15): a seeded generator of broken experiment / compare TOMLs and
command lines. Every case must end with exit status 2, exactly one line on stderr, no traceback,
and nothing written (no run folder, no output folder, no log). Bounded: a fixed number of cases
from a fixed seed, run in this process (no subprocess start-up per case).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from dishbrain.cli import main

N_TOML = 60
N_ARGV = 60

# Values no field accepts (or accepts only in some places): the generator puts them anywhere.
BAD_VALUES = ['"x"', "-1", "0", "1e308", "-1e308", "nan", "inf", "1e-9", "true", "[]", "{}",
              "[1, 2]", '""', "3.5", "1e12", '{bogus = 1}', '["stimulus", "stimulus"]']

EXPERIMENT = {
    "name": '"fz"', "player": '"culture"', "cultures": "1", "minutes": "0.1",
    "rest_minutes": "0", "conditions": '["stimulus"]', "windows": "[[0, 0.05], [0.05, 0.1]]",
    "long_threshold": "3", "bin_minutes": "0.05", "first_seed": "0", "workers": "1",
}
CULTURE = {"n_neurons": "100", "layout": None, "culture_config": "{dt_ms = 0.1}",
           "decoder_config": "{gain = 1.0}", "encoder_config": None, "backend": '"runtime"'}
COMPARE = {"name": '"fz"', "seeds": "1", "minutes": "0.1", "windows": "[[0, 0.05], [0.05, 0.1]]",
           "bin_minutes": "0.05", "workers": "1"}
PLAYER = {"player": '"random"', "label": '"r"', "minutes": "0.1", "rest_minutes": "0"}


def _table(name: str, fields: dict[str, str | None]) -> str:
    lines = [f"[{name}]"] + [f"{k} = {v}" for k, v in fields.items() if v is not None]
    return "\n".join(lines) + "\n"


def _bad_toml(rng: random.Random) -> tuple[str, str]:
    """(kind, text): a config with one thing wrong (a value, a key, the syntax or a table)."""
    kind = rng.choice(["experiment", "compare"])
    if kind == "experiment":
        main_t, sub_name, sub = dict(EXPERIMENT), "culture", dict(CULTURE)
    else:
        main_t, sub_name, sub = dict(COMPARE), "players", dict(PLAYER)
    how = rng.choice(["value", "value", "value", "sub-value", "unknown-key", "syntax", "table"])
    if how == "value":
        main_t[rng.choice(list(main_t))] = rng.choice(BAD_VALUES)
    elif how == "sub-value":
        key = rng.choice(list(sub))
        sub[key] = rng.choice(BAD_VALUES)
    elif how == "unknown-key":
        (main_t if rng.random() < 0.5 else sub)[f"bogus_{rng.randrange(99)}"] = "1"
    text = _table(kind, main_t)
    text += _table(f"[{sub_name}]" if sub_name == "players" else sub_name, sub)
    if how == "syntax":
        cut = rng.randrange(1, len(text) - 1)
        text = text[:cut] + rng.choice(["= =", "[", '"', "\x00", "]]"]) + text[cut:]
    elif how == "table":
        text = text.replace(f"[{kind}]", rng.choice(["[experimnet]", "[game]", ""]), 1)
    return kind, text


def _is_valid(kind: str, text: str, path: Path) -> bool:
    """Whether the generator happened to write a config that is fine (skipped, not asserted)."""
    from dishbrain.experiment import ConfigError, load_config

    path.write_text(text, encoding="utf-8")
    try:
        load_config(path, kind=kind)
    except ConfigError:
        return False
    return True


def _assert_refused(argv: list[str], capsys, nothing_at: list[Path]) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors (usage line + one error line)
        code = exc.code
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
    else:
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (argv, err)
    assert "Traceback" not in err, (argv, err)
    assert len(lines) == 1, (argv, err)
    for path in nothing_at:
        assert not path.exists(), (argv, path)


def test_bad_tomls(tmp_path, capsys):
    rng = random.Random(1515)
    tried = 0
    for i in range(N_TOML):
        kind, text = _bad_toml(rng)
        config = tmp_path / f"c{i}.toml"
        if _is_valid(kind, text, config):
            continue
        out = tmp_path / f"run{i}"
        _assert_refused([kind, str(config), "--out", str(out), "--quiet"], capsys, [out])
        tried += 1
    assert tried >= N_TOML // 2


def _bad_argv(rng: random.Random, out: Path) -> list[str]:
    bad_number = rng.choice(["-1", "0", "abc", "1e308", "nan", "inf", "-inf", "1e-9", "", "2.5x",
                             "--", "9" * 400])
    choices = [
        ["play", "--agent", "random", "--minutes", bad_number],
        ["play", "--agent", "random", "--seed", bad_number],
        ["play", "--agent", "culture", "--neurons", bad_number],
        ["play", "--agent", rng.choice(["nobody", "no_such_module:f", ":", "os:path", ""])],
        ["play", "--agent", "random", "--speed", bad_number],
        ["play", "--agent", "tracker", rng.choice(["--save-state", "--load-state"]), "x.npz"],
        ["play", "--agent", "random", "--condition", "stimulus"],
        ["play", "--agent", "culture", "--load-state", str(out.parent / "no-such.npz")],
        ["play", "--agent", "culture", "--save-state", rng.choice(["/proc/x/y.npz", "/"])],
        ["play", "--agent", "culture", "--backend", "gpu"],
        ["play", "--agent", "dqn", "--obs", "pixels"],
        ["analyze", str(out.parent / "nothing-here")],
        ["analyze", ".", "--windows", rng.choice(["5-2", "a-b", "1", "-1-2", "0-0"])],
        ["analyze", ".", "--long-threshold", bad_number],
        ["replay", str(out.parent / "no-log.jsonl")],
        ["replay", str(out.parent / "no-log.jsonl"), "--png", "x.gif"],
        ["experiment", str(out.parent / "none.toml")],
        ["compare", str(out.parent)],
        ["report", str(out.parent / "no-run")],
        ["culture-check", "--neurons", bad_number, "--out", str(out)],
        ["grip", "--minutes", bad_number, "--out", str(out)],
        [rng.choice(["plya", "", "--bogus"])],
    ]
    argv = list(rng.choice(choices))
    if argv[0] == "play":
        argv += ["--out", str(out), "--quiet"]
    return argv


def test_bad_command_lines(tmp_path, capsys):
    rng = random.Random(1516)
    for i in range(N_ARGV):
        out = tmp_path / f"out{i}"
        argv = _bad_argv(rng, out)
        if argv[:2] == ["play", "--agent"] and argv[2:3] == ["random"] and "--minutes" in argv:
            pass
        if "--speed" in argv and argv[argv.index("--speed") + 1] in ("inf",):
            continue  # "inf" is a speed ("as fast as it goes" is also spelled max)
        _assert_refused(argv, capsys, [out])


@pytest.mark.parametrize("text", ["", "\x00\x01", "[experiment]\nname = 1\n", "a = [\n"])
def test_degenerate_files(text, tmp_path, capsys):
    config = tmp_path / "c.toml"
    config.write_text(text)
    _assert_refused(["experiment", str(config), "--out", str(tmp_path / "run")], capsys,
                    [tmp_path / "run"])
