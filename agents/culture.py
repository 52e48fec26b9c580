"""The simulated culture as a Pong player: Culture + encoder + decoder + feedback rule.

The closed loop of DishBrain (Kagan et al. 2022, Neuron 110:3952; ``shared/PROTOCOL.md``) on the
same env, loop and session log as every other player (`dishbrain.player`):

    every game step (10 ms), from inside ONE long Brian2 run:
      spike counts of the last tick --MotorDecoder--> action --env.step--> info["event"], next obs
      info["event"] --FeedbackRule--> feedback stimulation   (never the reward)
      next obs --DishBrainEncoder--> sensory stimulation for the next tick

The culture's own clock drives the game (``owns_clock = True``, `dishbrain.player.Agent`): `play`
runs `Culture.run` once with a tick callback that stores the tick's counts and calls
`Stepper.step` (act -> env.step -> learn). The observation therefore enters the culture in
`learn`, not in `act`: `learn` encodes `next_obs` as the stimulation of the next tick, and `act`
decodes the spikes that stimulation evoked (its `obs` argument is that same observation, already
delivered; `act` does not read it).

Sensory input pauses while feedback plays. Both kinds of feedback use the sensory electrodes
(Kagan et al. 2022) and a stimulation replaces whatever was playing on an electrode, so the place
and rate code make way at the start of the feedback and resume, with a fresh train, at its end:
100 ms after a hit; after a miss there is no ball in play anyway until the re-serve (the env's
pause equals the 4 s of feedback).

Importing this module does not import torch (nor Brian2: the culture is built on demand).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from dishbrain.decoding import DecoderConfig, MotorDecoder
from dishbrain.encoding import DishBrainEncoder, EncoderConfig
from dishbrain.feedback import FeedbackConfig, FeedbackRule, make_feedback
from dishbrain.player import Agent, SessionStopped, Stepper


def _jsonable(value: Any) -> Any:
    """Dataclasses, tuples, numpy scalars and arrays, paths -> plain JSON types."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


class CultureAgent(Agent):
    """A simulated culture playing Pong through the MEA.

    Arguments: `culture` (a `dishbrain.culture.Culture`), `encoder`, `decoder` and `feedback`
    (defaults: DishBrain's codes on the culture's MEA, the Stimulus condition), `seed` for the
    feedback's random choices, `state_out` to save the culture after each session.

    It owns its clock (``owns_clock``): play it with `play`, which runs the simulation. Per game
    step, `act` decodes the last tick's spikes and `learn` delivers the feedback for the step's
    event and encodes the next observation as stimulation (module docstring).

    For viewers: `last_counts` (spikes per electrode in the last tick), `encoder.state()` (the
    sensory electrode and rate now delivered), `feedback.last_feedback`, `decoder.movement`,
    `culture`.
    """

    name = "culture"
    owns_clock = True

    def __init__(self, culture, encoder: DishBrainEncoder | None = None,
                 decoder: MotorDecoder | None = None, feedback: FeedbackRule | None = None,
                 seed: int = 0, state_out: str | Path | None = None,
                 info: dict[str, Any] | None = None):
        self.culture = culture
        self.encoder = encoder or DishBrainEncoder()
        self.decoder = decoder or MotorDecoder(culture.mea)
        self.feedback = feedback or make_feedback("stimulus")
        self.condition = self.feedback.name
        self.state_out = Path(state_out) if state_out is not None else None
        self.tick_ms = self.decoder.tick_ms
        self.last_counts = np.zeros(int(culture.mea.n_electrodes))
        self.rng = np.random.default_rng(seed)
        self._info = dict(info or {})
        self.save_error: str | None = None  # why the last save to state_out failed, if it did

    # -- configuration, for the log header ----------------------------------------------------
    @property
    def config_dict(self) -> dict[str, Any]:
        c = self.culture
        return _jsonable({
            "condition": self.condition,
            "n_neurons": getattr(c, "n_neurons", None),
            "culture_seed": getattr(c, "seed", None),
            "culture": getattr(c, "config", None),
            "mea": getattr(c.mea, "config", None),
            "encoder": self.encoder.config,
            "decoder": self.decoder.config,
            "feedback": self.feedback.config,
            **self._info,
        })

    def env_overrides(self) -> dict[str, Any]:
        return self.feedback.env_overrides()

    # -- the per-step body --------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.encoder.reset()
        self.decoder.reset()
        self.feedback.reset()
        self.last_counts = np.zeros(int(self.culture.mea.n_electrodes))

    def act(self, obs) -> int:
        """The motor decoding of the spikes of the tick that just ended (`last_counts`, stored
        by `play`'s tick callback). `obs` is not read: it reached the culture as stimulation in
        the previous step's `learn` (the first one in `play`), and these spikes are the answer."""
        del obs  # already encoded; see the docstring
        return self.decoder.decode(self.last_counts)

    def learn(self, obs, action, reward, next_obs, terminated, truncated, info) -> None:
        """Feedback for the step's event, then `next_obs` encoded as sensory stimulation: the
        culture's input for the next tick (where the observation enters the culture)."""
        event = info["event"]
        culture = self.culture
        self.decoder.on_event(event)
        if self.feedback.stimulates_on(event):
            self.encoder.stop(culture)  # the feedback takes the sensory electrodes
        self.feedback.on_event(event, culture, self.rng)
        self._encode(next_obs)

    def _encode(self, obs) -> None:
        if self.feedback.blocks_sensory:
            return
        if self.feedback.is_active(float(self.culture.t_ms)):
            return  # sensory input pauses while feedback plays (module notes)
        self.encoder.apply(self.culture, obs, self.tick_ms)

    # -- the loop, on the culture's clock -----------------------------------------------------
    def play(self, env, n_steps: int, seed: int | None = None) -> int:
        tick_ms = float(env.unwrapped.config.tick_ms)
        if tick_ms != self.decoder.tick_ms:
            self.decoder = MotorDecoder(self.culture.mea, self.decoder.config, tick_ms)
        self.tick_ms = tick_ms
        culture = self.culture
        culture.stop_stimulation()
        stepper = Stepper(self, env, seed)
        self._encode(stepper.obs)  # the first ball, before the first tick
        failure: list[BaseException] = []

        # The run has exactly n_steps ticks (one at the start of every tick_ms); the last step's
        # stimulation plays out until the run ends. Returning False stops the run early.
        def tick(t_ms: float, counts: np.ndarray) -> bool:
            if stepper.steps >= n_steps or failure:
                return False
            self.last_counts = np.array(counts, copy=True)
            try:
                going = stepper.step()
            except BaseException as exc:  # noqa: BLE001  (re-raised after the run, see below)
                failure.append(exc)
                return False
            return going or stepper.steps >= n_steps

        # Exceptions raised inside the tick (a viewer's SessionStopped, Ctrl-C) would surface
        # wrapped by Brian2; they are kept and re-raised as they were once the run has stopped.
        clean = False
        try:
            culture.run(n_steps * tick_ms, tick=tick, tick_ms=tick_ms)
            clean = not failure or isinstance(failure[0], (SessionStopped, KeyboardInterrupt))
        except (SessionStopped, KeyboardInterrupt):
            clean = True
            raise
        finally:
            culture.stop_stimulation()
            self.encoder.reset()
            if clean and self.state_out is not None:
                try:
                    self.save(self.state_out)
                    self.save_error = None
                except OSError as exc:  # the session is kept (its log ends); the caller says so
                    self.save_error = f"{exc.strerror or exc}"
        if failure:
            raise failure[0]
        return stepper.steps

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.culture.save(path)


def _config(cls, value, what: str):
    """A config dataclass from None (defaults), an instance, or a dict of fields (TOML tables)."""
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown} in {what}; "
                             f"allowed: {sorted(known)}")
        return cls.from_dict(value)  # from_dict also turns TOML lists into tuples
    raise ValueError(f"{what} must be a {cls.__name__} or a dict of its fields, got {value!r}")


def check_culture_options(condition: str | None = None, n_neurons: int | None = None,
                          layout: str | None = None, culture_config=None,
                          encoder_config=None, decoder_config=None, feedback_config=None,
                          backend: str | None = None, mea_config=None,
                          yoke_log: str | Path | None = None, **runner: Any) -> None:
    """Every option value of the culture player, checked without building anything (Brian2 is
    not imported): a run refuses a bad option before its folder is touched (issue 15). Raises
    ValueError naming the option. ``condition`` None: checked per session by the runner."""
    from dishbrain.culture.config import CultureConfig
    from dishbrain.culture.standalone import BACKENDS
    from dishbrain.mea import MEAConfig

    if condition is not None:
        make_feedback(condition, _config(FeedbackConfig, feedback_config, "feedback_config"))
    else:
        _config(FeedbackConfig, feedback_config, "feedback_config")
    if yoke_log is not None and not Path(yoke_log).exists():
        raise ValueError(f"yoke_log: no session log at {str(yoke_log)!r}")
    decoder = _config(DecoderConfig, decoder_config, "decoder_config")
    if layout is not None:
        decoder.replace(layout=layout)
    _config(EncoderConfig, encoder_config, "encoder_config")
    if n_neurons is not None and not (isinstance(n_neurons, int) and not isinstance(n_neurons, bool)
                                      and n_neurons >= 1):
        raise ValueError(f"n_neurons must be a whole number >= 1, got {n_neurons!r}")
    config = _config(CultureConfig, culture_config, "culture_config")
    if n_neurons is not None:
        dataclasses.replace(config, n_neurons=n_neurons)  # the config checks the size
    if mea_config is not None:
        _config(MEAConfig, mea_config, "mea_config")
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")


def make_culture_agent(seed: int = 0, condition: str = "stimulus", n_neurons: int | None = None,
                       state_in: str | Path | None = None, state_out: str | Path | None = None,
                       layout: str | None = None, culture_config=None,
                       encoder_config: EncoderConfig | dict | None = None,
                       decoder_config: DecoderConfig | dict | None = None,
                       feedback_config: FeedbackConfig | dict | None = None,
                       backend: str | None = None,
                       mea_config=None, yoke_log: str | Path | None = None) -> CultureAgent:
    """Build (or load, from `state_in`) a culture and wire it as a player of `condition`.

    Configs may be given as dataclasses or as dicts of their fields. `n_neurons` (default: the
    culture config's) and `culture_config` shape a new culture; with `state_in` the saved culture
    is loaded, and they must agree with it if given. `layout` picks the decoder's motor layout.
    The culture is saved to `state_out` after each session (also one stopped early).
    `mea_config` (a `dishbrain.mea.MEAConfig` or a dict of its fields) sets the array's geometry
    and regions for a new culture (a loaded one keeps its own).
    `backend`: "standalone" (compiled C++, fast; built once per configuration and cached),
    "runtime" (Brian2 runtime) or "auto" (standalone where a C++ compiler exists, else runtime
    with a warning); None: the environment variable DISHBRAIN_CULTURE_BACKEND, else "auto".
    Saved cultures load on either backend.
    Condition "frozen" builds the culture with its long-term plasticity off (STDP, tagging and
    homeostatic scaling; a loaded culture must have been saved so). Condition "yoked" replays
    the feedback of another culture's Stimulus session: `yoke_log` is that session's log.
    """
    # Everything that can be wrong with the options fails before the slow part (Brian2).
    feedback = make_feedback(condition, _config(FeedbackConfig, feedback_config, "feedback_config"))
    if (condition == "yoked") != (yoke_log is not None):
        raise ValueError("condition 'yoked' needs yoke_log (the log of another culture's Stimulus "
                         "session)" if yoke_log is None else
                         f"yoke_log is only for condition 'yoked', not {condition!r}")
    if yoke_log is not None:
        if not Path(yoke_log).exists():
            raise ValueError(f"yoke_log: no session log at {str(yoke_log)!r}")
        feedback.load_log(yoke_log)
    decoder_config = _config(DecoderConfig, decoder_config, "decoder_config")
    if layout is not None:
        decoder_config = decoder_config.replace(layout=layout)
    encoder_config = _config(EncoderConfig, encoder_config, "encoder_config")
    if n_neurons is not None and not (isinstance(n_neurons, int) and not isinstance(n_neurons, bool)
                                      and n_neurons >= 1):
        raise ValueError(f"n_neurons must be a whole number >= 1, got {n_neurons!r}")

    import os

    from dishbrain.culture import (
        BACKENDS,
        CultureConfig,
        ensure_compiled,
        make_culture,
        standalone_available,
    )
    from dishbrain.mea import MEA, MEAConfig

    mea = None if mea_config is None else MEA(_config(MEAConfig, mea_config, "mea_config"))

    if backend is None:
        backend = os.environ.get("DISHBRAIN_CULTURE_BACKEND", "auto")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    if backend == "auto":
        backend = "standalone" if standalone_available()[0] else "runtime"
    if backend == "standalone" and not standalone_available()[0]:
        raise ValueError(f"backend 'standalone' unavailable: {standalone_available()[1]}")
    if backend == "runtime":
        ensure_compiled()  # the first culture in a fresh environment compiles, with a message

    config = None
    if culture_config is not None or state_in is None:
        config = _config(CultureConfig, culture_config, "culture_config")
        if n_neurons is not None:
            config = dataclasses.replace(config, n_neurons=n_neurons)
        if not feedback.plastic:
            config = dataclasses.replace(config, stdp_enabled=False, stdp_tagging=False,
                                         homeostasis_enabled=False)
    info: dict[str, Any] = {"backend": backend}
    if yoke_log is not None:
        info["yoke_log"] = str(yoke_log)
    if state_in is not None:
        path = Path(state_in)
        if not path.exists():
            raise ValueError(f"no saved culture at {str(path)!r}")
        culture = make_culture(backend=backend, path=path)
        if n_neurons is not None and n_neurons != culture.n_neurons:
            raise ValueError(f"n_neurons={n_neurons} does not match the saved culture's "
                             f"{culture.n_neurons} neurons ({str(path)!r})")
        if culture_config is not None and config != culture.config:
            raise ValueError(f"culture_config differs from the saved culture's ({str(path)!r}); "
                             "a loaded culture keeps its own configuration")
        if mea is not None and mea.config != culture.mea.config:
            raise ValueError(f"mea_config differs from the saved culture's ({str(path)!r}); "
                             "a loaded culture keeps its own MEA")
        c = culture.config
        if not feedback.plastic and (c.stdp_enabled or c.homeostasis_enabled):
            raise ValueError(f"condition {condition!r} needs a culture without plasticity; the "
                             f"one saved at {str(path)!r} has STDP or homeostasis on")
        info["state_in"] = str(path)
    else:
        culture = make_culture(config, mea, seed=seed, backend=backend)
    if state_out is not None:
        info["state_out"] = str(state_out)
    encoder = DishBrainEncoder(encoder_config)
    decoder = MotorDecoder(culture.mea, decoder_config)
    if hasattr(culture, "prepare"):
        culture.prepare(decoder.tick_ms)  # the one-off compile, with a message, before the game
    return CultureAgent(culture, encoder, decoder, feedback, seed=seed, state_out=state_out,
                        info=info)


make_culture_agent.check_options = check_culture_options  # read by the config checks
