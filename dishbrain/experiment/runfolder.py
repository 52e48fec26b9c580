"""The run folder: its layout, the config copied in, the manifest, the lock, and what is done.

::

    <out>/config.toml                   the config, copied (a rerun must use the same one)
    <out>/manifest.json                 versions, git commit, command line, times, outcome
    <out>/sessions/<label>-seed<N>.jsonl        each session's log (dishbrain/session.py);
                                                 committed results hold them as .jsonl.gz
    <out>/sessions/<label>-seed<N>-rest.jsonl   its rest recording, if rest_minutes > 0
    <out>/sessions/<label>-seed<N>.error.txt    a failed session's traceback
    <out>/states/<label>-seed<N>-rest.npz       the culture's state after its rest recording
    <out>/summary.csv, report.md, *.png         the report (dishbrain/report/)
    <out>/.lock                                 held while a run writes here

The runner writes here; the report only reads (`load_run_config`, `session_finished`).
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import filelock
import tomli_w

from dishbrain.experiment.config import (
    SESSIONS_DIR,
    ConfigError,
    RunConfig,
    load_config,
    parse_config,
)
from dishbrain.experiment.tasks import session_finished

__all__ = ["CONFIG_NAME", "MANIFEST_NAME", "WRITERS_LOCK_NAME", "RunLock", "WritersLock",
           "config_toml", "git_commit", "load_run_config", "prepare_folder", "session_finished",
           "write_manifest", "writers_busy"]

CONFIG_NAME = "config.toml"
MANIFEST_NAME = "manifest.json"
LOCK_NAME = ".lock"


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The config a run folder was started with (its players are not imported)."""
    run_dir = Path(run_dir)
    return load_config(run_dir / CONFIG_NAME, check_players=False,
                       default_name=run_dir.resolve().name)


def config_toml(config: RunConfig) -> str:
    """`config` as a TOML document that `parse_config` reads back to the same RunConfig (for runs
    started from a RunConfig, not a file)."""
    seeds = list(config.seeds)
    if seeds != list(range(seeds[0], seeds[0] + len(seeds))):
        raise ValueError(f"RunConfig.seeds must be consecutive to be written as TOML "
                         f"(first_seed and a count), got {seeds}")
    common = {"workers": config.workers, "windows": [list(w) for w in config.windows],
              "long_threshold": config.long_threshold, "bin_minutes": config.bin_minutes}
    if config.kind == "experiment":
        p = config.players[0]
        doc: dict[str, Any] = {"experiment": {
            "name": config.name, "player": p.player, "cultures": len(seeds),
            "first_seed": seeds[0], "minutes": p.minutes, "rest_minutes": p.rest_minutes,
            "conditions": [q.condition for q in config.players], **common}}
        doc["culture"] = p.options
    else:
        table = {"name": config.name, "seeds": len(seeds), "first_seed": seeds[0], **common}
        if config.reference is not None:
            table["reference"] = config.reference
        players = []
        for p in config.players:
            entry = {"player": p.player, "label": p.label}
            if p.condition is not None:
                entry["condition"] = p.condition
            entry.update(minutes=p.minutes, rest_minutes=p.rest_minutes, options=p.options)
            players.append(entry)
        doc = {"compare": table, "players": players}
    doc["game"] = config.game
    text = tomli_w.dumps(doc)
    # What the runner will read back: a config this writer cannot express fails here, not later.
    if parse_config(tomllib.loads(text), check_players=False).identity() != config.identity():
        raise ValueError(f"RunConfig {config.name!r} cannot be written as TOML faithfully")
    return text


def prepare_folder(config: RunConfig, run_dir: Path, config_text: str | None) -> None:
    """Copy the config in; a folder started with another config is refused (its logs would mix)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SESSIONS_DIR).mkdir(exist_ok=True)
    saved = run_dir / CONFIG_NAME
    if saved.exists():
        try:
            old = load_run_config(run_dir)
        except ConfigError as exc:
            raise ConfigError(f"run folder {str(run_dir)!r} holds a config that cannot be read "
                              f"({exc}); use another --out") from None
        new_id, old_id = config.identity(), old.identity()
        if new_id != old_id:
            keys = sorted(k for k in set(new_id) | set(old_id) if new_id.get(k) != old_id.get(k))
            raise ConfigError(f"run folder {str(run_dir)!r} was started with a different config "
                              f"(differs in {', '.join(keys)}); use another --out or delete it")
        return
    if config_text is None:
        config_text = config_toml(config)
    saved.write_text(config_text, encoding="utf-8")


def write_manifest(run_dir: Path, record: dict[str, Any]) -> None:
    """Write this invocation's record; earlier invocations' records go to its ``history``."""
    path = run_dir / MANIFEST_NAME
    history: list = []
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
            history = old.get("history", [])
            # One record per invocation: "started" has 1 s resolution, too coarse for a quick rerun.
            if old.get("invocation") != record["invocation"]:
                history = history + [{k: v for k, v in old.items() if k != "history"}]
        except (OSError, json.JSONDecodeError, AttributeError):
            pass
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**record, "history": history}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


class RunLock:
    """One run per folder at a time: a second is refused at once, with a one-line ConfigError.

    An OS file lock (`filelock`: fcntl on POSIX, msvcrt on Windows), released when the process
    dies. The lock file stays (deleting it would let a process that opened it just before lock a
    file no longer in the folder).
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.lock = filelock.FileLock(self.path, blocking=False)

    def __enter__(self) -> RunLock:
        try:
            self.lock.acquire()
        except filelock.Timeout:
            raise ConfigError(f"another run is writing to {str(self.path.parent)!r}; "
                              "wait for it or use another --out") from None
        busy = [p for p in sorted(self.path.parent.rglob(WRITERS_LOCK_NAME)) if writers_busy(p)]
        if busy:
            self.lock.release()
            raise ConfigError(f"processes of an earlier run are still writing into "
                              f"{str(busy[0].parent)!r}; wait a few seconds and run again")
        return self

    def __exit__(self, *exc) -> None:
        self.lock.release()


#: Held shared by every worker process while it plays a session into that folder (see
#: `WritersLock`); the run's own lock checks it, so a rerun cannot start while an orphaned worker
#: of a killed run still writes (issue 15).
WRITERS_LOCK_NAME = ".writers.lock"


class WritersLock:
    """A shared lock that a worker holds on its session folder while it plays a session.

    `RunLock` covers the run's own process; the workers of a pool are other processes (the
    forkserver's children), which outlive a ``kill -9`` of the run for up to a second before they
    notice. Each takes this lock shared (POSIX ``flock``: `filelock` offers no shared mode but
    its SQLite one), released by the OS when the worker dies; `RunLock` refuses a run while any
    is held. Elsewhere than POSIX it does nothing.
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / WRITERS_LOCK_NAME
        self._file = None

    def __enter__(self) -> WritersLock:
        try:
            import fcntl
        except ImportError:
            return self
        self._file = open(self.path, "a+b")
        fcntl.flock(self._file, fcntl.LOCK_SH)
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()  # releases the lock
            self._file = None


def writers_busy(path: Path) -> bool:
    """True while some process holds the writers' lock at `path` (see `WritersLock`)."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        with open(path, "a+b") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:
        return False
    return False


def git_commit(path: str | Path | None = None) -> dict[str, Any] | None:
    """The project's git commit (and whether tracked files differ from it), if git knows it."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head.stdout.strip(),
            "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")
