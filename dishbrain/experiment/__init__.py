"""The protocol runner: configs, sessions as independent tasks, the executor seam, resume.

Two studies run on it:

- ``dishbrain experiment`` - the DishBrain protocol of Kagan et al. 2022 ("In vitro neurons learn
  and exhibit sentience when embodied in a simulated game-world", Neuron 110:3952): N cultures
  (seeds), each played in every condition (Stimulus, Silent, No-feedback, optionally Rest) for a
  20-minute session, optionally after a rest recording of the same culture; learning is read as
  the change from minutes 0-5 to minutes 5-20 (Fig. 5).
- ``dishbrain compare`` - the comparison of Khajehnejad et al. 2025 ("Biological neurons compete
  with deep reinforcement learning in sample efficiency in a simulated gameworld", Cyborg and
  Bionic Systems 6:0336): any players (the culture, DQN/A2C/PPO with each input design, the
  reference players, a ``package.module:factory``) over N seeds, with the same metrics; a
  player's ``minutes`` may exceed a session (sample efficiency: up to 10x the culture's game time).

Modules, each importing only those above it::

    tasks       SessionSpec, RestSpec, run_task, session_finished: one session, playable anywhere
    config      RunConfig, PlayerSpec (checked on construction), the TOML schema, load_config
    executors   Executor (the seam), LocalExecutor (process pool, signals)
    runfolder   layout, config.toml copy, manifest, RunLock, load_run_config
    runner      run(): plan, skip the finished, execute, record, then dishbrain.report

A config expands into sessions (``RunConfig.sessions(run_dir)``); a session is *finished* when its
log ends with an ``end`` line with ``"stopped": false``; a rerun skips finished sessions and reruns
everything else from scratch, so a crash or Ctrl-C loses at most the sessions in flight. The report
(``dishbrain.report``) reads the run folder through ``runfolder`` and never imports the runner.
"""

from dishbrain.experiment.config import (
                                         CONDITIONS,
                                         DEFAULT_CONDITIONS,
                                         DEFAULT_WINDOWS,
                                         ConfigError,
                                         PlayerSpec,
                                         RunConfig,
                                         load_config,
                                         parse_config,
)
from dishbrain.experiment.executors import Executor, LocalExecutor
from dishbrain.experiment.runfolder import (
                                         CONFIG_NAME,
                                         MANIFEST_NAME,
                                         config_toml,
                                         git_commit,
                                         load_run_config,
)
from dishbrain.experiment.runner import RunSummary, run
from dishbrain.experiment.tasks import (
                                         RUNNER_OPTIONS,
                                         RestSpec,
                                         SessionSpec,
                                         TaskOutcome,
                                         TaskResult,
                                         run_task,
                                         session_finished,
)

__all__ = [
    "CONDITIONS", "CONFIG_NAME", "DEFAULT_CONDITIONS", "DEFAULT_WINDOWS", "MANIFEST_NAME",
    "RUNNER_OPTIONS", "ConfigError", "Executor", "LocalExecutor", "PlayerSpec", "RestSpec",
    "RunConfig", "RunSummary", "SessionSpec", "TaskOutcome", "TaskResult", "config_toml",
    "git_commit", "load_config", "load_run_config", "parse_config", "run", "run_task",
    "session_finished",
]
