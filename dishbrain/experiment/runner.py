"""`run`: plan a run folder's sessions, skip the finished ones, run the rest on an executor,
record the manifest, then write the report."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dishbrain.experiment.config import RunConfig
from dishbrain.experiment.executors import Executor, LocalExecutor
from dishbrain.experiment.runfolder import (
    CONFIG_NAME,
    RunLock,
    git_commit,
    now,
    prepare_folder,
    session_finished,
    write_manifest,
)
from dishbrain.experiment.tasks import SessionSpec

__all__ = ["RunSummary", "close_manifest", "execute", "run"]


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
    #: time.perf_counter() when the run began (wall_s counts from here)
    clock_start: float = field(default_factory=time.perf_counter)

    @property
    def finished(self) -> int:
        return self.skipped + len(self.ran)


def close_manifest(run_dir: Path, record: dict[str, Any], summary: RunSummary) -> None:
    """The invocation's manifest record, completed with how it ended (also for a sweep)."""
    record.update(ended=now(), wall_s=round(summary.wall_s, 3))
    record["sessions"].update(ran=len(summary.ran), failed=dict(summary.failed),
                              interrupted=summary.interrupted)
    write_manifest(run_dir, record)


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
    started, t0 = now(), time.perf_counter()
    prepare_folder(config, run_dir, config_text)
    with RunLock(run_dir):
        # Absolute paths: a task may run in another working folder (or on another machine).
        specs = config.sessions(run_dir.resolve())
        todo = [s for s in specs if not session_finished(s.log_path)]
        summary = RunSummary(run_dir=run_dir, planned=len(specs), skipped=len(specs) - len(todo),
                             clock_start=t0)
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
        write_manifest(run_dir, record)
        try:
            # Yoked sessions replay Stimulus sessions' logs: they run once those have ended.
            first = [s for s in todo if s.yoke_log is None]
            then = [s for s in todo if s.yoke_log is not None]
            execute(executor, first, summary, progress=progress, desc=config.name)
            if then and not summary.interrupted:
                execute(executor, then, summary, progress=progress, desc=config.name,
                        initial=summary.skipped + len(first))
        finally:
            close_manifest(run_dir, record, summary)
    if summary.interrupted:
        raise KeyboardInterrupt
    if report:
        # The report reads the run folder and knows nothing of the runner (imported here, late,
        # so that importing dishbrain.report first does not load the runner through its package).
        from dishbrain.report import write_report

        summary.report = write_report(run_dir, config)
    return summary


def execute(executor: Executor, todo: Sequence[SessionSpec], summary: RunSummary, *,
            progress: bool = True, desc: str = "sessions",
            initial: int | None = None) -> RunSummary:
    """Run `todo` on `executor`, recording each outcome in `summary` (ran, failed, interrupted,
    wall_s since `summary.clock_start`) as it comes; one tqdm bar of sessions done out of
    ``summary.planned`` (starting at ``initial``, default ``summary.skipped``). Ctrl-C or
    SIGTERM stops the tasks in flight and sets ``interrupted``
    (not raised). The loop of `run`, and of any runner over many configs (a sweep: pass the
    sessions of every variant at once)."""
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=summary.planned, desc=desc, unit="session",
                   initial=summary.skipped if initial is None else initial,
                   position=0, leave=True, dynamic_ncols=True)
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
        summary.wall_s = time.perf_counter() - summary.clock_start
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
