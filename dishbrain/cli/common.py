"""What every `dishbrain` command shares: the one-line error, argument types, output folders."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


class UsageError(Exception):
    """A problem with the user's input: printed as one line, exit status 2."""


def no_display_reason() -> str | None:
    """Why a pygame window would not be seen here, or None. SDL falls back to an off-screen
    driver without a word when there is no display, so the user would wait for a window that
    never opens."""
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if driver in ("dummy", "offscreen"):
        return f"SDL_VIDEODRIVER={driver} draws off-screen"
    if (sys.platform.startswith("linux") and not driver
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))):
        return "neither DISPLAY nor WAYLAND_DISPLAY is set"
    return None


def warn_if_no_display() -> None:
    reason = no_display_reason()
    if reason:
        print(f"dishbrain: no window will be visible ({reason}); the session runs and is "
              "logged without it (--record FILE.gif keeps a video)", file=sys.stderr)


def positive_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name} must be a number > 0, got {text!r}") from None
        if not value > 0 or value != value or value == float("inf"):
            raise argparse.ArgumentTypeError(f"{name} must be a number > 0, got {text!r}")
        return value
    return parse


def positive_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number >= 1, got {text!r}")
        return value
    return parse


def non_negative_float(name: str):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not (0 <= value < float("inf")):
            raise argparse.ArgumentTypeError(f"{name} must be a number >= 0, got {text!r}")
        return value
    return parse


def non_negative_int(name: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = -1
        if value < 0:
            raise argparse.ArgumentTypeError(f"{name} must be a whole number >= 0, got {text!r}")
        return value
    return parse


def seed_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seed must be a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"seed must be a whole number >= 0, got {text!r}")
    return value


def speed(text: str) -> float:
    from dishbrain.viewer import parse_speed

    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create output folder {str(path)!r}: {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"output folder {str(path)!r} is not writable")
    return path


def minutes(name: str = "minutes"):
    """A session length: in [MIN_MINUTES, MAX_MINUTES] (dishbrain.limits)."""
    from dishbrain.limits import MINUTES_ALLOWED, minutes_ok

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not minutes_ok(value):
            raise argparse.ArgumentTypeError(f"{name} must be {MINUTES_ALLOWED}, got {text!r}")
        return value
    return parse


def check_output_dir(path: Path) -> Path:
    """``writable_dir``'s checks without leaving the folder behind (it is made later, once
    everything else is checked: nothing is written before a refusal)."""
    if path.is_dir():
        return writable_dir(path)
    try:
        check_output_file(path / ".dishbrain-probe", "output folder")
    except UsageError as exc:
        reason = str(exc).rsplit(": ", 1)[-1]
        raise UsageError(f"cannot create output folder {str(path)!r}: {reason}") from None
    return path


def check_output_file(path: Path, option: str) -> Path:
    """A file we will write after a long computation: refused now if it could not be written
    then (a folder; a parent that cannot be created or written), so nothing is lost at the end.
    A probe file is written and removed, and folders made for it are removed again."""
    import tempfile

    if path.is_dir():
        raise UsageError(f"{option} {str(path)!r} is a folder; name a file")
    made = []
    parent = path.parent
    try:
        for folder in reversed([parent, *parent.parents]):
            if not folder.exists():
                folder.mkdir()
                made.append(folder)
        with tempfile.NamedTemporaryFile(dir=parent, prefix=".dishbrain-probe-"):
            pass
        if path.exists() and not os.access(path, os.W_OK):
            raise PermissionError(13, "Permission denied")
    except OSError as exc:
        raise UsageError(f"{option} {str(path)!r} cannot be written: "
                         f"{exc.strerror or exc}") from None
    finally:
        for folder in reversed(made):
            try:
                folder.rmdir()
            except OSError:
                pass
    return path
