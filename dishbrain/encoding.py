"""Sensory encoding: the ball's position as stimulation of the culture's 8 sensory electrodes.

DishBrain (Kagan et al. 2022, Neuron 110:3952; see ``shared/PROTOCOL.md``, [P]) tells the culture
where the ball is with two codes on one pulse train:

- a *place code* (`PlaceCodeEncoder`): the ball's vertical position selects which one of the 8
  sensory electrodes is stimulated (8 equal bands of the court height, top to bottom);
- a *rate code* (`RateCodeEncoder`): the ball's horizontal distance from the paddle sets the pulse
  rate, 4 Hz with the ball at the far wall to 40 Hz with the ball at the paddle;
- pulses are biphasic, ~75 mV.

`DishBrainEncoder` combines them: `encode(obs)` gives the command (which sensory slot, what rate,
what amplitude), `vector(obs)` the 8-electrode stimulation pattern (the "stimulation-mirroring"
input of the RL baselines, Khajehnejad et al. 2025), and `apply(culture, obs)` delivers it.

Delivery is one pulse train whose pulses are routed to the electrode of the ball's band. A change
of band or rate takes effect at the current train's next pulse (the train keeps its rhythm instead
of restarting with a pulse on every game step), and the rate is quantised (`rate_step_hz`) so that
the train is re-issued only a few times per crossing of the court. Each re-issue can bring one
pulse forward by less than a game step (the culture starts a train with a pulse at once): with the
default 2 Hz steps that costs ~3% extra pulses per crossing; `rate_step_hz=0` gives an exact
continuous code at the price of a pulse on (almost) every game step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from envs.config import Config, check_choice, check_int, check_number
from envs.pong import OBS_BALL_X, OBS_BALL_Y, OBS_IN_PLAY, PongConfig

#: The paddle's face in normalised court x (PongConfig defaults: paddle 10 units wide, court 600).
DEFAULT_PADDLE_FACE_X = PongConfig().paddle_width / PongConfig().court_width

#: Duration passed to the culture for the (open-ended) sensory pulse train: one game day. The train
#: is stopped or replaced long before it runs out.
ONGOING_MS = 24 * 3600 * 1000.0

RATE_CURVES = ("linear", "geometric")
PULSE_SHAPES = ("biphasic", "monophasic")


@dataclass(frozen=True)
class EncoderConfig(Config):
    """Every setting of the sensory code, validated on construction.

    Defaults are DishBrain's (Kagan et al. 2022, [P]): 8 sensory electrodes, 4-40 Hz, ~75 mV
    biphasic pulses. `pulse_shape` and `pulse_phase_us` describe the pulse and are recorded with
    every session, but the simulated culture treats a pulse as one instantaneous kick scaled by
    the mV-equivalent amplitude (``dishbrain.culture``), so they do not change the simulation.
    """

    n_sensory: int = 8
    rate_min_hz: float = 4.0       # ball at the far wall
    rate_max_hz: float = 40.0      # ball at the paddle
    #: "linear": rate falls linearly with distance; "geometric": equal ratios per equal distance.
    rate_curve: str = "linear"
    #: Rates are rounded to rate_min_hz + k * rate_step_hz (0: continuous; see the module notes).
    rate_step_hz: float = 2.0
    amplitude_mv: float = 75.0
    pulse_shape: str = "biphasic"
    pulse_phase_us: float = 200.0  # width of each phase of a pulse
    #: The paddle's face in normalised court x: the ball there is "at the paddle" (max rate).
    paddle_face_x: float = DEFAULT_PADDLE_FACE_X

    def __post_init__(self) -> None:
        check_int(self, "n_sensory", self.n_sensory, lo=1)
        check_number(self, "rate_min_hz", self.rate_min_hz, lo=0.0, lo_open=True)
        check_number(self, "rate_max_hz", self.rate_max_hz, lo=0.0, lo_open=True)
        if self.rate_max_hz < self.rate_min_hz:
            raise ValueError(f"EncoderConfig.rate_max_hz must be >= rate_min_hz "
                             f"({self.rate_min_hz}), got {self.rate_max_hz!r}")
        check_choice(self, "rate_curve", self.rate_curve, RATE_CURVES)
        check_number(self, "rate_step_hz", self.rate_step_hz, lo=0.0)
        check_number(self, "amplitude_mv", self.amplitude_mv, lo=0.0, lo_open=True)
        check_choice(self, "pulse_shape", self.pulse_shape, PULSE_SHAPES)
        check_number(self, "pulse_phase_us", self.pulse_phase_us, lo=0.0, lo_open=True)
        check_number(self, "paddle_face_x", self.paddle_face_x, 0.0, 1.0, hi_open=True)


@dataclass(frozen=True)
class SensoryCommand:
    """What the sensory region should get now: pulses at `rate_hz` on sensory slot `slot`
    (0 = top band; `MEA.sensory[slot]` is the electrode), `amplitude_mv` each."""

    slot: int
    rate_hz: float
    amplitude_mv: float


class PlaceCodeEncoder:
    """The ball's height -> one of `n_sensory` equal bands of the court, top (0) to bottom.

    Band k covers normalised y in [k / n, (k + 1) / n); the bottom band also takes y = 1 (the
    bottom wall). Out-of-court values are clipped.
    """

    def __init__(self, n_sensory: int = 8):
        if not (isinstance(n_sensory, int) and n_sensory >= 1):
            raise ValueError(f"n_sensory must be a whole number >= 1, got {n_sensory!r}")
        self.n_sensory = n_sensory

    def slot(self, y: float) -> int:
        band = math.floor(float(y) * self.n_sensory)
        return min(max(band, 0), self.n_sensory - 1)

    def slots(self, y) -> np.ndarray:
        """`slot` of every normalised height in the array `y` (int array of its shape)."""
        band = np.floor(np.asarray(y, dtype=float) * self.n_sensory).astype(int)
        return np.clip(band, 0, self.n_sensory - 1)


class RateCodeEncoder:
    """The ball's horizontal distance from the paddle -> pulse rate.

    Distance d = (x - paddle_face_x) / (1 - paddle_face_x), clipped to [0, 1] (0 at the paddle's
    face and behind it, 1 at the far wall). "linear": rate = max - (max - min) * d; "geometric":
    rate = min * (max / min) ** (1 - d). Then rounded to the `rate_step_hz` grid from min.
    """

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        self.config = config

    def distance(self, x: float) -> float:
        face = self.config.paddle_face_x
        return min(max((float(x) - face) / (1.0 - face), 0.0), 1.0)

    def rate_hz(self, x: float) -> float:
        c = self.config
        d = self.distance(x)
        if c.rate_curve == "linear":
            rate = c.rate_max_hz - (c.rate_max_hz - c.rate_min_hz) * d
        else:
            rate = c.rate_min_hz * (c.rate_max_hz / c.rate_min_hz) ** (1.0 - d)
        if c.rate_step_hz > 0:
            steps = math.floor((rate - c.rate_min_hz) / c.rate_step_hz + 0.5)
            rate = c.rate_min_hz + steps * c.rate_step_hz
        return min(max(rate, c.rate_min_hz), c.rate_max_hz)


class DishBrainEncoder:
    """Place code + rate code on the sensory electrodes, from the env's observation vector.

    `encode(obs)` -> the command for this observation (None without a ball in play);
    `vector(obs)` -> the 8-electrode pattern, rate / rate_max_hz on the selected electrode;
    `apply(culture, obs)` delivers it to a `Culture`. State for viewers: `electrode` (the MEA
    electrode now stimulated, or None), `slot`, `rate_hz` (0.0 when none).
    """

    def __init__(self, config: EncoderConfig = EncoderConfig()):
        self.config = config
        self.place = PlaceCodeEncoder(config.n_sensory)
        self.rate = RateCodeEncoder(config)
        self.issued = 0  # trains issued so far (a cheap check that trains are not restarted)
        self.reset()

    # -- the code ----------------------------------------------------------------------------
    def encode(self, obs) -> SensoryCommand | None:
        if obs[OBS_IN_PLAY] < 0.5:
            return None
        return SensoryCommand(self.place.slot(obs[OBS_BALL_Y]), self.rate.rate_hz(obs[OBS_BALL_X]),
                              self.config.amplitude_mv)

    def vector(self, obs) -> np.ndarray:
        out = np.zeros(self.config.n_sensory, dtype=np.float32)
        cmd = self.encode(obs)
        if cmd is not None:
            out[cmd.slot] = cmd.rate_hz / self.config.rate_max_hz
        return out

    # -- delivery ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the delivered train (a new session, or a culture whose stimulation was reset)."""
        self._current: SensoryCommand | None = None
        self._electrode: int | None = None
        self._t0_ms = 0.0

    @property
    def current(self) -> SensoryCommand | None:
        return self._current

    @property
    def electrode(self) -> int | None:
        return self._electrode

    @property
    def slot(self) -> int | None:
        return None if self._current is None else self._current.slot

    @property
    def rate_hz(self) -> float:
        return 0.0 if self._current is None else self._current.rate_hz

    def _sensory_electrodes(self, culture) -> tuple[int, ...]:
        sensory = tuple(culture.mea.sensory)
        if len(sensory) != self.config.n_sensory:
            raise ValueError(f"EncoderConfig.n_sensory is {self.config.n_sensory} but the MEA has "
                             f"{len(sensory)} sensory electrodes")
        return sensory

    def _next_pulse_ms(self, now_ms: float) -> float:
        period = 1000.0 / self._current.rate_hz
        k = math.ceil((now_ms - self._t0_ms) / period - 1e-9)
        return self._t0_ms + max(k, 0) * period

    def _issue(self, culture, cmd: SensoryCommand, now_ms: float) -> None:
        electrode = self._sensory_electrodes(culture)[cmd.slot]
        if self._electrode is not None and self._electrode != electrode:
            culture.stop_stimulation([self._electrode])
        culture.stimulate([electrode], cmd.amplitude_mv, cmd.rate_hz, ONGOING_MS,
                          random_timing=False)
        self._current, self._electrode, self._t0_ms = cmd, electrode, now_ms
        self.issued += 1

    def apply(self, culture, obs, tick_ms: float = 10.0) -> SensoryCommand | None:
        """Deliver the code for `obs` to `culture` during the next `tick_ms`; returns what plays.

        A new train starts at once; a change of band or rate waits for the running train's next
        pulse, if that falls within this tick (else the old train plays on); no ball in play
        stops the train.
        """
        cmd = self.encode(obs)
        if cmd is None:
            self.stop(culture)
            return None
        now = float(culture.t_ms)
        if self._current is None:
            self._issue(culture, cmd, now)
        elif cmd != self._current and self._next_pulse_ms(now) < now + tick_ms - 1e-9:
            self._issue(culture, cmd, now)
        return self._current

    def stop(self, culture) -> None:
        """Stop the sensory train (no ball in play, or feedback takes the sensory electrodes)."""
        if self._electrode is not None:
            culture.stop_stimulation([self._electrode])
        self._current, self._electrode = None, None

    def state(self) -> dict[str, Any]:
        """What is being delivered, for viewers and logs."""
        return {"electrode": self._electrode, "slot": self.slot, "rate_hz": self.rate_hz}
