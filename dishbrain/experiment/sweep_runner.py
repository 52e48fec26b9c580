"""`run_sweep`: every variant's unfinished sessions on one executor, then the reports.

The sweep folder's layout is in `dishbrain.experiment.sweep` (the sweep TOML and its plan). The
sessions of all variants go through the runner's own loop (`dishbrain.experiment.runner.execute`)
at once, so one bar counts them all and a cluster sees every variant's sessions together.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from dishbrain.experiment.config import ConfigError
from dishbrain.experiment.executors import Executor
from dishbrain.experiment.runfolder import (
    CONFIG_NAME,
    RunLock,
    git_commit,
    load_run_config,
    now,
    prepare_folder,
    session_finished,
    write_manifest,
)
from dishbrain.experiment.runner import RunSummary, close_manifest, execute
from dishbrain.experiment.sweep import INDEX_NAME, SWEEP_NAME, SweepConfig
from dishbrain.experiment.tasks import SessionSpec, TaskOutcome

__all__ = ["ORDERS", "check_folder", "check_order", "order_sessions", "run_sweep"]

#: How the unfinished sessions are queued. "seed": seed-major over the variants (early results
#: cover every variant; the default); "cost": cheapest first by the plan's estimate (a run
#: stopped early keeps the most finished sessions: on a small machine, the sessions of hours go
#: last). Each session's result does not depend on the order.
ORDERS = ("seed", "cost")


def check_order(order: str) -> None:
    """ConfigError naming the allowed values unless `order` is one of ORDERS."""
    if order not in ORDERS:
        raise ConfigError(f"order: {order!r} is not one of {', '.join(ORDERS)}")


def order_sessions(specs: Sequence[SessionSpec], order: str) -> list[SessionSpec]:
    """`specs` (in seed-major order) queued by `order` (see ORDERS); a session whose cost the
    plan cannot estimate goes last, ties keep their seed-major order."""
    check_order(order)
    if order == "seed":
        return list(specs)
    from dishbrain.experiment.plan import estimate_seconds

    def cost(spec: SessionSpec) -> float:
        est = estimate_seconds(spec)
        return float("inf") if est is None else est

    return sorted(specs, key=cost)  # sorted() is stable


class _Recording:
    """An executor seen through: records every outcome (with its variant) as it passes, and
    keeps the executor's per-task bars off (the sweep has one bar)."""

    def __init__(self, executor: Executor, where: dict[Path, str]):
        self.executor = executor
        self.workers = executor.workers
        self.where = where
        self.outcomes: list[tuple[str, TaskOutcome]] = []

    def run(self, tasks: Sequence[SessionSpec], progress: bool) -> Iterator[TaskOutcome]:
        outcomes = self.executor.run(tasks, False)
        try:
            for outcome in outcomes:
                self.outcomes.append((self.where[outcome.spec.log_path], outcome))
                yield outcome
        finally:
            close = getattr(outcomes, "close", None)
            if close is not None:
                close()


def _index(sweep: SweepConfig) -> dict[str, Any]:
    return {"name": sweep.name, "kind": sweep.kind,
            "runs": [{"name": v.name, "block": v.block, "folder": v.folder,
                      "overrides": v.overrides, "seeds": list(v.config.seeds)}
                     for v in sweep.runs]}


def check_folder(sweep: SweepConfig, out: Path) -> None:
    """Refuse (ConfigError, nothing written) a sweep folder started with another sweep."""
    saved = out / INDEX_NAME
    if saved.exists():
        try:
            old = json.loads(saved.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            raise ConfigError(f"sweep folder {str(out)!r} holds an unreadable {INDEX_NAME}; "
                              "use another --out") from None
        if old.get("name") != sweep.name or old.get("kind") != sweep.kind:
            raise ConfigError(f"{str(out)!r} holds sweep {old.get('name')!r}; use another --out")
    for v in sweep.runs:
        folder = out / v.folder
        if (folder / CONFIG_NAME).exists():
            try:
                old_id = load_run_config(folder).identity()
            except ConfigError as exc:
                raise ConfigError(f"{str(folder)!r} holds a config that cannot be read ({exc});"
                                  " use another --out") from None
            new_id = v.config.identity()
            if old_id != new_id:
                keys = sorted(k for k in set(new_id) | set(old_id)
                              if new_id.get(k) != old_id.get(k))
                raise ConfigError(f"variant {v.name!r}: {str(folder)!r} was started with a "
                                  f"different config (differs in {', '.join(keys)}); use "
                                  "another --out or delete it")


def run_sweep(sweep: SweepConfig, out: str | Path, executor: Executor, *, progress: bool = True,
              command: Sequence[str] | None = None, report: bool = True,
              order: str = "seed") -> RunSummary:
    """Run (or resume) every unfinished session of every variant on one executor, queued by
    `order` (see ORDERS), then write each variant's report and the comparative one. Raises
    ConfigError for a folder started with another sweep or in use; KeyboardInterrupt after
    recording an interruption."""
    import tomli_w

    from dishbrain.session import package_versions

    out = Path(out)
    started, t0 = now(), time.perf_counter()
    check_order(order)  # before anything is written
    check_folder(sweep, out)
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        stack.enter_context(RunLock(out))
        for v in sweep.runs:
            prepare_folder(v.config, out / v.folder, tomli_w.dumps(v.document))
            stack.enter_context(RunLock(out / v.folder))
        (out / SWEEP_NAME).write_text(tomli_w.dumps(sweep.document), encoding="utf-8")
        (out / INDEX_NAME).write_text(json.dumps(_index(sweep), indent=2) + "\n",
                                      encoding="utf-8")
        pairs = sweep.sessions(out)
        todo = order_sessions([s for _, s in pairs if not session_finished(s.log_path)], order)
        where = {s.log_path: v.folder for v, s in pairs}
        record = {
            "name": sweep.name, "kind": "sweep", "sweep": SWEEP_NAME,
            "invocation": uuid.uuid4().hex,
            "command": shlex.join(command if command is not None else sys.argv),
            "cwd": os.getcwd(), "git": git_commit(), "versions": package_versions(),
            "host": {"platform": sys.platform, "cpus": os.cpu_count(),
                     "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
            "executor": type(executor).__name__, "workers": executor.workers, "order": order,
            "started": started, "ended": None, "wall_s": None,
            "sessions": {"planned": len(pairs), "already_finished": len(pairs) - len(todo),
                         "to_run": len(todo)},
        }
        write_manifest(out, record)
        recording = _Recording(executor, where)
        inner = RunSummary(run_dir=out, planned=len(pairs), skipped=len(pairs) - len(todo),
                           clock_start=t0)
        try:
            execute(recording, todo, inner, progress=progress, desc=sweep.name)
        finally:
            # the sweep's summary names each session by its variant folder too
            summary = RunSummary(run_dir=out, planned=len(pairs), skipped=inner.skipped,
                                 interrupted=inner.interrupted, wall_s=inner.wall_s,
                                 clock_start=t0)
            for folder, outcome in recording.outcomes:
                key = f"{folder}/{outcome.spec.key}"
                if outcome.error is not None:
                    summary.failed.append((key, outcome.error))
                elif not outcome.stopped:
                    summary.ran.append(key)
            close_manifest(out, record, summary)
    if summary.interrupted:
        raise KeyboardInterrupt
    if report:
        from dishbrain.report import load_run
        from dishbrain.report.sweep import write_reports

        loaded = {v.folder: load_run(out / v.folder, v.config) for v in sweep.runs}
        _, summary.report = write_reports(out, loaded)
    return summary

