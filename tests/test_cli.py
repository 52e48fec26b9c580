"""The `dishbrain` command line: one-line errors, play and analyze."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dishbrain.cli import main

PILOT_EVENTS = (Path(__file__).resolve().parents[2] / "shared" / "data" / "spikestream-pilot"
                / "events.txt")


def test_play_and_analyze(tmp_path, capsys):
    assert main(["play", "--agent", "tracker", "--minutes", "1", "--seed", "2", "--quiet",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "tracker-seed2.jsonl" in out and "ARL" in out
    assert main(["analyze", str(tmp_path)]) == 0
    assert "tracker-seed2.jsonl" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["play", "--agent", "nobody"], "unknown player 'nobody'; installed: "),
    (["play", "--agent", "no_such_module:make"], "cannot import 'no_such_module'"),
    (["play", "--agent", "random", "--minutes", "-3"], "minutes must be a number in"),
    (["play", "--agent", "random", "--minutes", "abc"], "minutes must be a number in"),
    (["play", "--agent", "random", "--seed", "x"], "seed must be a whole number"),
    (["play", "--agent", "human"], "needs a window"),
    (["analyze", "/no/such/place"], "no such file or folder"),
    (["analyze", ".", "--windows", "5-2"], "--windows must look like"),
])
def test_bad_input_is_one_line_error(argv, message, capsys, tmp_path):
    if argv[0] == "play":
        argv = argv + ["--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["play", "--agent", "random", "--minutes", "0.1",
                 "--out", str(blocker / "sub")]) == 2
    assert "cannot create output folder" in capsys.readouterr().err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "dishbrain.cli", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "play" in out and "analyze" in out


def test_analyze_the_real_pilot_session(capsys):
    if not PILOT_EVENTS.exists():
        pytest.skip("../shared (the real pilot data) is not present")
    assert main(["analyze", str(PILOT_EVENTS)]) == 0
    out = capsys.readouterr().out
    # 71 rallies, 51 hits: ARL 0.72 (measured from the log, see README)
    assert "71" in out and "0.72" in out


@pytest.mark.parametrize("env, reason", [
    ({"SDL_VIDEODRIVER": "dummy", "DISPLAY": ":0"}, "SDL_VIDEODRIVER=dummy"),
    ({"SDL_VIDEODRIVER": None, "DISPLAY": None, "WAYLAND_DISPLAY": None}, "DISPLAY"),
    ({"SDL_VIDEODRIVER": None, "DISPLAY": ":0"}, None),
])
def test_no_display_reason(env, reason, monkeypatch):
    from dishbrain.cli import no_display_reason
    monkeypatch.setattr(sys, "platform", "linux")
    for key, value in env.items():
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    got = no_display_reason()
    assert (got is None) if reason is None else (reason in got)


def test_render_without_a_display_says_so(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    assert main(["play", "--agent", "tracker", "--minutes", "0.02", "--quiet", "--render",
                 "--speed", "max", "--out", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert "no window will be visible (SDL_VIDEODRIVER=dummy" in captured.err
    assert "tracker-seed0.jsonl" in captured.out
