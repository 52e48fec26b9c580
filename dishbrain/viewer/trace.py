"""Recording a session's per-tick trace, for replays: a gymnasium wrapper (TraceRecorder) that
gathers each tick's court state, action and, for a culture player, spikes per electrode,
stimulation and feedback, and appends them a chunk at a time through ``dishbrain.logs``
(``TraceWriter``; the format is documented there).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from dishbrain.logs import (
    EVENT_CODES,
    FEEDBACK_CODES,
    TraceWriter,
    trace_dtype,
    trace_meta,
    trace_paths,
)
from dishbrain.viewer.model import ArrayLayout, CultureProbe

#: Ticks gathered before they are appended to the file (memory flat; a crash loses at most these).
CHUNK_TICKS = 1024


def layout_record(layout: ArrayLayout) -> dict:
    """The ``array`` entry of a trace's metadata."""
    return {"name": layout.name, "positions_um": layout.positions_um.tolist(),
            "sensory": list(layout.sensory),
            "motor_up": [list(r) for r in layout.motor_up],
            "motor_down": [list(r) for r in layout.motor_down]}


class TraceRecorder(gym.Wrapper):
    """Writes a per-tick trace of the session beside its log (format: ``dishbrain.logs``).

    ``agent`` is read by duck typing (``CultureProbe``): a culture player's spikes per electrode,
    stimulation and feedback are added to the records.
    """

    def __init__(self, env: gym.Env, path: str | Path, agent: Any = None,
                 chunk_ticks: int = CHUNK_TICKS):
        super().__init__(env)
        self.path, self.meta_path = trace_paths(path)
        self.agent = agent
        self.chunk_ticks = int(chunk_ticks)
        self._writer: TraceWriter | None = None
        self._dtype: np.dtype | None = None
        self._rows: list[tuple] = []
        self._counts: list[np.ndarray | None] = []
        self._probe = None
        self._culture = False
        self._last_feedback = None
        self._action = 0
        self.ticks = 0  # written to the file so far

    # -- set up ----------------------------------------------------------------------------
    def _open(self) -> None:
        self.close_trace()
        probe = CultureProbe(self.agent) if self.agent is not None else None
        layout = probe.layout() if probe is not None else None
        counts = probe.counts() if probe is not None else None
        self._culture = layout is not None
        self._probe = probe
        n_counts = (len(counts) if counts is not None else layout.n) if self._culture else None
        self._dtype = trace_dtype(n_counts)
        self._rows = []
        self._counts = []
        self._last_feedback = probe.feedback() if probe is not None else None
        config = getattr(self.env.unwrapped, "config", None)
        meta = trace_meta(
            tick_ms=float(config.tick_ms) if config is not None else 10.0,
            env_config=dataclasses.asdict(config) if config is not None else {},
            player=getattr(self.agent, "name", None),
            condition=probe.condition() if probe is not None else None,
            array=layout_record(layout) if layout is not None else None)
        self._writer = TraceWriter(self.path, self._dtype, meta)
        self.ticks = 0

    # -- per tick --------------------------------------------------------------------------
    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self._open()
        self._action = 0
        self._record(info)
        return obs, info

    def step(self, action):
        out = self.env.step(action)
        self._action = action
        self._record(out[4])
        return out

    def _record(self, info: dict) -> None:
        # Rows are gathered as tuples (cheap) and packed into records a chunk at a time.
        row = (info["ball_x"], info["ball_y"], info["paddle_y"], info["in_play"],
               EVENT_CODES.get(info["event"], 0), self._action)
        if self._culture:
            probe = self._probe
            fb = probe.feedback()
            code = 0
            if fb is not None and fb != self._last_feedback:
                code = FEEDBACK_CODES.get(fb[0], 0)
            self._last_feedback = fb
            slot, rate = probe.stim()
            row += (code, slot, rate)
            counts = probe.counts()
            self._counts.append(None if counts is None else np.array(counts))
        self._rows.append(row)
        if len(self._rows) >= self.chunk_ticks:
            self.flush()

    def flush(self) -> None:
        """Append the gathered ticks to the file (its header then counts them)."""
        if self._writer is None or not self._rows:
            return
        buf = np.zeros(len(self._rows), dtype=self._dtype)
        for name, values in zip(self._dtype.names, zip(*self._rows)):
            buf[name] = values
        if self._culture:
            width = self._dtype["counts"].shape[0]
            counts = buf["counts"]
            for i, c in enumerate(self._counts):
                if c is not None and len(c) == width:
                    np.minimum(c, 255, out=counts[i], casting="unsafe")
        self._writer.append(buf)
        self.ticks = self._writer.ticks
        self._rows.clear()
        self._counts.clear()

    def close_trace(self) -> None:
        if self._writer is not None:
            self.flush()
            self._writer.close()
            self._writer = None

    def close(self):
        self.close_trace()
        super().close()


def trace_wrapper(path: str | Path, agent: Any = None) -> Callable[[gym.Env], TraceRecorder]:
    """A wrapper factory for ``play_session(..., wrappers=[...])``: env -> TraceRecorder.

    ``path`` is the session log's path (or the trace's own); the trace goes beside it.
    """
    records, _ = trace_paths(path)
    records.parent.mkdir(parents=True, exist_ok=True)

    def wrap(env: gym.Env) -> TraceRecorder:
        return TraceRecorder(env, path, agent)

    return wrap
