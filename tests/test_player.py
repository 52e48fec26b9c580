"""The player registry (dishbrain/player.py) and the README's own player, played as a user would."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from agents.simple import RandomAgent, TrackerAgent
from dishbrain.player import (
    ENTRY_POINT_GROUP,
    Agent,
    check_player_name,
    make_agent,
    player_accepts,
    player_label,
    player_names,
    player_options,
    resolve_player,
)

README = Path(__file__).resolve().parents[1] / "README.md"
BUILT_IN = {"random", "static", "tracker", "human", "culture", "dqn", "a2c", "ppo"}


# -- the registry ------------------------------------------------------------------------------

def test_the_built_in_players_are_entry_points():
    assert BUILT_IN <= set(player_names())
    values = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    assert values["tracker"] == "agents.simple:TrackerAgent"
    assert values["culture"] == "agents.culture:make_culture_agent"
    assert values["dqn"] == "agents.rl:make_dqn"


def test_unknown_name_is_one_line_listing_the_players_and_the_spec_form():
    with pytest.raises(ValueError) as info:
        make_agent("nobody")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("unknown player 'nobody'; installed: a2c, culture, dqn, human")
    assert "package.module:factory" in message
    with pytest.raises(ValueError, match="unknown player 'nobody'"):
        check_player_name("nobody")
    assert check_player_name("tracker") == "tracker"
    assert check_player_name("not_imported.yet:make") == "not_imported.yet:make"


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:make", "cannot import 'no_such_module_xyz'"),
    ("agents.simple:Nobody", "module 'agents.simple' has no 'Nobody'"),
    ("agents.simple:", "expected package.module:factory"),
    (":make", "expected package.module:factory"),
    ("agents.simple:ACTION_UP", "is not callable"),
    ("json:dumps", "returned str, not a dishbrain.player.Agent"),
])
def test_bad_specs_say_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_agent(spec, obj=1) if spec == "json:dumps" else make_agent(spec)


def test_spec_builds_any_factory_and_drops_options_it_does_not_name():
    agent = make_agent("agents.simple:TrackerAgent", dead_band=0.1, seed=3)
    assert isinstance(agent, TrackerAgent) and agent.dead_band == 0.1
    assert isinstance(resolve_player("random"), type) and resolve_player("random") is RandomAgent
    assert player_label("random") == "random"
    assert player_label("mypkg.myplayer:make") == "mypkg.myplayer.make"


def test_options_a_player_takes():
    assert player_options("tracker") == ["dead_band"]
    assert player_options("dqn") is None  # **overrides: any SB3 hyperparameter
    assert player_accepts("dqn", "obs") and not player_accepts("dqn", "condition")
    assert player_accepts("culture", "condition") and player_accepts("culture", "state_out")
    assert not player_accepts("tracker", "seed")


def test_asking_for_one_player_imports_no_other():
    code = ("import sys\nfrom dishbrain.player import make_agent, player_names\n"
            "player_names(); make_agent('tracker'); make_agent('random', seed=1)\n"
            "loaded = [m for m in ('torch', 'stable_baselines3', 'brian2', 'agents.rl', "
            "'agents.culture', 'agents.human', 'pygame') if m in sys.modules]\n"
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_which_players_own_their_clock():
    from agents.culture import CultureAgent

    assert CultureAgent.owns_clock and not Agent.owns_clock
    assert not make_agent("tracker").owns_clock and not make_agent("human").owns_clock
    pytest.importorskip("stable_baselines3")
    from agents.rl import SB3Agent

    assert SB3Agent("dqn").owns_clock and not SB3Agent("dqn", learn_online=False).owns_clock


# -- the README's "Your own player", from the README itself ------------------------------------

def _readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Your own player\n(.*?)^## ", text, re.S | re.M)
    assert match, "README.md has no '## Your own player' section"
    return match.group(1)


def _block(section: str, language: str, first_line: str) -> str:
    for body in re.findall(rf"```{language}\n(.*?)```", section, re.S):
        if body.startswith(first_line):
            return body
    raise AssertionError(f"no ```{language} block starting {first_line!r} in the README section")


def _readme_command(section: str, sub: str) -> list[str]:
    for line in _block(section, "sh", "PYTHONPATH=").splitlines():
        words = shlex.split(line)
        if words[:3] == ["PYTHONPATH=.", "dishbrain", sub]:
            return words[2:]
    raise AssertionError(f"no 'PYTHONPATH=. dishbrain {sub}' line in the README section")


def _dishbrain(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """Run the `dishbrain` console script (of this interpreter's environment) in `cwd`."""
    script = Path(sys.executable).with_name("dishbrain")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "dishbrain.cli"]
    full_env = {**os.environ, "PYTHONPATH": str(cwd), **env}
    return subprocess.run(command + args, cwd=cwd, env=full_env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def readme_player(tmp_path) -> tuple[Path, str]:
    """The README's player written to tmp_path/mypkg/myplayer.py, and the README section."""
    section = _readme_section()
    code = _block(section, "python", "# mypkg/myplayer.py")
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "myplayer.py").write_text(code, encoding="utf-8")
    body = [ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(body) <= 25, f"the README's player should stay short ({len(body)} lines)"
    return tmp_path, section


def _log(folder: Path) -> list[dict]:
    (log,) = folder.glob("*.jsonl")
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_readme_player_plays_through_the_cli(readme_player):
    where, section = readme_player
    args = _readme_command(section, "play")
    assert args[:3] == ["play", "--agent", "mypkg.myplayer:make"]
    args[args.index("--minutes") + 1] = "0.1"
    done = _dishbrain(args + ["--out", "out", "--quiet"], where)
    assert done.returncode == 0, done.stderr
    lines = _log(where / "out")
    assert lines[0]["agent"] == "lazy-tracker" and lines[-1]["kind"] == "end"
    assert lines[-1]["step"] == 600 and lines[-1]["stopped"] is False
    assert lines[-1]["hits"] >= 1  # it follows the ball: a static paddle would miss the first


def test_readme_player_plays_through_a_compare_toml(readme_player):
    where, section = readme_player
    toml = _block(section, "toml", "# my-compare.toml")
    assert 'player = "mypkg.myplayer:make"' in toml
    (where / "my-compare.toml").write_text(toml, encoding="utf-8")
    args = _readme_command(section, "compare")
    assert args == ["compare", "my-compare.toml"]
    done = _dishbrain(args + ["--out", "run", "--quiet", "--workers", "1"], where)
    assert done.returncode == 0, done.stderr
    logs = sorted(p.name for p in (where / "run" / "sessions").glob("*.jsonl"))
    assert logs == ["lazy-seed0.jsonl", "lazy-seed1.jsonl", "tracker-seed0.jsonl",
                    "tracker-seed1.jsonl"]
    header = json.loads((where / "run" / "sessions" / "lazy-seed0.jsonl").read_text()
                        .splitlines()[0])
    assert header["agent"] == "lazy-tracker"
    with open(where / "run" / "summary.csv", newline="") as f:
        assert "lazy" in {row.get("label") or row.get("player") for row in csv.DictReader(f)}


def test_readme_player_registered_by_entry_point(readme_player):
    where, section = readme_player
    ep_toml = _block(section, "toml", '[project.entry-points."dishbrain.players"]')
    name, value = (s.strip().strip('"') for s in ep_toml.splitlines()[1].split("="))
    # What `pip install -e .` of the user's package leaves on the path: a dist-info naming the
    # entry point (importlib.metadata finds it there, as it finds ours).
    dist = where / "mypkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mypkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{name} = {value}\n")
    done = _dishbrain(["play", "--agent", name, "--minutes", "0.1", "--out", "out", "--quiet"],
                      where)
    assert done.returncode == 0, done.stderr
    assert _log(where / "out")[0]["agent"] == "lazy-tracker"
    unknown = _dishbrain(["play", "--agent", "lazzy", "--out", "out2"], where)
    assert unknown.returncode == 2 and not (where / "out2").exists()
    assert f"installed: a2c, culture, dqn, human, {name}, ppo" in unknown.stderr


def test_an_experiment_toml_names_a_player_by_its_spec():
    from dishbrain.experiment import ConfigError, parse_config

    spec = "agents.simple:TrackerAgent"
    config = parse_config({"experiment": {"player": spec, "cultures": 1, "minutes": 0.2,
                                          "windows": [[0, 0.2]]}, "culture": {"dead_band": 0.1}})
    assert {p.player for p in config.players} == {spec}
    assert all(p.options == {"dead_band": 0.1} for p in config.players)
    with pytest.raises(ConfigError, match="dead_bnd is not an option of player"):
        parse_config({"experiment": {"player": spec}, "culture": {"dead_bnd": 0.1}})
    with pytest.raises(ConfigError, match="cannot import 'no_such_module_xyz'"):
        parse_config({"experiment": {"player": "no_such_module_xyz:make"}})
