"""`RayExecutor`: the `Executor` seam on a Ray cluster (``pip install -e ".[cluster]"``).

Each session is one Ray task (one CPU, ``max_retries``: a worker process or node that dies
mid-session is replaced and the task replayed from scratch, as a rerun would). A task plays in a
scratch folder on its node (`SessionSpec.rebase`) and returns its files' contents (gzip-
compressed) to the driver, which writes them into the run folder as each task ends, so the
driver and the workers need not share a filesystem and a log in the run folder is always whole.
A finished rest recording (and its saved culture) travels to the task with it; the paths of the
scratch folder in the returned logs are rewritten to the run folder's. The culture's
compiled code is built once per node: the first task there builds it under the build cache's
file lock (``dishbrain.culture.build``), the others wait for it and reuse it.

Ray does the scheduling, retries and transport; nothing here opens a socket. ``address=None``
starts a local Ray instance for the run (``ray.init(num_cpus=...)``) and stops it afterwards;
``"auto"`` or ``"HOST:PORT"`` joins a running cluster (whose nodes must have this project
installed, at the same commit, for results to match). Ray is imported only here, lazily.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dishbrain.experiment.executors import one_line
from dishbrain.experiment.tasks import SessionSpec, TaskOutcome, TaskResult

__all__ = ["RayExecutor", "import_ray", "play_remote"]

INSTALL_HINT = 'the ray executor needs Ray: pip install -e ".[cluster]" (or pip install "ray>=2.9")'


def import_ray():
    """Ray, or ImportError with the install hint."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return ray


def _common_root(tasks: Sequence[SessionSpec]) -> Path:
    paths = [str(p) for s in tasks for p in s.files]
    return Path(os.path.commonpath(paths))


def _inputs(spec: SessionSpec, root: Path) -> dict[str, bytes]:
    """The files a task reads: a finished rest recording and the culture saved after it."""
    from dishbrain.experiment.tasks import session_finished

    out = {}
    rest = spec.rest
    if rest is not None and session_finished(rest.log_path):
        for path in (rest.log_path, rest.state_path):
            if path.is_file():
                out[str(path.relative_to(root))] = gzip.compress(path.read_bytes(), 1)
    return out


def play_remote(spec: SessionSpec, root: str, inputs: dict[str, bytes]) -> dict[str, Any]:
    """In a Ray worker: play `spec` in a scratch folder; return its result and files."""
    from filelock import FileLock

    from dishbrain.experiment.executors import prepare_players
    from dishbrain.experiment.tasks import run_task

    scratch = Path(tempfile.mkdtemp(prefix="dishbrain-task-"))
    try:
        local = spec.rebase(root, scratch)
        for rel, data in inputs.items():
            path = scratch / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(gzip.decompress(data))
        if spec.player == "culture":  # once per node: later tasks find it built
            from dishbrain.culture.build import cache_root

            cache_root().mkdir(parents=True, exist_ok=True)
            with FileLock(cache_root() / "prepare-players.lock"):
                prepare_players([local])
        result, error = None, None
        try:
            result = run_task(local)
        except Exception as exc:  # run_task left the traceback in the error file
            error = one_line(exc)
        files = {}
        # The logs name the files the task used (a rest recording's saved culture): in the run
        # folder they are where the driver puts them, so the logs say so.
        here, there = (json.dumps(str(p))[1:-1].encode() for p in (scratch, root))
        for path in local.files:
            if path.is_file():
                data = path.read_bytes()
                if path.suffix in (".jsonl", ".txt"):
                    data = data.replace(here, there)
                files[str(path.relative_to(scratch))] = gzip.compress(data, 1)
        return {"result": result, "error": error, "files": files}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write(root: Path, files: dict[str, bytes]) -> None:
    """Each returned file into the run folder, whole or not at all (write, then rename)."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(gzip.decompress(data))
        os.replace(tmp, path)


class RayExecutor:
    """Runs each task as a Ray task; yields outcomes as they finish (see the module docstring).

    ``address``: None (a local instance for the run, ``num_cpus`` CPUs: default all), ``"auto"``
    or ``"HOST:PORT"`` (join). ``max_retries``: how often a task whose worker died is replayed.
    If Ray is already initialised in this process (a test's cluster), it is used and left
    running.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 max_retries: int = 3):
        if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int)
                                     or num_cpus < 1):
            raise ValueError(f"RayExecutor.num_cpus must be a whole number >= 1, got {num_cpus!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"RayExecutor.max_retries must be a whole number >= 0, "
                             f"got {max_retries!r}")
        self.address = address
        self.num_cpus = num_cpus
        self.max_retries = max_retries
        self.workers = num_cpus or (os.cpu_count() or 1)
        self._started_here = False

    def start(self) -> None:
        """Connect to (or start) Ray now; ``workers`` becomes the cluster's CPU count."""
        ray = import_ray()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                kwargs["num_cpus"] = self.workers
            else:
                kwargs["address"] = self.address
            ray.init(**kwargs)
            self._started_here = True
        self.workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

    def stop(self) -> None:
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False

    def run(self, tasks: Sequence[SessionSpec], progress: bool) -> Iterator[TaskOutcome]:
        tasks = list(tasks)
        if not tasks:
            return
        ray = import_ray()
        self.start()
        root = _common_root(tasks)
        remote = ray.remote(play_remote).options(num_cpus=1, max_retries=self.max_retries)
        pending: dict[Any, SessionSpec] = {}
        clean = False
        try:
            for spec in tasks:  # Ray queues them (FIFO per scheduler) and places them on nodes
                pending[remote.remote(spec, str(root), _inputs(spec, root))] = spec
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    spec = pending.pop(ref)
                    try:
                        payload = ray.get(ref)
                    except ray.exceptions.RayError as exc:  # retries spent, or node lost
                        yield TaskOutcome(spec, error=f"ray: {one_line(exc)}")
                        continue
                    _write(root, payload["files"])
                    if payload["error"] is not None:
                        yield TaskOutcome(spec, error=payload["error"])
                        continue
                    spec.error_path.unlink(missing_ok=True)
                    # A replayed session's old compressed log goes (as run_task does locally).
                    spec.log_path.with_name(spec.log_path.name + ".gz").unlink(missing_ok=True)
                    result: TaskResult = payload["result"]
                    yield TaskOutcome(spec, result)
            clean = True
        finally:
            if not clean:  # Ctrl-C or the consumer stopped: the tasks in flight are dropped
                for ref in pending:
                    try:
                        ray.cancel(ref, force=True)
                    except Exception:  # noqa: BLE001 - already finished or gone
                        pass
            self.stop()
