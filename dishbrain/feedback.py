"""Feedback rules: what the culture is told about the consequences of its play.

Kagan et al. 2022 (Neuron 110:3952; ``shared/PROTOCOL.md``, [P]) gave the culture no reward, only
stimulation, following the free-energy principle: an agent that minimises surprise should learn to
act so that its input stays predictable.

- Stimulus (`FreeEnergyFeedback`, "stimulus"): on a hit, *predictable* stimulation, ~75 mV pulses
  at 100 Hz for 100 ms on all 8 sensory electrodes at once; on a miss, *unpredictable*
  stimulation, ~150 mV pulses at 5 Hz for 4 s at random sensory electrodes at random times, then
  the ball is served again (the env's miss pause equals the feedback's duration).
- Silent (`SilentFeedback`, "silent"): no stimulation; play stops for the same 4 s after a miss.
- No-feedback (`NoFeedback`, "no-feedback"): no stimulation and no pause; after a miss the ball
  bounces off the back wall and play goes on.
- Rest (`RestCondition`, "rest"): no sensory input at all and no feedback; the paddle still moves
  with the culture's spontaneous activity (the paper's pre-game baseline recording).

Two controls that tell learning from drift (issue 17, Stage 1b):

- Frozen (`FrozenFeedback`, "frozen"): the Stimulus feedback on a culture whose long-term
  plasticity is off (``plastic = False``: the player builds the culture with STDP and homeostatic
  scaling disabled; short-term plasticity stays, it is part of how synapses transmit). The null
  of no learning: whatever changes over its session is not synaptic learning.
- Yoked (`YokedFeedback`, "yoked"): each culture receives the feedback stimulation recorded from
  *another* culture's Stimulus session, at the same steps of the session, whatever its own play:
  the predictable train where the source hit, the unpredictable one where the source missed.
  Its own hits and misses stimulate nothing (its game pauses and re-serves after its own misses
  as under Stimulus). The same amount and kind of stimulation as Stimulus, without the
  contingency: Bakkum, Chao & Potter 2008 (PLoS ONE 3:e2088) found that contingent
  stimulation shaped real cultures' activity while the same sequence replayed non-contingently
  did not. The schedule is read from the source's session log (`YokedFeedback.load_log`).

"Random electrodes at random times" is realised as independent Poisson trains on
`unpredictable_electrodes` sensory electrodes drawn at random on each miss, the total rate
`unpredictable_rate_hz` split evenly among them: the union is a 5 Hz Poisson train whose every
pulse falls on a uniformly random one of those electrodes.

A rule reads only the game's event (`info["event"]`), never the reward. It records each feedback
it gives: `last_feedback` = (kind, t_ms) with kind "predictable" or "unpredictable", `history`
(the last `HISTORY` of them), and `active_until_ms` (when the stimulation it started ends).
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.config import Config, check_int, check_number

#: How many feedback events a rule remembers (a 20-minute session has a few hundred).
HISTORY = 10_000


@dataclass(frozen=True)
class FeedbackConfig(Config):
    """Timings and amplitudes of the feedback (Kagan et al. 2022, [P]), validated."""

    predictable_amplitude_mv: float = 75.0
    predictable_rate_hz: float = 100.0
    predictable_duration_ms: float = 100.0
    unpredictable_amplitude_mv: float = 150.0
    #: Total pulse rate of the unpredictable stimulation, spread over the chosen electrodes.
    unpredictable_rate_hz: float = 5.0
    unpredictable_duration_ms: float = 4000.0
    #: How many of the sensory electrodes a miss's stimulation uses, drawn at random per miss.
    unpredictable_electrodes: int = 8

    def __post_init__(self) -> None:
        for name in ("predictable_amplitude_mv", "predictable_rate_hz", "predictable_duration_ms",
                     "unpredictable_amplitude_mv", "unpredictable_rate_hz",
                     "unpredictable_duration_ms"):
            check_number(self, name, getattr(self, name), lo=0, lo_open=True)
        check_int(self, "unpredictable_electrodes", self.unpredictable_electrodes, lo=1)


class FeedbackRule:
    """The interface of a condition's feedback. Subclasses override `on_event` and the flags."""

    name: str = "feedback"
    #: True: the culture gets no sensory input at all in this condition.
    blocks_sensory: bool = False
    #: False: the culture plays with its long-term plasticity off (the Frozen condition).
    plastic: bool = True

    def __init__(self, config: FeedbackConfig | None = None):
        self.config = config or FeedbackConfig()
        self.reset()

    def reset(self) -> None:
        self.last_feedback: tuple[str, float] | None = None
        self.history: collections.deque[tuple[str, float]] = collections.deque(maxlen=HISTORY)
        self.active_until_ms = -math.inf

    def stimulates_on(self, event: str) -> bool:
        """Whether `on_event(event, ...)` stimulates (the sensory train makes way for it)."""
        return False

    def on_event(self, event: str, culture, rng: np.random.Generator) -> None:
        """React to the game's event of this step ("hit", "miss", "serve" or "none")."""

    def is_active(self, t_ms: float) -> bool:
        """Whether feedback stimulation started by this rule is still playing at `t_ms`."""
        return t_ms < self.active_until_ms

    def env_overrides(self) -> dict[str, Any]:
        """PongConfig fields the condition needs."""
        return {}

    def _record(self, kind: str, t_ms: float, duration_ms: float) -> None:
        self.last_feedback = (kind, t_ms)
        self.history.append((kind, t_ms))
        self.active_until_ms = t_ms + duration_ms

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


class FreeEnergyFeedback(FeedbackRule):
    """Stimulus condition: predictable stimulation after a hit, unpredictable after a miss."""

    name = "stimulus"

    def stimulates_on(self, event: str) -> bool:
        return event in ("hit", "miss")

    def on_event(self, event: str, culture, rng: np.random.Generator) -> None:
        c = self.config
        sensory = list(culture.mea.sensory)
        if event == "hit":
            culture.stimulate(sensory, c.predictable_amplitude_mv, c.predictable_rate_hz,
                              c.predictable_duration_ms, random_timing=False)
            self._record("predictable", float(culture.t_ms), c.predictable_duration_ms)
        elif event == "miss":
            n = min(c.unpredictable_electrodes, len(sensory))
            picked = set(rng.choice(len(sensory), size=n, replace=False).tolist())
            chosen = [e for k, e in enumerate(sensory) if k in picked]
            culture.stimulate(chosen, c.unpredictable_amplitude_mv, c.unpredictable_rate_hz / n,
                              c.unpredictable_duration_ms, random_timing=True)
            self._record("unpredictable", float(culture.t_ms), c.unpredictable_duration_ms)

    def env_overrides(self) -> dict[str, Any]:
        return {"miss_pause_ms": self.config.unpredictable_duration_ms, "serve_after_miss": True}


class FrozenFeedback(FreeEnergyFeedback):
    """Frozen condition: the Stimulus feedback; the player turns the culture's plasticity off."""

    name = "frozen"
    plastic = False


class YokedFeedback(FeedbackRule):
    """Yoked condition: another culture's Stimulus feedback replayed at the same steps.

    `schedule` maps a step of the session (1 = the first env step, as the session log counts
    them) to "predictable" or "unpredictable". `load_log(path)` reads it from a Stimulus
    session's log: its hits and misses are where it was stimulated. The unpredictable train's
    electrodes are drawn from this culture's own random generator, as under Stimulus.
    """

    name = "yoked"

    def __init__(self, config: FeedbackConfig | None = None,
                 schedule: dict[int, str] | None = None, source: str | None = None):
        self.schedule: dict[int, str] = dict(schedule or {})
        self.source = source
        self._stimulus = FreeEnergyFeedback(config)
        super().__init__(config)

    def reset(self) -> None:
        super().reset()
        self._step = 0
        if hasattr(self, "_stimulus"):
            self._stimulus.reset()

    def load_log(self, path) -> None:
        """The schedule of a Stimulus session's log (``.jsonl`` or ``.jsonl.gz``)."""
        from dishbrain.logs import read_jsonl

        schedule: dict[int, str] = {}
        condition = None
        for record in read_jsonl(path):
            kind = record.get("kind")
            if kind == "header":
                condition = (record.get("condition")
                             or (record.get("agent_config") or {}).get("condition"))
            elif kind in ("hit", "miss"):
                schedule[int(record["step"])] = "predictable" if kind == "hit" else "unpredictable"
        if condition != "stimulus":
            raise ValueError(f"yoked feedback needs a Stimulus session's log; {str(path)!r} is "
                             f"of condition {condition!r}")
        self.schedule, self.source = schedule, str(path)

    def stimulates_on(self, event: str) -> bool:
        """Whether this step (the next `on_event`) replays a stimulation; not the event's."""
        return (self._step + 1) in self.schedule

    def on_event(self, event: str, culture, rng: np.random.Generator) -> None:
        self._step += 1
        kind = self.schedule.get(self._step)
        if kind is None:
            return
        # The Stimulus rule delivers it, so both conditions stimulate identically.
        self._stimulus.on_event("hit" if kind == "predictable" else "miss", culture, rng)
        self._record(*self._stimulus.last_feedback,
                     self.config.predictable_duration_ms if kind == "predictable"
                     else self.config.unpredictable_duration_ms)

    def env_overrides(self) -> dict[str, Any]:
        return {"miss_pause_ms": self.config.unpredictable_duration_ms, "serve_after_miss": True}


class SilentFeedback(FeedbackRule):
    """Silent condition: no stimulation; the same pause after a miss as under Stimulus."""

    name = "silent"

    def env_overrides(self) -> dict[str, Any]:
        return {"miss_pause_ms": self.config.unpredictable_duration_ms, "serve_after_miss": True}


class NoFeedback(FeedbackRule):
    """No-feedback condition: no stimulation, no pause; the ball bounces off the back wall."""

    name = "no-feedback"

    def env_overrides(self) -> dict[str, Any]:
        return {"serve_after_miss": False}


class RestCondition(FeedbackRule):
    """Rest: no sensory input and no feedback; the paddle follows spontaneous activity.

    The game runs as under Stimulus (the same pause and re-serve after a miss), so that the
    paddle's chance performance is measured on the same game."""

    name = "rest"
    blocks_sensory = True

    def env_overrides(self) -> dict[str, Any]:
        return {"miss_pause_ms": self.config.unpredictable_duration_ms, "serve_after_miss": True}


FEEDBACK_RULES: dict[str, type[FeedbackRule]] = {
    rule.name: rule for rule in (FreeEnergyFeedback, SilentFeedback, NoFeedback, RestCondition,
                                 FrozenFeedback, YokedFeedback)
}


def make_feedback(name: str, config: FeedbackConfig | None = None) -> FeedbackRule:
    """The feedback rule of condition `name` (one of `FEEDBACK_RULES`). A "yoked" rule starts
    with an empty schedule: give it one with `YokedFeedback.load_log`."""
    if name not in FEEDBACK_RULES:
        raise ValueError(f"unknown condition {name!r}; allowed: {', '.join(FEEDBACK_RULES)}")
    return FEEDBACK_RULES[name](config)
