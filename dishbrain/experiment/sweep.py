"""Sweeps: one base experiment (or comparison), many variants of it, run as one thing.

A sweep is a list of `RunConfig` (one per variant, each the base with some fields changed) whose
sessions all go through one `Executor` at once (`dishbrain.experiment.sweep_runner.run_sweep`,
over the runner's own loop `dishbrain.experiment.runner.execute`), each
variant in its own run folder inside the sweep folder, so every per-folder rule of the runner
holds: a rerun plays only unfinished sessions, Ctrl-C or SIGTERM keeps the finished ones, each
variant gets its own report, and one comparative report (`dishbrain.report.sweep`) puts the
variants side by side. A held-out block (seeds never used while tuning) is a second set of run
folders, reported apart.

The sweep TOML::

    [sweep]
    name = "sweep-quick"          # default: the file's stem; the folder is runs/<name> unless --out
    base = "dishbrain-quick.toml" # an experiment/compare TOML (relative to this file), or [base]
    seeds = 4                     # optional: the base's cultures (compare: seeds) ...
    first_seed = 0                # ... first_seed, conditions and minutes, for every variant
    conditions = ["stimulus", "silent", "no-feedback"]
    minutes = 5
    workers = 2                   # sessions at a time on the local executor (default: cores)
    set = { "experiment.windows" = [[0, 1], [1, 5]] }   # overrides for every variant

    [sweep.heldout]               # optional: the same variants on seeds kept out of tuning
    first_seed = 1000
    seeds = 4
    variants = ["tagged"]         # default: every variant

    [[variants]]                  # named overrides (dotted keys of the base TOML)
    name = "default"
    [[variants]]
    name = "tagged"
    set = { "culture.culture_config.stdp_tagging" = true, "culture.decoder_config.dead_band" = 0 }

    [grid]                        # every combination; crossed with [[variants]] when both exist
    "culture.mea_config.motor_gap_cols" = [0, 1]

An experiment or comparison TOML given as the sweep is a sweep of one variant (``base``).
A dotted key names a key of the base TOML: ``experiment.minutes``, ``game.miss_pause_ms``,
``culture.n_neurons``, ``culture.decoder_config.dead_band`` (a field of the player's config
table), and in a comparison ``players.<label>.options.<option>``. Without variants or a grid the
sweep is the base alone (variant ``base``). The whole sweep is checked before anything is
written: every variant's TOML as ``dishbrain experiment`` would check it, plus the fields of the
culture's config tables (`NESTED_CONFIGS`), which the experiment schema passes on unchecked.

The sweep folder::

    <out>/sweep.toml                the sweep, its base inlined (a rerun must match it)
    <out>/sweep.json                the variants, their blocks, overrides and folders (the report
                                    reads it)
    <out>/manifest.json             versions, commit, command, executor, times, outcome
    <out>/variants/<name>/          a run folder per variant (dishbrain/experiment/runfolder.py)
    <out>/heldout/<name>/           a run folder per held-out variant
    <out>/report.md, sweep_ratios.png, sweep.csv   the comparative report
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dishbrain.experiment.config import (
    ConfigError,
    RunConfig,
    _Table,
    check_label,
    parse_config,
)
from dishbrain.experiment.tasks import SessionSpec

__all__ = ["BLOCKS", "HELDOUT_DIR", "INDEX_NAME", "NESTED_CONFIGS", "SWEEP_NAME", "VARIANTS_DIR",
           "SweepConfig", "Variant", "check_config_tables", "load_sweep", "parse_sweep"]

SWEEP_NAME = "sweep.toml"
INDEX_NAME = "sweep.json"
VARIANTS_DIR = "variants"
HELDOUT_DIR = "heldout"
BLOCKS = ("tuning", "heldout")

#: Player options that are config tables, and the dataclass that checks their fields. The
#: experiment schema checks the option names; a sweep also checks each table's fields and values
#: (a typo in a grid key would otherwise fail in every session of a long run, not up front).
NESTED_CONFIGS = {
    "culture_config": ("dishbrain.culture.config", "CultureConfig"),
    "mea_config": ("dishbrain.mea", "MEAConfig"),
    "decoder_config": ("dishbrain.decoding", "DecoderConfig"),
    "encoder_config": ("dishbrain.encoding", "EncoderConfig"),
    "feedback_config": ("dishbrain.feedback", "FeedbackConfig"),
}


@dataclass(frozen=True)
class Variant:
    """One run of the sweep: the base with ``overrides`` (dotted key -> value), in ``folder``."""

    name: str
    block: str
    overrides: dict[str, Any]
    config: RunConfig
    document: dict[str, Any]

    @property
    def folder(self) -> str:
        return f"{VARIANTS_DIR if self.block == 'tuning' else HELDOUT_DIR}/{self.name}"


@dataclass(frozen=True)
class SweepConfig:
    name: str
    kind: str
    source: str
    base: str
    variants: tuple[Variant, ...]
    heldout: tuple[Variant, ...]
    workers: int
    document: dict[str, Any]

    @property
    def runs(self) -> tuple[Variant, ...]:
        return self.variants + self.heldout

    def identity(self) -> dict[str, Any]:
        """What decides the results: each run's name, block and config identity."""
        return {"kind": self.kind,
                "runs": [{"name": v.name, "block": v.block, "config": v.config.identity()}
                         for v in self.runs]}

    def sessions(self, out: str | Path) -> list[tuple[Variant, SessionSpec]]:
        """Every session, seed-major over the variants (early results cover every variant), the
        held-out block last."""
        out = Path(out).resolve()
        order = []
        for b, block in enumerate((self.variants, self.heldout)):
            for v_index, v in enumerate(block):
                specs = v.config.sessions(out / v.folder)
                seeds = list(v.config.seeds)
                for p_index, spec in enumerate(specs):
                    order.append(((b, seeds.index(spec.seed), v_index, p_index), v, spec))
        order.sort(key=lambda item: item[0])
        return [(v, spec) for _, v, spec in order]


# --------------------------------------------------------------------------------------------
# Parsing


def _fail(source: str, message: str):
    raise ConfigError(f"{source}: {message}")


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} and {"a.b": 1} alike -> {"a.b": 1} (TOML's dotted keys make tables)."""
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            out.update(_flatten(item, name))
        else:
            out[name] = item
    return out


def _set(doc: dict, dotted: str, value: Any, where: str, source: str) -> None:
    """Set a dotted key of a TOML document; ``players.<label>`` picks a comparison's player."""
    parts = dotted.split(".")
    if any(not p for p in parts):
        _fail(source, f"{where}: {dotted!r} is not a dotted key (e.g. experiment.minutes)")
    node: Any = doc
    for i, part in enumerate(parts[:-1]):
        path = ".".join(parts[:i + 1])
        if isinstance(node, list):  # [[players]]: by label
            labels = [e.get("label") for e in node if isinstance(e, dict)]
            match = [e for e in node if isinstance(e, dict) and e.get("label") == part]
            if not match:
                _fail(source, f"{where}: {dotted!r}: no player labelled {part!r}; labels: "
                              f"{', '.join(str(x) for x in labels if x) or '(none set)'}")
            node = match[0]
            continue
        child = node.setdefault(part, {})
        if not isinstance(child, (dict, list)):
            _fail(source, f"{where}: {dotted!r}: {path} is a value ({child!r}), not a table")
        node = child
    if isinstance(node, list):
        _fail(source, f"{where}: {dotted!r} names a list of tables, not a key")
    node[parts[-1]] = copy.deepcopy(value)


def _import(module: str, name: str):
    import importlib

    return getattr(importlib.import_module(module), name)


def check_config_tables(where: str, options: dict[str, Any]) -> None:
    """Each config-table option's fields and values (see NESTED_CONFIGS) in a player's options;
    raises ConfigError naming ``where.option[.field]``. Tables given as config objects are
    already checked."""
    import dataclasses

    for option, (module, cls_name) in NESTED_CONFIGS.items():
        table = options.get(option)
        if not isinstance(table, dict):
            continue
        cls = _import(module, cls_name)
        allowed = [f.name for f in dataclasses.fields(cls)]
        for name in table:
            if name not in allowed:
                raise ConfigError(f"{where}.{option}.{name} is not a {cls_name} field; allowed: "
                                  f"{', '.join(allowed)}")
        values = dict(table)
        if option == "culture_config" and "n_neurons" in options:
            values["n_neurons"] = options["n_neurons"]
        try:
            cls.from_dict(values)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}.{option}: {exc}") from None


def _check_nested(source: str, where: str, options: dict[str, Any]) -> None:
    """`check_config_tables`, its message prefixed with the sweep's source."""
    try:
        check_config_tables(where, options)
    except ConfigError as exc:
        _fail(source, str(exc))


def _value_name(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return f"{value:g}"
    text = str(value)
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text).strip("-") or "x"


def _grid_points(grid: dict[str, list], source: str) -> list[tuple[str, dict[str, Any]]]:
    leaves = [k.rsplit(".", 1)[-1] for k in grid]
    short = {k: (leaf if leaves.count(leaf) == 1 else k)
             for k, leaf in zip(grid, leaves)}
    points = []
    for values in itertools.product(*grid.values()):
        overrides = dict(zip(grid, values))
        name = "+".join(f"{short[k]}-{_value_name(v)}" for k, v in overrides.items())
        points.append((name, overrides))
    return points


def _variant_list(top: _Table, source: str) -> list[tuple[str, dict[str, Any]]]:
    entries = top.get("variants", None)
    grid = top.get("grid", None)
    listed: list[tuple[str, dict[str, Any]]] = []
    if entries is not None:
        if not (isinstance(entries, list) and entries
                and all(isinstance(e, dict) for e in entries)):
            _fail(source, "variants must be a non-empty list of tables ([[variants]] name = ...)")
        for i, entry in enumerate(entries):
            t = _Table(entry, f"variants[{i}]", source)
            name = t.get("name")
            overrides = t.get("set", {})
            t.finish()
            try:
                check_label("variants", f"[{i}].name", name)
            except ValueError as exc:
                _fail(source, str(exc))
            if not isinstance(overrides, dict):
                _fail(source, f"variants[{i}].set must be a table of dotted keys, got "
                              f"{overrides!r}")
            listed.append((name, _flatten(overrides)))
    points: list[tuple[str, dict[str, Any]]] = []
    if grid is not None:
        if not isinstance(grid, dict) or not grid:
            _fail(source, "grid must be a non-empty table: dotted key = [values, ...]")
        grid = _flatten(grid)
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                _fail(source, f"grid.{key!r} is an empty grid: give a non-empty list of values "
                              f"(got {values!r})")
            if len(values) != len({json.dumps(v, sort_keys=True) for v in values}):
                _fail(source, f"grid.{key!r} lists a value twice: {values!r}")
        points = _grid_points(grid, source)
    if listed and points:
        out = []
        for name, overrides in listed:
            for point, extra in points:
                both = sorted(set(overrides) & set(extra))
                if both:
                    _fail(source, f"variant {name!r} and the grid both set {both[0]!r}")
                out.append((f"{name}+{point}", {**overrides, **extra}))
    else:
        out = listed or points or [("base", {})]
    seen: set[str] = set()
    for name, _ in out:
        if name in seen:
            _fail(source, f"variants: the name {name!r} is used twice; give each variant a "
                          "unique name")
        seen.add(name)
    return out


def _shortcuts(sweep: _Table, kind: str, source: str) -> dict[str, Any]:
    """[sweep] seeds/first_seed/conditions/minutes as dotted overrides of the base."""
    out = {}
    seeds = sweep.get("seeds", None)
    if seeds is not None:
        out[f"{kind}.{'cultures' if kind == 'experiment' else 'seeds'}"] = seeds
    for key in ("first_seed", "minutes"):
        value = sweep.get(key, None)
        if value is not None:
            out[f"{kind}.{key}"] = value
    conditions = sweep.get("conditions", None)
    if conditions is not None:
        if kind != "experiment":
            _fail(source, "sweep.conditions applies to an [experiment] base; a comparison's "
                          "players each name their condition")
        out["experiment.conditions"] = conditions
    overrides = sweep.get("set", {})
    if not isinstance(overrides, dict):
        _fail(source, f"sweep.set must be a table of dotted keys, got {overrides!r}")
    out.update(_flatten(overrides))
    return out


def _build_variant(base: dict, kind: str, name: str, block: str, common: dict[str, Any],
                   overrides: dict[str, Any], source: str, check_players: bool,
                   seeds: dict[str, Any] | None = None) -> Variant:
    doc = copy.deepcopy(base)
    where = f"variant {name!r}" + (" (held-out)" if block == "heldout" else "")
    for key, value in {**common, **overrides, **(seeds or {})}.items():
        _set(doc, key, value, where, source)
    doc.setdefault(kind, {})["name"] = name
    config = parse_config(doc, f"{source}: {where}", name, kind, check_players)
    if check_players:
        if kind == "experiment":
            _check_nested(f"{source}: {where}", "culture", doc.get("culture", {}))
        else:
            for i, entry in enumerate(doc.get("players", [])):
                _check_nested(f"{source}: {where}", f"players[{i}].options",
                              entry.get("options", {}))
    return Variant(name=name, block=block, overrides=dict(overrides), config=config,
                   document=doc)


def parse_sweep(data: dict, source: str = "sweep", stem: str = "sweep",
                base_dir: str | Path = ".", check_players: bool = True) -> SweepConfig:
    """Validate a parsed sweep TOML: every variant's config, the held-out block, the names."""
    top = _Table(data, "", source)
    sweep = _Table(top.get("sweep", check=_is_table), "sweep", source)
    name = sweep.get("name", stem)
    try:
        check_label("sweep", "name", name)
    except ValueError as exc:
        _fail(source, str(exc))
    base_ref = sweep.get("base", None)
    inline = top.get("base", None)
    if (base_ref is None) == (inline is None):
        _fail(source, "give the base experiment once: sweep.base = \"path.toml\" or a [base] "
                      "table")
    if inline is not None:
        if not isinstance(inline, dict):
            _fail(source, "base must be a table (the experiment TOML's tables under [base])")
        base = copy.deepcopy(inline)
    else:
        base = _read_toml(_base_path(base_ref, base_dir, source), source)
    kinds = [k for k in ("experiment", "compare") if k in base]
    if len(kinds) != 1:
        _fail(source, f"the base must hold one [experiment] or [compare] table, found "
                      f"{len(kinds)}")
    kind = kinds[0]
    workers = sweep.get("workers", max(1, os.cpu_count() or 1))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        _fail(source, f"sweep.workers must be an integer >= 1, got {workers!r}")
    common = _shortcuts(sweep, kind, source)
    held = sweep.get("heldout", None)
    sweep.finish()
    listed = _variant_list(top, source)
    top.finish()

    variants = tuple(_build_variant(base, kind, n, "tuning", common, o, source, check_players)
                     for n, o in listed)
    heldout: tuple[Variant, ...] = ()
    if held is not None:
        h = _Table(held, "sweep.heldout", source)
        first = h.get("first_seed")
        count = h.get("seeds")
        names = h.get("variants", [v.name for v in variants])
        h.finish()
        known = [v.name for v in variants]
        if not isinstance(names, list) or not names:
            _fail(source, "sweep.heldout.variants must be a non-empty list of variant names")
        chosen = []
        for n in names:  # a variant, or a listed variant with every grid point crossed with it
            found = [k for k in known if k == n or k.startswith(n + "+")]
            if not found:
                _fail(source, f"sweep.heldout.variants: {n!r} is no variant; variants: "
                              f"{', '.join(known)}")
            chosen += [k for k in found if k not in chosen]
        names = chosen
        count_key = f"{kind}.{'cultures' if kind == 'experiment' else 'seeds'}"
        by_name = dict(listed)
        heldout = tuple(
            _build_variant(base, kind, n, "heldout", common, by_name[n], source,
                           check_players, {f"{kind}.first_seed": first, count_key: count})
            for n in names)
        tuning_seeds = {s for v in variants for s in v.config.seeds}
        overlap = sorted(tuning_seeds & {s for v in heldout for s in v.config.seeds})
        if overlap:
            _fail(source, f"sweep.heldout: seeds {overlap[0]}.. are also tuning seeds; a "
                          "held-out block needs seeds never used while tuning")
    document = {"sweep": {k: v for k, v in data["sweep"].items() if k != "base"},
                "base": base}
    for key in ("variants", "grid"):
        if key in data:
            document[key] = data[key]
    return SweepConfig(name=name, kind=kind, source=source,
                       base=str(base_ref) if base_ref is not None else "[base] in " + source,
                       variants=variants, heldout=heldout,
                       workers=workers, document=document)


def _is_table(key: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be a table, got {value!r}")


def _base_path(ref: Any, base_dir: str | Path, source: str) -> Path:
    if not isinstance(ref, str) or not ref:
        _fail(source, f"sweep.base must be the path of an experiment TOML, got {ref!r}")
    path = Path(ref)
    if not path.is_absolute():
        beside = Path(base_dir) / path
        path = beside if beside.exists() or not path.exists() else path
    if not path.is_file():
        _fail(source, f"sweep.base: no such file {str(path)!r}")
    return path


def _read_toml(path: Path, source: str) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        _fail(source, f"cannot read {str(path)!r}: {exc}")
    except tomllib.TOMLDecodeError as exc:
        _fail(source, f"{path}: not valid TOML: {exc}")


def load_sweep(path: str | Path, check_players: bool = True) -> SweepConfig:
    """Read and validate a sweep TOML (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such sweep file: {str(path)!r}")
    data = _read_toml(path, str(path))
    if "sweep" not in data and any(k in data for k in ("experiment", "compare")):
        # An experiment or comparison TOML is a sweep of one variant ("base"): the same
        # sessions, on any executor, with the sweep's plan and report.
        data = {"sweep": {"base": path.name}}
    return parse_sweep(data, str(path), path.stem, path.parent, check_players)
