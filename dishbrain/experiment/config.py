"""Experiment and comparison configs: the dataclasses (`RunConfig`, `PlayerSpec`) and the TOML
schema that builds them.

The dataclasses check their own fields on construction (``envs/config.py`` check_*: one message
format, ``Owner.field must be ..., got ...``). The TOML schema reads keys, rejects unknown ones,
builds the dataclasses and renames the field in their message to the TOML key it came from
(``PlayerSpec.minutes`` -> ``experiment.minutes``); it checks by itself only what no dataclass
holds (``cultures``, ``first_seed``, the shape of the tables, the player's options).

Why not a declarative schema (pydantic v2, weighed in 2026-12): importing pydantic and one model
of the [experiment] table took 80-190 ms against 7-12 ms for this module (``python -X
importtime``, 2 shared cores), and its errors are four lines with a type code and a URL
("1 validation error for Document / experiment.cultures / Input should be greater than or equal
to 1 [type=greater_than_equal, ...] / For further information visit ...") where the house rule
is one line naming the key and the allowed values; the configs elsewhere are frozen dataclasses
checked by envs/config.py, which this schema now reuses.

Config files (TOML)
-------------------
The experiment::

    [experiment]
    name = "dishbrain"            # run folder runs/<name> unless --out; default: the file's stem
    player = "culture"            # a dishbrain.players name or package.module:factory
    cultures = 8                  # seeds first_seed .. first_seed + cultures - 1
    first_seed = 0
    minutes = 20                  # game time of each session
    rest_minutes = 0              # > 0: a rest recording of the same culture before each session
    conditions = ["stimulus", "silent", "no-feedback"]   # and/or "rest", "frozen", "yoked"
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
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dishbrain.experiment.tasks import RUNNER_OPTIONS, RestSpec, SessionSpec
from dishbrain.feedback import FEEDBACK_RULES
from dishbrain.limits import MAX_MINUTES, MIN_MINUTES
from envs.config import check_choice, check_int, check_number

__all__ = ["CONDITIONS", "ConfigError", "PlayerSpec", "RunConfig", "load_config",
           "parse_config"]

#: The conditions of Kagan et al. 2022 (PROTOCOL.md): the culture's feedback rule after a miss.
CONDITIONS = tuple(FEEDBACK_RULES)  # "stimulus", "silent", "no-feedback", "rest"
#: The published analysis windows (Kagan et al. 2022, Fig. 5): minutes 0-5 versus 5-20.
DEFAULT_WINDOWS = ((0.0, 5.0), (5.0, 20.0))
DEFAULT_CONDITIONS = ("stimulus", "silent", "no-feedback")
KINDS = ("experiment", "compare")
#: Where a run folder keeps the sessions' logs and the players' saved states.
SESSIONS_DIR = "sessions"
STATES_DIR = "states"
_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+")


class ConfigError(ValueError):
    """A config (or a run folder) the runner cannot use; the message is one line naming the key."""


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_label(owner: Any, name: str, value: Any) -> None:
    """A label names files: letters, digits and - _ . + only."""
    if not isinstance(value, str) or not value or not set(value) <= _LABEL_CHARS:
        raise ValueError(f"{_owner(owner)}.{name} must be a non-empty name of letters, digits "
                         f"and - _ . +, got {_show(value)}")


def _owner(owner: Any) -> str:
    return owner if isinstance(owner, str) else type(owner).__name__


def _check_table(owner: Any, name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{_owner(owner)}.{name} must be a table, got {_show(value)}")


def _check_windows(owner: Any, value: Any) -> tuple[tuple[float, float], ...]:
    wanted = ("a non-empty list of [start, end] minutes with 0 <= start < end, "
              "e.g. [[0, 5], [5, 20]]")
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{_owner(owner)}.windows must be {wanted}, got {_show(value)}")
    for item in value:
        ok = (isinstance(item, (list, tuple)) and len(item) == 2
              and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                      and math.isfinite(x) for x in item)
              and 0 <= item[0] < item[1])
        if not ok:
            raise ValueError(f"{_owner(owner)}.windows must be {wanted}, got {_show(item)}")
    return tuple((float(lo), float(hi)) for lo, hi in value)


# --------------------------------------------------------------------------------------------
# The configs


@dataclass(frozen=True)
class PlayerSpec:
    """One group of sessions: a player with its options, played once per seed."""

    label: str
    player: str
    options: dict[str, Any]
    condition: str | None
    minutes: float
    rest_minutes: float = 0.0

    def __post_init__(self):
        check_label(self, "label", self.label)
        if not isinstance(self.player, str) or not self.player:
            raise ValueError(f"PlayerSpec.player must be a player's name or "
                             f"package.module:factory, got {_show(self.player)}")
        _check_table(self, "options", self.options)
        for name in self.options:
            if name in RUNNER_OPTIONS:
                raise ValueError(f"PlayerSpec.options.{name} is set by the runner (seeds, "
                                 "conditions and rest recordings are keys of the config); "
                                 "remove it")
        if self.condition is not None:
            check_choice(self, "condition", self.condition, CONDITIONS)
        check_number(self, "minutes", self.minutes, lo=MIN_MINUTES, hi=MAX_MINUTES)
        if self.rest_minutes != 0:  # 0: no rest recording
            check_number(self, "rest_minutes", self.rest_minutes, lo=MIN_MINUTES, hi=MAX_MINUTES)
        object.__setattr__(self, "minutes", float(self.minutes))
        object.__setattr__(self, "rest_minutes", float(self.rest_minutes))


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

    def __post_init__(self):
        from envs.pong import PongConfig

        check_choice(self, "kind", self.kind, KINDS)
        check_label(self, "name", self.name)
        players = tuple(self.players) if isinstance(self.players, (list, tuple)) else None
        if not players or not all(isinstance(p, PlayerSpec) for p in players):
            raise ValueError(f"RunConfig.players must be a non-empty list of PlayerSpec, "
                             f"got {_show(self.players)}")
        object.__setattr__(self, "players", players)
        seen: set[str] = set()
        for i, p in enumerate(players):
            if p.label in seen:
                raise ValueError(f"RunConfig.players[{i}].label {p.label!r} is used twice; "
                                 "give each player a unique label")
            seen.add(p.label)
        seeds = tuple(self.seeds) if isinstance(self.seeds, (list, tuple, range)) else ()
        if not seeds:
            raise ValueError(f"RunConfig.seeds must be a non-empty list of seeds, "
                             f"got {_show(self.seeds)}")
        for seed in seeds:
            check_int(self, "seeds", seed, lo=0)
        object.__setattr__(self, "seeds", seeds)
        check_int(self, "workers", self.workers, lo=1)
        object.__setattr__(self, "windows", _check_windows(self, self.windows))
        longest = max(p.minutes for p in players)
        for lo, hi in self.windows:
            if hi > longest + 1e-9:
                raise ValueError(f"RunConfig.windows: the window [{lo:g}, {hi:g}] ends after "
                                 f"the longest session ({longest:g} minutes)")
        check_int(self, "long_threshold", self.long_threshold, lo=0)
        check_number(self, "bin_minutes", self.bin_minutes, lo=0, lo_open=True)
        object.__setattr__(self, "bin_minutes", float(self.bin_minutes))
        _check_table(self, "game", self.game)
        try:
            PongConfig.from_dict(self.game)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"RunConfig.game: {exc}") from None
        if self.reference is not None and self.reference not in seen:
            raise ValueError(f"RunConfig.reference must be one of the player labels "
                             f"{', '.join(p.label for p in players)}; got {self.reference!r}")

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

    def sessions(self, run_dir: str | Path) -> list[SessionSpec]:
        """Every session of the run, seed-major so that early results cover every group.

        A "yoked" session of seed ``seeds[i]`` replays the feedback of the Stimulus session of
        the next culture, ``seeds[i + 1]`` (the last one: the first), of the same player."""
        run_dir = Path(run_dir)
        specs = []
        for i, seed in enumerate(self.seeds):
            for p in self.players:
                key = f"{p.label}-seed{seed}"
                yoke = None
                if p.condition == "yoked":
                    source = next((q for q in self.players if q.condition == "stimulus"
                                   and q.player == p.player), None)
                    if source is not None:
                        partner = self.seeds[(i + 1) % len(self.seeds)]
                        yoke = run_dir / SESSIONS_DIR / f"{source.label}-seed{partner}.jsonl"
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
                    game=dict(self.game), rest=rest, yoke_log=yoke,
                ))
        return specs


# --------------------------------------------------------------------------------------------
# The TOML schema


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

    def get(self, key: str, default: Any = _REQUIRED,
            check: Callable[[str, Any], None] | None = None) -> Any:
        """The value of `key` (or `default`); `check` (key, value) raises ValueError to refuse it.
        Field values are checked by the dataclass they go to, not here."""
        self.used.add(key)
        if key not in self.values:
            if default is self._REQUIRED:
                self.fail(f"{self.key(key)} is required")
            return default
        value = self.values[key]
        if check is not None:
            try:
                check(self.key(key), value)
            except ValueError as exc:
                self.fail(str(exc))
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.values) - self.used)
        if unknown:
            where = f"in {self.where}" if self.where else "at the top level"
            allowed = ", ".join(sorted(self.used))
            self.fail(f"unknown key {unknown[0]!r} {where}; allowed: {allowed}")

    def build(self, cls: type, keys: dict[str, str], **fields: Any):
        """``cls(**fields)``, its ValueError made a ConfigError naming the TOML key of the field
        (``keys``: field name -> key; unnamed fields keep the dataclass's name)."""
        try:
            return cls(**fields)
        except ValueError as exc:
            message = str(exc)
            prefix = f"{cls.__name__}."
            if message.startswith(prefix):
                name = message[len(prefix):].split(" ", 1)[0].split(".", 1)[0].rstrip(":")
                name = name.split("[", 1)[0]
                if name in keys:
                    message = keys[name] + message[len(prefix) + len(name):]
            self.fail(message)


def _whole(minimum: int) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{key} must be an integer >= {minimum}, got {_show(value)}")
    return check


def _table(key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a table, got {_show(value)}")


def _conditions(key: str, value: Any) -> None:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{key} must be a non-empty list of {', '.join(CONDITIONS)}; "
                         f"got {_show(value)}")
    for item in value:
        if item not in CONDITIONS:
            raise ValueError(f"{key} must list conditions out of {', '.join(CONDITIONS)}; "
                             f"got {_show(item)}")
    if len(set(value)) != len(value):
        raise ValueError(f"{key} lists a condition twice: {_show(value)}")


def _player_name(key: str, value: Any) -> None:
    """An installed player's name or package.module:factory (imported later, by _check_player)."""
    from dishbrain.player import check_player_name

    try:
        check_player_name(value)
    except ValueError as exc:
        raise ValueError(f"{key}: {exc}") from None


def _check_player(table: _Table, where: str, player: str, options: dict[str, Any]) -> None:
    """The player exists here and takes every option (make_agent would silently drop a typo)."""
    from dishbrain.player import player_options, resolve_player

    try:
        factory = resolve_player(player)
    except ValueError as exc:
        table.fail(str(exc))
    if getattr(factory, "needs_window", False):
        table.fail(f"player {player!r} needs a window; the runner plays without one")
    allowed = player_options(player)
    if allowed is not None:  # None: **kwargs, any name goes
        allowed = [n for n in allowed if n not in RUNNER_OPTIONS]
        for name in options:
            if name not in allowed:
                table.fail(f"{where}.{name} is not an option of player {player!r}; allowed: "
                           f"{', '.join(allowed) or '(none)'}")
    # The values too, where the player says how (a factory's `check_options`): a bad value
    # fails here, before the run folder is touched, not in every session (issue 15).
    check = getattr(factory, "check_options", None)
    if check is not None:
        try:
            check(**options)
        except (TypeError, ValueError) as exc:
            table.fail(f"{where}: {exc}")


def _default_label(player: str, condition: str | None) -> str:
    from dishbrain.player import player_label

    return player_label(player) + (f"-{condition}" if condition else "")


def _default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def _common(table: _Table) -> dict[str, Any]:
    return {
        "workers": table.get("workers", _default_workers()),
        "windows": table.get("windows", DEFAULT_WINDOWS),
        "long_threshold": table.get("long_threshold", 3),
        "bin_minutes": table.get("bin_minutes", 1.0),
    }


def _run_keys(where: str) -> dict[str, str]:
    return {name: f"{where}.{name}" for name in ("name", "workers", "windows", "long_threshold",
                                                  "bin_minutes", "reference", "seeds")}


def _parse_experiment(data: dict, source: str, stem: str, check_players: bool) -> RunConfig:
    top = _Table(data, "", source)
    exp = _Table(top.get("experiment", check=_table), "experiment", source)
    name = exp.get("name", stem)
    player = exp.get("player", "culture", _player_name)
    cultures = exp.get("cultures", 8, _whole(1))
    first_seed = exp.get("first_seed", 0, _whole(0))
    minutes = exp.get("minutes", 20.0)
    rest_minutes = exp.get("rest_minutes", 0.0)
    conditions = exp.get("conditions", DEFAULT_CONDITIONS, _conditions)
    if "yoked" in conditions and ("stimulus" not in conditions or cultures < 2):
        exp.fail(f"{exp.key('conditions')}: 'yoked' replays another culture's Stimulus session: "
                 "it needs 'stimulus' in the conditions and cultures >= 2")
    common = _common(exp)
    exp.finish()
    options = top.get("culture", {}, _table)
    game = top.get("game", {}, _table)
    top.finish()
    keys = {"minutes": "experiment.minutes", "rest_minutes": "experiment.rest_minutes",
            "options": "culture", "player": "experiment.player"}
    players = tuple(exp.build(PlayerSpec, keys, label=c, player=player, options=options,
                              condition=c, minutes=minutes, rest_minutes=rest_minutes)
                    for c in conditions)
    config = exp.build(RunConfig, {**_run_keys("experiment"), "game": "[game]"},
                       kind="experiment", name=name, players=players,
                       seeds=tuple(range(first_seed, first_seed + cultures)), game=game,
                       reference=None, **common)
    if check_players:
        _check_player(top, "culture", player, options)
    return config


def _parse_compare(data: dict, source: str, stem: str, check_players: bool) -> RunConfig:
    top = _Table(data, "", source)
    cmp = _Table(top.get("compare", check=_table), "compare", source)
    name = cmp.get("name", stem)
    seeds = cmp.get("seeds", 5, _whole(1))
    first_seed = cmp.get("first_seed", 0, _whole(0))
    minutes = cmp.get("minutes", 20.0)
    reference = cmp.get("reference", None)
    common = _common(cmp)
    cmp.finish()

    entries = top.get("players")
    if not (isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries)):
        top.fail("players must be a non-empty list of tables ([[players]] player = \"random\" ...)")
    players: list[PlayerSpec] = []
    for i, entry in enumerate(entries):
        t = _Table(entry, f"players[{i}]", source)
        player = t.get("player", check=_player_name)
        condition = t.get("condition", None)
        label = t.get("label", None)
        options = t.get("options", {}, _table)
        p_minutes = t.get("minutes", minutes)
        rest = t.get("rest_minutes", 0.0)
        t.finish()
        if label is None:
            label = _default_label(player, condition if condition in CONDITIONS else None)
        if label in (p.label for p in players):
            t.fail(f"{t.key('label')} {label!r} is used twice; give each player a unique label")
        # `minutes` may come from [compare]: the message names the key where it was written.
        keys = {k: t.key(k) for k in ("label", "player", "options", "condition", "rest_minutes")}
        keys["minutes"] = t.key("minutes") if "minutes" in entry else "compare.minutes"
        players.append(t.build(PlayerSpec, keys, label=label, player=player, options=options,
                               condition=condition, minutes=p_minutes, rest_minutes=rest))
        if check_players:
            _check_player(t, t.key("options"), player, options)
    game = top.get("game", {}, _table)
    top.finish()
    labels = [p.label for p in players]
    if reference is None:
        reference = "culture" if "culture" in labels else labels[0]
    return cmp.build(RunConfig, {**_run_keys("compare"), "game": "[game]"},
                     kind="compare", name=name, players=tuple(players),
                     seeds=tuple(range(first_seed, first_seed + seeds)), game=game,
                     reference=reference, **common)


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
        article = "an" if kind[0] in "aeiou" else "a"
        raise ConfigError(f"{source}: expected {article} [{kind}] table{other}")
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
