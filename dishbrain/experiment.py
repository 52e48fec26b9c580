"""The protocol runner: configs, sessions as independent tasks, the executor seam, resume.

Two studies run on it:

- ``dishbrain experiment`` - the DishBrain protocol of Kagan et al. 2022 ("In vitro neurons learn
  and exhibit sentience when embodied in a simulated game-world", Neuron 110:3952): N cultures
  (seeds), each played in every condition (Stimulus, Silent, No-feedback, optionally Rest) for a
  20-minute session, optionally after a rest recording of the same culture; learning is read as
  the change from minutes 0-5 to minutes 5-20 (Fig. 5).
- ``dishbrain compare`` - the comparison of Khajehnejad et al. 2025 ("Biological neurons compete
  with deep reinforcement learning in sample efficiency in a simulated gameworld", Cyborg and
  Bionic Systems 6:0336): any players (``dishbrain.player``: the culture, DQN/A2C/PPO with
  each input design, the reference players, any ``package.module:factory``) over N seeds, with the same metrics; a player's
  ``minutes`` may exceed a session (sample efficiency: up to 10x the culture's game time).

Every session is one task (`SessionSpec`: player, options, seed, minutes, condition, label, log
path, optional rest recording first) that builds its own player and plays with `play_session`,
so tasks share nothing and can run anywhere. Where they run is the `Executor` seam:
`LocalExecutor` runs them on this machine's cores; a cluster engine implements the same
protocol. A session is *finished* when its log ends with an ``end`` line with
``"stopped": false``; a rerun skips finished sessions and reruns everything else from scratch,
so a crash or Ctrl-C loses at most the sessions in flight.

Config files (TOML)
-------------------
The experiment::

    [experiment]
    name = "dishbrain"            # run folder runs/<name> unless --out; default: the file's stem
    player = "culture"            # any registry player (stand-ins such as "random" for tests)
    cultures = 8                  # seeds first_seed .. first_seed + cultures - 1
    first_seed = 0
    minutes = 20                  # game time of each session
    rest_minutes = 0              # > 0: a rest recording of the same culture before each session
    conditions = ["stimulus", "silent", "no-feedback"]   # and/or "rest"
    workers = 2                   # parallel sessions (default: the machine's cores)
    windows = [[0, 5], [5, 20]]   # analysis windows, minutes (Kagan et al. 2022, Fig. 5)
    long_threshold = 3            # a long rally has more than this many hits
    bin_minutes = 1               # learning-curve bins
    [culture]                     # keyword options of the player (n_neurons, layout, ...);
    n_neurons = 1000              # sub-tables (culture_config, ...) are passed as dicts
    [game]                        # PongConfig field overrides
    miss_pause_ms = 4000

The comparison (``[compare]`` takes the keys of ``[experiment]`` except player, cultures,
rest_minutes and conditions, plus ``seeds`` and ``reference``)::

    [compare]
    name = "compare"
    seeds = 5                     # seeds first_seed .. first_seed + seeds - 1
    minutes = 20                  # default session length of every player
    reference = "culture"         # the label the between-player tests compare against
    [[players]]                   # one table per player; all keys but `player` optional
    player = "culture"
    label = "culture"             # default: player[-condition]; names the logs and the plots
    condition = "stimulus"
    options = { n_neurons = 1000 }
    minutes = 20                  # per-player game time (e.g. 200 = 10 sessions)
    rest_minutes = 0
    [[players]]
    player = "dqn"
    label = "dqn-positions"
    options = { obs = "positions" }

Run folder
----------
::

    <out>/config.toml                   the config, copied (a rerun must use the same one)
    <out>/manifest.json                 versions, git commit, command line, times, outcome
    <out>/sessions/<label>-seed<N>.jsonl        each session's log (dishbrain/session.py)
    <out>/sessions/<label>-seed<N>-rest.jsonl   its rest recording, if rest_minutes > 0
    <out>/sessions/<label>-seed<N>.error.txt    a failed session's traceback
    <out>/states/<label>-seed<N>-rest.npz       the culture's state after its rest recording
    <out>/summary.csv, report.md, *.png         the report (dishbrain/report.py)
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import multiprocessing
import os
import shlex
import signal
import subprocess
import sys
import time
import tomllib
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dishbrain.feedback import FEEDBACK_RULES

__all__ = [
    "CONDITIONS",
    "ConfigError",
    "PlayerSpec",
    "RunConfig",
    "RestSpec",
    "SessionSpec",
    "TaskResult",
    "TaskOutcome",
    "Executor",
    "LocalExecutor",
    "RunSummary",
    "load_config",
    "load_run_config",
    "parse_config",
    "session_finished",
    "run_task",
    "run",
]

#: The conditions of Kagan et al. 2022 (PROTOCOL.md): the culture's feedback rule after a miss.
CONDITIONS = tuple(FEEDBACK_RULES)  # "stimulus", "silent", "no-feedback", "rest"
#: The published analysis windows (Kagan et al. 2022, Fig. 5): minutes 0-5 versus 5-20.
DEFAULT_WINDOWS = ((0.0, 5.0), (5.0, 20.0))
DEFAULT_CONDITIONS = ("stimulus", "silent", "no-feedback")
#: Options the runner sets itself for every session; a config may not set them.
RUNNER_OPTIONS = ("seed", "condition", "state_in", "state_out")
KINDS = ("experiment", "compare")

CONFIG_NAME = "config.toml"
MANIFEST_NAME = "manifest.json"
SESSIONS_DIR = "sessions"
STATES_DIR = "states"
_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+")


class ConfigError(ValueError):
    """A config (or a run folder) the runner cannot use; the message is one line naming the key."""


# --------------------------------------------------------------------------------------------
# Configs


@dataclass(frozen=True)
class PlayerSpec:
    """One group of sessions: a player with its options, played once per seed."""

    label: str
    player: str
    options: dict[str, Any]
    condition: str | None
    minutes: float
    rest_minutes: float = 0.0


@dataclass(frozen=True)
class RunConfig:
    """A validated experiment or comparison: groups x seeds, and how to analyse them.

    ``kind`` is ``"experiment"`` (one player, one group per condition, tests between every pair
    of conditions) or ``"compare"`` (a list of players, tests of each against ``reference``).
    """

    kind: str
    name: str
    players: tuple[PlayerSpec, ...]
    seeds: tuple[int, ...]
    workers: int
    windows: tuple[tuple[float, float], ...] = DEFAULT_WINDOWS
    long_threshold: int = 3
    bin_minutes: float = 1.0
    game: dict[str, Any] = field(default_factory=dict)
    reference: str | None = None

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.players]

    @property
    def max_minutes(self) -> float:
        return max(p.minutes for p in self.players)

    def comparisons(self) -> list[tuple[str, str]]:
        """The pairs of group labels the report tests against each other."""
        labels = self.labels
        if self.reference is None:
            return [(a, b) for i, a in enumerate(labels) for b in labels[i + 1:]]
        return [(self.reference, b) for b in labels if b != self.reference]

    def identity(self) -> dict[str, Any]:
        """Everything that decides the results (all but ``workers`` and ``name``), as JSON data."""
        data = dataclasses.asdict(self)
        data.pop("workers")
        data.pop("name")  # the default name is the file's stem, and the copy is config.toml
        return json.loads(json.dumps(data))

    def sessions(self, run_dir: str | Path) -> list["SessionSpec"]:
        """Every session of the run, seed-major so that early results cover every group."""
        run_dir = Path(run_dir)
        specs = []
        for seed in self.seeds:
            for p in self.players:
                key = f"{p.label}-seed{seed}"
                rest = None
                if p.rest_minutes > 0:
                    rest = RestSpec(
                        minutes=p.rest_minutes,
                        log_path=run_dir / SESSIONS_DIR / f"{key}-rest.jsonl",
                        state_path=run_dir / STATES_DIR / f"{key}-rest.npz",
                    )
                specs.append(SessionSpec(
                    player=p.player, options=dict(p.options), seed=seed, minutes=p.minutes,
                    condition=p.condition, label=p.label,
                    log_path=run_dir / SESSIONS_DIR / f"{key}.jsonl",
                    game=dict(self.game), rest=rest,
                ))
        return specs


class _Table:
    """Reads one TOML table, key by key; every error names the key and what is allowed."""

    _REQUIRED = object()

    def __init__(self, values: Any, where: str, source: str):
        self.source = source
        self.where = where
        if not isinstance(values, dict):
            self.fail(f"{where} must be a table, got {_show(values)}")
        self.values = values
        self.used: set[str] = set()

    def fail(self, message: str):
        raise ConfigError(f"{self.source}: {message}")

    def key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def has(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str, parse: Callable[[str, Any], Any], default: Any = _REQUIRED) -> Any:
        self.used.add(key)
        if key not in self.values:
            if default is self._REQUIRED:
                self.fail(f"{self.key(key)} is required")
            return default
        try:
            return parse(self.key(key), self.values[key])
        except ConfigError as exc:
            self.fail(str(exc))

    def finish(self) -> None:
        unknown = sorted(set(self.values) - self.used)
        if unknown:
            where = f"in {self.where}" if self.where else "at the top level"
            allowed = ", ".join(sorted(self.used))
            self.fail(f"unknown key {unknown[0]!r} {where}; allowed: {allowed}")


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _int(minimum: int):
    def parse(key: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{key} must be a whole number >= {minimum}, got {_show(value)}")
        return value
    return parse


def _number(minimum: float, strict: bool):
    relation = ">" if strict else ">="

    def parse(key: str, value: Any) -> float:
        ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
              and math.isfinite(value) and (value > minimum if strict else value >= minimum))
        if not ok:
            raise ConfigError(f"{key} must be a number {relation} {minimum:g}, got {_show(value)}")
        return float(value)
    return parse


def _label(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value or not set(value) <= _LABEL_CHARS:
        raise ConfigError(f"{key} must be a non-empty name of letters, digits and - _ . +, "
                          f"got {_show(value)}")
    return value


def _choice(choices: Sequence[str]):
    def parse(key: str, value: Any) -> str:
        if value not in choices:
            raise ConfigError(f"{key} must be one of {', '.join(choices)}; got {_show(value)}")
        return value
    return parse


def _player(key: str, value: Any) -> str:
    """An installed player's name or package.module:factory (imported later, by _check_player)."""
    from dishbrain.player import check_player_name

    try:
        return check_player_name(value)
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def _conditions(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key} must be a non-empty list of {', '.join(CONDITIONS)}; "
                          f"got {_show(value)}")
    for item in value:
        if item not in CONDITIONS:
            raise ConfigError(f"{key} must list conditions out of {', '.join(CONDITIONS)}; "
                              f"got {_show(item)}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{key} lists a condition twice: {_show(value)}")
    return tuple(value)


def _windows(key: str, value: Any) -> tuple[tuple[float, float], ...]:
    wanted = ("a non-empty list of [start, end] minutes with 0 <= start < end, "
              "e.g. [[0, 5], [5, 20]]")
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key} must be {wanted}; got {_show(value)}")
    out = []
    for item in value:
        ok = (isinstance(item, list) and len(item) == 2
              and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                      and math.isfinite(x) for x in item)
              and 0 <= item[0] < item[1])
        if not ok:
            raise ConfigError(f"{key} must be {wanted}; got {_show(item)}")
        out.append((float(item[0]), float(item[1])))
    return tuple(out)


def _dict(key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table, got {_show(value)}")
    return dict(value)


def _game(table: _Table, key: str) -> dict[str, Any]:
    from envs.pong import PongConfig

    game = table.get(key, _dict, {})
    try:
        PongConfig.from_dict(game)
    except (TypeError, ValueError) as exc:
        table.fail(f"[{key}]: {exc}")
    return game


def _check_player(table: _Table, where: str, player: str, options: dict[str, Any]) -> None:
    """The player exists here and takes every option (make_agent would silently drop a typo)."""
    from dishbrain.player import player_options, resolve_player

    for name in options:
        if name in RUNNER_OPTIONS:
            table.fail(f"{where}.{name} is set by the runner (seeds, conditions and rest "
                       "recordings are keys of the config); remove it")
    try:
        factory = resolve_player(player)
    except ValueError as exc:
        table.fail(str(exc))
    if getattr(factory, "needs_window", False):
        table.fail(f"player {player!r} needs a window; the runner plays without one")
    names = player_options(player)
    if names is None:  # the factory takes **kwargs
        return
    allowed = [n for n in names if n not in RUNNER_OPTIONS]
    for name in options:
        if name not in allowed:
            table.fail(f"{where}.{name} is not an option of player {player!r}; allowed: "
                       f"{', '.join(allowed) or '(none)'}")


def _seeds(first: int, count: int) -> tuple[int, ...]:
    return tuple(range(first, first + count))


def _check_windows(table: _Table, key: str, windows, max_minutes: float) -> None:
    for lo, hi in windows:
        if hi > max_minutes + 1e-9:
            table.fail(f"{table.key(key)}: the window [{lo:g}, {hi:g}] ends after the longest "
                       f"session ({max_minutes:g} minutes)")


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _common(table: _Table) -> dict[str, Any]:
    return {
        "workers": table.get("workers", _int(1), _default_workers()),
        "windows": table.get("windows", _windows, DEFAULT_WINDOWS),
        "long_threshold": table.get("long_threshold", _int(0), 3),
        "bin_minutes": table.get("bin_minutes", _number(0, strict=True), 1.0),
    }


def _parse_experiment(data: dict, source: str, stem: str, check_players: bool) -> RunConfig:
    top = _Table(data, "", source)
    exp = _Table(top.get("experiment", _dict), "experiment", source)
    name = exp.get("name", _label, stem)
    player = exp.get("player", _player, "culture")
    cultures = exp.get("cultures", _int(1), 8)
    first_seed = exp.get("first_seed", _int(0), 0)
    minutes = exp.get("minutes", _number(0, strict=True), 20.0)
    rest_minutes = exp.get("rest_minutes", _number(0, strict=False), 0.0)
    conditions = exp.get("conditions", _conditions, DEFAULT_CONDITIONS)
    common = _common(exp)
    exp.finish()
    _check_windows(exp, "windows", common["windows"], minutes)
    options = top.get("culture", _dict, {})
    game = _game(top, "game")
    top.finish()
    if check_players:
        _check_player(top, "culture", player, options)
    players = tuple(PlayerSpec(label=c, player=player, options=options, condition=c,
                               minutes=minutes, rest_minutes=rest_minutes) for c in conditions)
    return RunConfig(kind="experiment", name=name, players=players,
                     seeds=_seeds(first_seed, cultures), game=game, reference=None, **common)


def _parse_compare(data: dict, source: str, stem: str, check_players: bool) -> RunConfig:
    from dishbrain.player import player_label

    top = _Table(data, "", source)
    cmp = _Table(top.get("compare", _dict), "compare", source)
    name = cmp.get("name", _label, stem)
    seeds = cmp.get("seeds", _int(1), 5)
    first_seed = cmp.get("first_seed", _int(0), 0)
    minutes = cmp.get("minutes", _number(0, strict=True), 20.0)
    reference = cmp.get("reference", _label, None)
    common = _common(cmp)
    cmp.finish()

    entries = top.get("players", lambda k, v: v)
    if not (isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries)):
        top.fail("players must be a non-empty list of tables ([[players]] player = \"random\" ...)")
    players = []
    for i, entry in enumerate(entries):
        t = _Table(entry, f"players[{i}]", source)
        player = t.get("player", _player)
        condition = t.get("condition", _choice(CONDITIONS), None)
        default_label = player_label(player) + (f"-{condition}" if condition else "")
        label = t.get("label", _label, default_label)
        options = t.get("options", _dict, {})
        p_minutes = t.get("minutes", _number(0, strict=True), minutes)
        rest = t.get("rest_minutes", _number(0, strict=False), 0.0)
        t.finish()
        if label in (p.label for p in players):
            t.fail(f"{t.key('label')} {label!r} is used twice; give each player a unique label")
        if check_players:
            _check_player(t, t.key("options"), player, options)
        players.append(PlayerSpec(label=label, player=player, options=options,
                                  condition=condition, minutes=p_minutes, rest_minutes=rest))
    game = _game(top, "game")
    top.finish()
    labels = [p.label for p in players]
    if reference is None:
        reference = "culture" if "culture" in labels else labels[0]
    elif reference not in labels:
        cmp.fail(f"compare.reference must be one of the player labels {', '.join(labels)}; "
                 f"got {reference!r}")
    _check_windows(cmp, "windows", common["windows"], max(p.minutes for p in players))
    return RunConfig(kind="compare", name=name, players=tuple(players),
                     seeds=_seeds(first_seed, seeds), game=game, reference=reference, **common)


def parse_config(data: dict, source: str = "config", stem: str = "run", kind: str | None = None,
                 check_players: bool = True) -> RunConfig:
    """Validate a parsed TOML document as an experiment or a comparison.

    ``kind`` requires one of them; None takes whichever the document holds. With
    ``check_players`` each player's factory is imported and its options checked against it.
    """
    found = [k for k in KINDS if k in data]
    if kind is None:
        if len(found) != 1:
            raise ConfigError(f"{source}: expected one [experiment] or [compare] table, "
                              f"found {len(found)}")
        kind = found[0]
    elif kind not in data:
        other = f" (it holds [{found[0]}]: use dishbrain {found[0]})" if found else ""
        raise ConfigError(f"{source}: expected an [{kind}] table{other}")
    parse = _parse_experiment if kind == "experiment" else _parse_compare
    return parse(data, source, stem, check_players)


def load_config(path: str | Path, kind: str | None = None, check_players: bool = True,
                default_name: str | None = None) -> RunConfig:
    """Read and validate a TOML config (see the module docstring for the format).

    The name defaults to ``default_name``, else the file's stem.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"no such config file: {str(path)!r}") from None
    except IsADirectoryError:
        raise ConfigError(f"{str(path)!r} is a folder, expected a TOML config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {str(path)!r}: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, str(path), default_name or path.stem, kind, check_players)


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The config a run folder was started with (its players are not imported)."""
    run_dir = Path(run_dir)
    return load_config(run_dir / CONFIG_NAME, check_players=False,
                       default_name=run_dir.resolve().name)


# --------------------------------------------------------------------------------------------
# Tasks


@dataclass(frozen=True)
class RestSpec:
    """A rest recording before the session: same player and seed, condition "rest"; the player's
    state after it (``state_out``) is where the session starts (``state_in``)."""

    minutes: float
    log_path: Path
    state_path: Path


@dataclass(frozen=True)
class SessionSpec:
    """One independent task: build the player, (rest,) play one session, write its log."""

    player: str
    options: dict[str, Any]
    seed: int
    minutes: float
    condition: str | None
    label: str
    log_path: Path
    game: dict[str, Any] = field(default_factory=dict)
    rest: RestSpec | None = None

    @property
    def key(self) -> str:
        return f"{self.label}-seed{self.seed}"

    @property
    def error_path(self) -> Path:
        return self.log_path.with_suffix(".error.txt")


@dataclass(frozen=True)
class TaskResult:
    steps: int
    wall_s: float
    stopped: bool
    rest_wall_s: float = 0.0


@dataclass(frozen=True)
class TaskOutcome:
    """What an executor reports for a task: a result, or a one-line error."""

    spec: SessionSpec
    result: TaskResult | None = None
    error: str | None = None

    @property
    def stopped(self) -> bool:
        return self.result is not None and self.result.stopped


def session_finished(path: str | Path) -> bool:
    """True when the log ends with an ``end`` line with ``"stopped": false``."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 4096))
            tail = f.read().decode("utf-8", errors="replace")
    except OSError:
        return False
    lines = [ln for ln in tail.splitlines() if ln.strip()]
    if not lines:
        return False
    try:
        last = json.loads(lines[-1])
    except json.JSONDecodeError:
        return False
    return isinstance(last, dict) and last.get("kind") == "end" and last.get("stopped") is False


def _takes(player: str, option: str) -> bool:
    """Whether the player's factory names `option` (a catch-all **kwargs does not count: the RL
    factories pass those on as hyperparameters)."""
    from dishbrain.player import player_accepts

    return player_accepts(player, option)


def _play(spec: SessionSpec, *, log_path: Path, minutes: float, condition: str | None,
          extra: dict[str, Any], progress: bool | int, desc: str):
    from dishbrain.player import make_agent
    from dishbrain.session import Progress, play_session, session_steps
    from envs.pong import PongConfig

    options = {**spec.options, "seed": spec.seed, **extra}
    if condition is not None and _takes(spec.player, "condition"):
        options["condition"] = condition  # for other players the condition is only a label
    agent = make_agent(spec.player, **options)
    wrappers = []
    if progress is not False:
        position = None if progress is True else int(progress)

        def bar(env):
            steps = session_steps(minutes, env.unwrapped.config.tick_ms)
            return Progress(env, steps, desc=desc, position=position)
        wrappers.append(bar)
    try:
        return play_session(agent, log_path=log_path, minutes=minutes, seed=spec.seed,
                            env_config=PongConfig.from_dict(spec.game), condition=condition,
                            progress=False, wrappers=wrappers,
                            agent_config=getattr(agent, "config_dict", None) or dict(spec.options))
    finally:
        agent.close()


def run_task(spec: SessionSpec, progress: bool | int = False) -> TaskResult:
    """Play one task from scratch: the rest recording (unless it finished and left its state),
    then the session. Runs in a worker process or in-process; a failure leaves its traceback in
    ``spec.error_path`` and re-raises."""
    spec.error_path.unlink(missing_ok=True)
    try:
        rest_wall = 0.0
        extra: dict[str, Any] = {}
        rest = spec.rest
        if rest is not None:
            keeps_state = _takes(spec.player, "state_out")
            reuse = (session_finished(rest.log_path)
                     and (not keeps_state or rest.state_path.exists()))
            if not reuse:
                rest_extra = {}
                if keeps_state:
                    rest.state_path.parent.mkdir(parents=True, exist_ok=True)
                    rest.state_path.unlink(missing_ok=True)
                    rest_extra["state_out"] = str(rest.state_path)
                result = _play(spec, log_path=rest.log_path, minutes=rest.minutes,
                               condition="rest", extra=rest_extra, progress=progress,
                               desc=f"{spec.key} rest")
                rest_wall = result.wall_s
                if result.stopped:
                    return TaskResult(steps=0, wall_s=0.0, stopped=True, rest_wall_s=rest_wall)
                if keeps_state and not rest.state_path.exists():
                    raise RuntimeError(f"player {spec.player!r} did not save its state to "
                                       f"{rest.state_path} after the rest recording")
            if keeps_state:
                extra["state_in"] = str(rest.state_path)
        result = _play(spec, log_path=spec.log_path, minutes=spec.minutes,
                       condition=spec.condition, extra=extra, progress=progress, desc=spec.key)
        return TaskResult(steps=result.steps, wall_s=result.wall_s, stopped=result.stopped,
                          rest_wall_s=rest_wall)
    except KeyboardInterrupt:
        raise
    except BaseException:
        spec.error_path.parent.mkdir(parents=True, exist_ok=True)
        spec.error_path.write_text(traceback.format_exc(), encoding="utf-8")
        raise


# --------------------------------------------------------------------------------------------
# Executors: where tasks run


class Executor(Protocol):
    """Runs independent tasks and reports each as it ends; the seam for other engines.

    ``run`` calls ``run_task(spec, progress)`` for every spec (in any order, anywhere) and yields a
    `TaskOutcome` per task as it finishes. On KeyboardInterrupt it stops its tasks (their logs end
    with ``"stopped": true`` or without an end line) and re-raises. A consumer that stops
    iterating early (closing the generator) gets no more tasks started.
    """

    workers: int

    def run(self, tasks: Sequence[SessionSpec], progress: bool) -> Iterator[TaskOutcome]: ...


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


_interrupted = False
_in_task = False


def _on_sigint(signum, frame):
    """In a worker: the first Ctrl-C stops the task in flight (cleanly, via play_session);
    repeats, and Ctrl-C between tasks, are ignored so the clean-up finishes."""
    global _interrupted
    if _in_task and not _interrupted:
        _interrupted = True
        raise KeyboardInterrupt


def _init_worker(tqdm_lock, sigint_ignored: bool) -> None:
    if tqdm_lock is not None:
        from tqdm import tqdm

        tqdm.set_lock(tqdm_lock)
    # A run started with Ctrl-C ignored (nohup, a background job) keeps ignoring it in workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else _on_sigint)


def _worker_task(spec: SessionSpec, progress: bool | int) -> TaskResult:
    global _in_task
    _in_task = True
    try:
        if _interrupted:
            raise KeyboardInterrupt
        return run_task(spec, progress)
    finally:
        _in_task = False


class LocalExecutor:
    """Runs tasks on this machine: ``workers`` processes (a ProcessPoolExecutor), or in this
    process for ``workers == 1``.

    Workers start with "forkserver" (else "spawn"), never "fork": a forked copy of a process with
    threads (tqdm's monitor) or a Brian2 runtime can deadlock. Each task gets its own progress-bar
    row, reused when it ends. With several workers, BLAS/OpenMP threads per worker default to 1
    (OMP_NUM_THREADS etc., unless set) so that workers do not oversubscribe the cores.
    """

    def __init__(self, workers: int | None = None, start_method: str | None = None):
        workers = _default_workers() if workers is None else workers
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ValueError(f"LocalExecutor.workers must be a whole number >= 1, got {workers!r}")
        self.workers = workers
        methods = multiprocessing.get_all_start_methods()
        if start_method is None:
            start_method = "forkserver" if "forkserver" in methods else "spawn"
        if start_method not in methods:
            raise ValueError(f"LocalExecutor.start_method must be one of {methods}, "
                             f"got {start_method!r}")
        self.start_method = start_method

    def run(self, tasks: Sequence[SessionSpec], progress: bool) -> Iterator[TaskOutcome]:
        tasks = list(tasks)
        if not tasks:
            return
        if self.workers == 1:
            yield from self._run_here(tasks, progress)
        else:
            yield from self._run_pool(tasks, progress)

    @staticmethod
    def _run_here(tasks, progress) -> Iterator[TaskOutcome]:
        for spec in tasks:
            try:
                result = run_task(spec, 1 if progress else False)
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                yield TaskOutcome(spec, error=_one_line(exc))
                continue
            yield TaskOutcome(spec, result)

    def _run_pool(self, tasks, progress) -> Iterator[TaskOutcome]:
        workers = min(self.workers, len(tasks))
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        ctx = multiprocessing.get_context(self.start_method)
        lock = None
        if progress:
            from tqdm import tqdm

            lock = ctx.RLock()
            tqdm.set_lock(lock)
        sigint_ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                   initializer=_init_worker, initargs=(lock, sigint_ignored))
        pending = list(reversed(tasks))
        free_rows = list(range(workers, 0, -1))
        running: dict[Future, tuple[SessionSpec, int]] = {}
        clean = False
        try:
            while pending or running:
                while pending and free_rows:
                    spec, row = pending.pop(), free_rows.pop()
                    try:
                        fut = pool.submit(_worker_task, spec, row if progress else False)
                    except BrokenProcessPool as exc:  # a worker died (killed, out of memory)
                        for spec in [spec, *reversed(pending)]:
                            yield TaskOutcome(spec, error=f"not run: {_one_line(exc)}")
                        pending.clear()
                        break
                    running[fut] = (spec, row)
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    spec, row = running.pop(fut)
                    free_rows.append(row)
                    exc = fut.exception()
                    if exc is None:
                        yield TaskOutcome(spec, fut.result())
                    elif isinstance(exc, KeyboardInterrupt):
                        yield TaskOutcome(spec, TaskResult(0, 0.0, stopped=True))
                    else:
                        yield TaskOutcome(spec, error=_one_line(exc))
            clean = True
        finally:
            if not clean:
                self._stop(pool, running)
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _stop(pool: ProcessPoolExecutor, running: dict) -> None:
        """Interrupted, or the consumer stopped: stop the tasks in flight cleanly, then wait."""
        for fut in running:
            fut.cancel()
        processes = list((getattr(pool, "_processes", None) or {}).values())
        for p in processes:
            try:
                os.kill(p.pid, signal.SIGINT)
            except (OSError, AttributeError):
                pass
        try:
            wait(running, timeout=60)
        except KeyboardInterrupt:  # a second Ctrl-C: do not wait for the clean-up
            for p in processes:
                p.terminate()


# --------------------------------------------------------------------------------------------
# The run


@dataclass
class RunSummary:
    run_dir: Path
    planned: int
    skipped: int
    ran: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    interrupted: bool = False
    wall_s: float = 0.0
    report: Path | None = None

    @property
    def finished(self) -> int:
        return self.skipped + len(self.ran)


def git_commit(path: str | Path | None = None) -> dict[str, Any] | None:
    """The project's git commit (and whether tracked files differ from it), if git knows it."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parents[1]
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


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _prepare_folder(config: RunConfig, run_dir: Path, config_text: str | None) -> None:
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
        config_text = _to_toml(config)
    saved.write_text(config_text, encoding="utf-8")


def _to_toml(config: RunConfig) -> str:
    """A config written back as TOML (for runs started from a RunConfig, not a file)."""
    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
        raise TypeError(f"cannot write {v!r} as TOML")

    lines = [f"[{config.kind}]", f"name = {value(config.name)}"]
    common = [("workers", config.workers), ("windows", config.windows),
              ("long_threshold", config.long_threshold), ("bin_minutes", config.bin_minutes)]
    if config.kind == "experiment":
        p = config.players[0]
        lines += [f"player = {value(p.player)}", f"cultures = {len(config.seeds)}",
                  f"first_seed = {config.seeds[0]}", f"minutes = {value(p.minutes)}",
                  f"rest_minutes = {value(p.rest_minutes)}",
                  f"conditions = {value([q.condition for q in config.players])}"]
        lines += [f"{k} = {value(v)}" for k, v in common]
        lines += ["", "[culture]"] + [f"{json.dumps(k)} = {value(v)}" for k, v in p.options.items()]
    else:
        lines += [f"seeds = {len(config.seeds)}", f"first_seed = {config.seeds[0]}",
                  f"reference = {value(config.reference)}"]
        lines += [f"{k} = {value(v)}" for k, v in common]
        for p in config.players:
            lines += ["", "[[players]]", f"player = {value(p.player)}", f"label = {value(p.label)}"]
            if p.condition is not None:
                lines.append(f"condition = {value(p.condition)}")
            lines += [f"minutes = {value(p.minutes)}", f"rest_minutes = {value(p.rest_minutes)}",
                      f"options = {value(p.options)}"]
    lines += ["", "[game]"] + [f"{json.dumps(k)} = {value(v)}" for k, v in config.game.items()]
    return "\n".join(lines) + "\n"


def _write_manifest(run_dir: Path, record: dict[str, Any]) -> None:
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


class _RunLock:
    """One run per folder at a time (an advisory lock, released when the process dies)."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / ".lock"
        self.file = None

    def __enter__(self):
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        self.file = open(self.path, "w")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise ConfigError(f"another run is writing to {str(self.path.parent)!r}; "
                              "wait for it or use another --out") from None
        return self

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()
            self.path.unlink(missing_ok=True)


def run(config: RunConfig, run_dir: str | Path, executor: Executor | None = None, *,
        progress: bool = True, config_text: str | None = None,
        command: Sequence[str] | None = None, report: bool = True) -> RunSummary:
    """Run (or resume) every unfinished session of `config` into `run_dir`, then write the report.

    ``config_text`` is copied to ``config.toml`` (default: the config written back as TOML).
    Raises ConfigError for a run folder started with another config or in use; on
    KeyboardInterrupt the manifest records it and the interrupt propagates.
    """
    from dishbrain.session import package_versions

    run_dir = Path(run_dir)
    executor = executor or LocalExecutor(config.workers)
    started, t0 = _now(), time.perf_counter()
    _prepare_folder(config, run_dir, config_text)
    with _RunLock(run_dir):
        # Absolute paths: a task may run in another working folder (or on another machine).
        specs = config.sessions(run_dir.resolve())
        todo = [s for s in specs if not session_finished(s.log_path)]
        summary = RunSummary(run_dir=run_dir, planned=len(specs), skipped=len(specs) - len(todo))
        record = {
            "name": config.name, "kind": config.kind, "config": CONFIG_NAME,
            "invocation": uuid.uuid4().hex,
            "command": shlex.join(command if command is not None else sys.argv),
            "cwd": os.getcwd(), "git": git_commit(), "versions": package_versions(),
            "host": {"platform": sys.platform, "cpus": os.cpu_count()},
            "workers": executor.workers, "started": started, "ended": None, "wall_s": None,
            "resolved_config": config.identity(),
            "sessions": {"planned": len(specs), "already_finished": summary.skipped,
                         "to_run": len(todo)},
        }
        _write_manifest(run_dir, record)
        if any(s.player == "culture" for s in todo):
            from dishbrain.culture import ensure_compiled

            ensure_compiled()  # once, here, not in every worker at the same time
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(specs), initial=summary.skipped, desc=config.name,
                       unit="session", position=0, leave=True, dynamic_ncols=True)
        previous_term = _sigterm_as_interrupt()
        try:
            outcomes = executor.run(todo, progress)
            try:
                for outcome in outcomes:
                    if outcome.error is not None:
                        summary.failed.append((outcome.spec.key, outcome.error))
                    elif outcome.stopped:
                        summary.interrupted = True
                        break
                    else:
                        summary.ran.append(outcome.spec.key)
                    if bar is not None:
                        bar.update(1)
                        if summary.failed:
                            bar.set_postfix(failed=len(summary.failed))
            finally:
                close = getattr(outcomes, "close", None)
                if close is not None:
                    close()
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            _restore_sigterm(previous_term)
            if bar is not None:
                bar.close()
            summary.wall_s = time.perf_counter() - t0
            record.update(ended=_now(), wall_s=round(summary.wall_s, 3))
            record["sessions"].update(ran=len(summary.ran), failed=dict(summary.failed),
                                      interrupted=summary.interrupted)
            _write_manifest(run_dir, record)
    if summary.interrupted:
        raise KeyboardInterrupt
    if report:
        from dishbrain.report import write_report

        summary.report = write_report(run_dir, config)
    return summary


def _sigterm_as_interrupt():
    """SIGTERM (a job manager stopping the run) stops it as Ctrl-C does: the logs stay valid."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        return signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):
        return None


def _restore_sigterm(previous) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except (ValueError, OSError):
            pass
