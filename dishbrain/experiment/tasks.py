"""One session as an independent task: what it is (`SessionSpec`), how to play it (`run_task`),
and when it is done (`session_finished`).

A task builds its own player and plays with `play_session`, so tasks share nothing and can run
anywhere: in this process, in a local worker process, or on another machine (an executor may
`rebase` a spec into a scratch folder there and copy its `files` back). A session is *finished*
when its log ends with an ``end`` line with ``"stopped": false``; a log may be plain
(``<name>.jsonl``) or compressed (``<name>.jsonl.gz``, as committed results are).
"""

from __future__ import annotations

import dataclasses
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RUNNER_OPTIONS", "RestSpec", "SessionSpec", "TaskOutcome", "TaskResult", "run_task",
           "session_finished"]

#: Options the runner sets itself for every session; a config may not set them.
RUNNER_OPTIONS = ("seed", "condition", "state_in", "state_out", "yoke_log")
#: The suffix of a compressed session log, after ``.jsonl`` (dishbrain/logs.py reads both).
GZIP_SUFFIX = ".gz"


@dataclass(frozen=True)
class RestSpec:
    """A rest recording before the session: same player and seed, condition "rest"; the player's
    state after it (``state_out``) is where the session starts (``state_in``)."""

    minutes: float
    log_path: Path
    state_path: Path


@dataclass(frozen=True)
class SessionSpec:
    """One independent task: build the player, (rest,) play one session, write its log.

    Everything a task needs is in its fields (plain data, picklable), so an executor can send it
    to any process or machine. ``label`` names the group (a condition, a player, and in a sweep
    a variant); ``key`` (label and seed) names the task's files.
    """

    player: str
    options: dict[str, Any]
    seed: int
    minutes: float
    condition: str | None
    label: str
    log_path: Path
    game: dict[str, Any] = field(default_factory=dict)
    rest: RestSpec | None = None
    #: Condition "yoked": the log of the Stimulus session whose feedback this one replays (a
    #: finished input, read where the task runs: the runner plays it first).
    yoke_log: Path | None = None

    @property
    def key(self) -> str:
        return f"{self.label}-seed{self.seed}"

    @property
    def error_path(self) -> Path:
        return self.log_path.with_suffix(".error.txt")

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file the task may write (an executor that runs it elsewhere copies these back)."""
        out = [self.log_path, self.error_path]
        if self.rest is not None:
            out += [self.rest.log_path, self.rest.state_path]
        return tuple(out)

    def rebase(self, old_root: str | Path, new_root: str | Path) -> SessionSpec:
        """The same task with its files under `new_root` instead of `old_root` (e.g. a worker's
        scratch folder on another machine)."""
        def move(path: Path) -> Path:
            return Path(new_root) / Path(path).relative_to(old_root)

        rest = None
        if self.rest is not None:
            rest = dataclasses.replace(self.rest, log_path=move(self.rest.log_path),
                                       state_path=move(self.rest.state_path))
        return dataclasses.replace(self, log_path=move(self.log_path), rest=rest)


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
    """True when the session's log (``<name>.jsonl``, or on disk only as ``<name>.jsonl.gz``)
    ends with an ``end`` line with ``"stopped": false``."""
    from dishbrain.logs import log_finished  # here: numpy and gymnasium, not needed to plan

    return log_finished(path)


def _play(spec: SessionSpec, *, log_path: Path, minutes: float, condition: str | None,
          extra: dict[str, Any], progress: bool | int, desc: str):
    from dishbrain.player import make_agent, player_accepts
    from dishbrain.session import Progress, play_session, session_steps
    from envs.pong import PongConfig

    options = {**spec.options, "seed": spec.seed, **extra}
    if condition is not None and player_accepts(spec.player, "condition"):
        options["condition"] = condition  # for other players the condition is only a label
    agent = make_agent(spec.player, **options)
    wrappers = []
    if progress is not False:
        position = None if progress is True else int(progress)

        def bar(env):
            steps = session_steps(minutes, env.unwrapped.config.tick_ms)
            return Progress(env, steps, desc=desc, position=position)
        wrappers.append(bar)
    # A replayed session's old compressed log (unfinished, or it would not be replayed) goes:
    # the new plain log is the session's only log.
    log_path.with_name(log_path.name + GZIP_SUFFIX).unlink(missing_ok=True)
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
    ``spec.error_path`` and re-raises.

    ``progress``: False (no bar), True (a bar), or the row of this task's bar.
    """
    from dishbrain.player import player_accepts

    spec.error_path.unlink(missing_ok=True)
    try:
        rest_wall = 0.0
        extra: dict[str, Any] = {}
        rest = spec.rest
        if rest is not None:
            keeps_state = player_accepts(spec.player, "state_out")
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
        if spec.yoke_log is not None:
            extra["yoke_log"] = str(spec.yoke_log)
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
