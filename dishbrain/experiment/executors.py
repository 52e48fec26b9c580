"""Where tasks run: the `Executor` protocol and `LocalExecutor` (this machine's cores).

An executor takes `SessionSpec` tasks and yields a `TaskOutcome` for each as it ends. It owns
everything about *where*: processes, the players' one-time preparation there (the culture's
compiled binary, built once before the workers start), signals. A cluster engine (Ray, issue 14)
implements the same protocol: it sends each spec (plain data) to a worker, which calls
``run_task`` (after ``spec.rebase`` into a scratch folder if the run folder is not shared) and
returns the files in ``spec.files``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Protocol

from dishbrain.experiment.runfolder import WritersLock
from dishbrain.experiment.tasks import SessionSpec, TaskOutcome, TaskResult, run_task

__all__ = ["Executor", "LocalExecutor", "default_workers", "prepare_players"]


class Executor(Protocol):
    """Runs independent tasks and reports each as it ends; the seam for other engines.

    ``run`` calls ``run_task(spec, progress)`` for every spec (in any order, anywhere) and yields a
    `TaskOutcome` per task as it finishes (a failed task: ``error``, one line). On
    KeyboardInterrupt it stops its tasks (their logs end with ``"stopped": true`` or without an
    end line) and re-raises. A consumer that stops iterating early (closing the generator) gets
    no more tasks started. ``workers`` is how many tasks run at once (for the manifest).
    """

    workers: int

    def run(self, tasks: Sequence[SessionSpec], progress: bool) -> Iterator[TaskOutcome]: ...


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def prepare_players(tasks: Sequence[SessionSpec]) -> None:
    """What the tasks' players need built once per machine before they start: the culture's
    compiled binary (built here, not in every worker at the same time)."""
    if any(s.player == "culture" for s in tasks):
        from dishbrain.culture import ensure_compiled

        ensure_compiled()


def one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


# -- in a worker process -----------------------------------------------------------------------

_interrupted = False
_in_task = False


def _on_sigint(signum, frame):
    """In a worker: the first Ctrl-C stops the task in flight (cleanly, via play_session);
    repeats, and Ctrl-C between tasks, are ignored so the clean-up finishes."""
    global _interrupted
    if _in_task and not _interrupted:
        _interrupted = True
        raise KeyboardInterrupt


def _die_with_run(run_pid: int) -> None:
    """A worker dies within a second of the run's process (even by ``kill -9``), so no orphan
    keeps playing and writing into the run folder after its run was killed (issue 15). A thread
    waits on a pidfd of the run's process (Linux; elsewhere it polls the pid) and ends the worker
    with ``os._exit``. (The worker's parent is the forkserver, not the run, so PR_SET_PDEATHSIG
    would not do.)"""
    import threading

    try:
        pidfd = os.pidfd_open(run_pid)
    except (AttributeError, OSError):
        pidfd = None
    if pidfd is None:
        try:
            os.kill(run_pid, 0)
        except OSError:
            os._exit(1)  # gone already

    def watch() -> None:
        import select
        import time

        if pidfd is not None:
            select.select([pidfd], [], [])  # readable when the process has ended
        else:
            while True:
                try:
                    os.kill(run_pid, 0)
                except OSError:
                    break
                time.sleep(0.5)
        os._exit(1)
    threading.Thread(target=watch, daemon=True, name="dishbrain-run-watch").start()


def _init_worker(tqdm_lock, sigint_ignored: bool, run_pid: int) -> None:
    _die_with_run(run_pid)
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
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with WritersLock(spec.log_path.parent):
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
        workers = default_workers() if workers is None else workers
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
        prepare_players(tasks)
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
                yield TaskOutcome(spec, error=one_line(exc))
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
                                   initializer=_init_worker,
                                   initargs=(lock, sigint_ignored, os.getpid()))
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
                        for lost in [spec, *reversed(pending)]:
                            yield TaskOutcome(lost, error=f"not run: {one_line(exc)}")
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
                        yield TaskOutcome(spec, error=one_line(exc))
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
