"""DishBrain Pong as a CL app: written only against Cortical Labs' CL API (cl-sdk), no dishbrain.

The closed loop of DishBrain (Kagan et al. 2022, Neuron 110:3952) in ``neurons.loop`` at 100
ticks/s (one game step of 10 ms per tick):

- the game: DishBrain's Pong (600 x 600 court, 250-unit paddle on the left, the far wall always
  returns the ball, 4 s without a ball after a miss);
- sensory input: a place code (the ball's height picks one of 8 sensory channels) and a rate code
  (4 Hz with the ball at the far wall to 40 Hz at the paddle), delivered as BurstDesign trains
  of biphasic pulses (1.5 uA, 200 us per phase);
- motor readout: spikes in 4 motor regions (two push the paddle up, two down), each region's count
  normalised against its own running mean and sd; the summed difference moves the paddle;
- feedback: after a hit, a predictable 100 Hz burst for 100 ms on all sensory channels; after a
  miss, unpredictable pulses (3 uA) at random times and channels for 4 s.

It writes a session log (dishbrain's JSON-lines format: header, serve / hit / miss events, end)
that ``dishbrain analyze LOG`` reads. Run it on any CL data source::

    CL_SDK_ACCELERATED_TIME=1 python examples/cl_pong.py --minutes 2 --log runs/cl-pong.jsonl
    # a simulated culture that answers:      CL_SDK_DATA_SOURCE=dishbrain.cl:culture_source
    # cl-sdk's stock simulator (random spikes): no CL_SDK_DATA_SOURCE
    # a CL1: the same file
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import cl
import numpy as np
from cl import BurstDesign, ChannelSet, StimDesign

TICKS_PER_SECOND = 100
TICK_S = 1.0 / TICKS_PER_SECOND

# The game (DishBrain's engine; court units, y grows downward).
COURT_W, COURT_H = 600.0, 600.0
PADDLE_W, PADDLE_H = 10.0, 250.0
PADDLE_FRICTION, PADDLE_ACCEL = 0.1, 0.6
BALL_SPEED_X = 600.0 / 2.95          # crosses the court in 2.95 s
BALL_VY_MAX = 200.0
MISS_PAUSE_S = 4.0

# The array (CL1's 8 x 8 grid, channel = 8 * row + col).
SENSORY = (3, 12, 19, 28, 35, 44, 51, 60)          # one per row, over the central columns
_TL = (0, 1, 2, 8, 9, 10, 16, 17, 18, 24, 25, 26)
_TR = (5, 6, 7, 13, 14, 15, 21, 22, 23, 29, 30, 31)
_BL = (32, 33, 34, 40, 41, 42, 48, 49, 50, 56, 57, 58)
_BR = (37, 38, 39, 45, 46, 47, 53, 54, 55, 61, 62, 63)
MOTOR_UP, MOTOR_DOWN = (_TL, _BR), (_TR, _BL)      # DishBrain's diagonal layout

# Stimulation.
RATE_MIN_HZ, RATE_MAX_HZ, RATE_STEP_HZ = 4.0, 40.0, 2.0
SENSORY_PULSE = StimDesign(200, -1.5, 200, 1.5)
HIT_PULSE, HIT_BURST, HIT_S = StimDesign(200, -1.5, 200, 1.5), BurstDesign(10, 100), 0.1
MISS_PULSE, MISS_RATE_HZ = StimDesign(200, -3.0, 200, 3.0), 5.0                # over 4 s
TRAIN_S = 2.0                                      # length of one sensory BurstDesign train

# The readout.
BASELINE_TAU_S, BASELINE_FLOOR, DEAD_BAND = 10.0, 0.5, 0.5


class Pong:
    """DishBrain's Pong, one 10 ms step per call."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.paddle_y, self.paddle_v = COURT_H / 2, 0.0
        self.rally_hits = self.rallies = self.hits = self.misses = 0
        self.pause_left = 0.0
        self.serve()

    def serve(self) -> None:
        self.x, self.y = COURT_W / 2, COURT_H / 2
        self.vx, self.vy = BALL_SPEED_X, float(self.rng.uniform(-BALL_VY_MAX, BALL_VY_MAX))
        self.in_play, self.rally_hits = True, 0

    def step(self, movement: int) -> str:
        """movement: -1 up, 0 stay, +1 down; returns "hit", "miss", "serve" or "none"."""
        self.paddle_v = self.paddle_v * (1 - PADDLE_FRICTION) + movement * PADDLE_ACCEL
        self.paddle_y += self.paddle_v
        lo, hi = PADDLE_H / 2, COURT_H - PADDLE_H / 2
        if not lo <= self.paddle_y <= hi:
            self.paddle_y, self.paddle_v = min(max(self.paddle_y, lo), hi), 0.0
        if not self.in_play:
            self.pause_left -= TICK_S
            if self.pause_left <= 1e-9:
                self.serve()
                return "serve"
            return "none"
        x_prev = self.x
        self.x += self.vx * TICK_S
        self.y += self.vy * TICK_S
        if self.y < 0 or self.y > COURT_H:
            self.y, self.vy = (-self.y if self.y < 0 else 2 * COURT_H - self.y), -self.vy
        if self.x >= COURT_W:
            self.x, self.vx = 2 * COURT_W - self.x, -self.vx
        at_paddle = abs(self.y - self.paddle_y) <= PADDLE_H / 2
        if self.vx < 0 and x_prev > PADDLE_W >= self.x and at_paddle:
            self.x, self.vx = 2 * PADDLE_W - self.x, -self.vx
            self.rally_hits += 1
            self.hits += 1
            return "hit"
        if self.vx < 0 and self.x <= 0:
            self.misses += 1
            self.rallies += 1
            self.in_play, self.pause_left = False, MISS_PAUSE_S
            return "miss"
        return "none"


def sensory_command(game: Pong) -> tuple[int, float] | None:
    """(channel, rate): place code from the ball's height, rate code from its distance."""
    if not game.in_play:
        return None
    slot = min(max(math.floor(game.y / COURT_H * len(SENSORY)), 0), len(SENSORY) - 1)
    d = min(max((game.x - PADDLE_W) / (COURT_W - PADDLE_W), 0.0), 1.0)
    rate = RATE_MAX_HZ - (RATE_MAX_HZ - RATE_MIN_HZ) * d
    rate = RATE_MIN_HZ + math.floor((rate - RATE_MIN_HZ) / RATE_STEP_HZ + 0.5) * RATE_STEP_HZ
    return SENSORY[slot], rate


class Readout:
    """Region counts -> movement: per-region running z-scores, up minus down, a dead band."""

    def __init__(self):
        self.regions = [np.array(r) for r in MOTOR_UP + MOTOR_DOWN]
        self.sign = np.array([1.0] * len(MOTOR_UP) + [-1.0] * len(MOTOR_DOWN))
        self.alpha = 1 - math.exp(-TICK_S / BASELINE_TAU_S)
        self.mean = np.zeros(len(self.regions))
        self.var = np.zeros(len(self.regions))
        self.n = 0

    def movement(self, counts: np.ndarray) -> int:
        x = np.array([counts[r].sum() for r in self.regions], dtype=float)
        z = (x - self.mean) / np.maximum(np.sqrt(self.var), BASELINE_FLOOR)
        self.n += 1
        w = max(1.0 / self.n, self.alpha)
        delta = x - self.mean
        self.mean += w * delta
        self.var = (1 - w) * (self.var + w * delta * delta)
        d = float((self.sign * z).sum())
        return -1 if d > DEAD_BAND else (1 if d < -DEAD_BAND else 0)


class SessionLog:
    """dishbrain's session log: JSON lines, flushed as written."""

    def __init__(self, path: Path, header: dict):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "w", buffering=1, encoding="utf-8")
        self.rally = 0
        self.write({"kind": "header", **header,
                    "started": datetime.datetime.now().isoformat(timespec="seconds")})

    def write(self, record: dict) -> None:
        self.f.write(json.dumps(record, separators=(",", ":")) + "\n")

    def event(self, kind: str, step: int, game: Pong) -> None:
        self.write({"kind": kind, "t": round(step * TICK_S, 4), "step": step,
                    "rally": self.rally, "hits": game.rally_hits})
        if kind == "miss":
            self.rally += 1


class Loop:
    """The body of one loop tick: readout -> game step -> feedback -> sensory code."""

    def __init__(self, game: Pong, readout: Readout, log: SessionLog, rng: np.random.Generator):
        self.game, self.readout, self.log, self.rng = game, readout, log, rng
        self.neurons = None
        self.step = 0
        self.train = None            # (channel, rate, t0, end): the sensory train playing
        self.feedback_until = 0.0    # the sensory code pauses while feedback plays
        self.miss_until = -1.0

    def stop_train(self) -> None:
        if self.train is not None:
            self.neurons.interrupt(ChannelSet(self.train[0]))
            self.train = None

    def tick(self, tick) -> None:
        neurons, game = self.neurons, self.game
        counts = np.bincount([s.channel for s in tick.analysis.spikes], minlength=64)
        event = game.step(self.readout.movement(counts))
        self.step += 1
        now = self.step * TICK_S
        if event != "none":
            self.log.event(event, self.step, game)
        if event in ("hit", "miss"):
            self.stop_train()
        if event == "hit":
            neurons.stim(ChannelSet(*SENSORY), HIT_PULSE, HIT_BURST)
            self.feedback_until = now + HIT_S
        elif event == "miss":
            self.miss_until = now + MISS_PAUSE_S
        if now < self.miss_until:      # unpredictable pulses: random times and channels
            for ch in SENSORY:
                if self.rng.random() < MISS_RATE_HZ / len(SENSORY) * TICK_S:
                    neurons.stim(ch, MISS_PULSE)
            return
        cmd = None if now < self.feedback_until else sensory_command(game)
        if cmd is None:
            self.stop_train()
            return
        if self.train is not None:
            ch, rate, t0, end = self.train
            period = 1.0 / rate
            next_pulse = t0 + math.ceil((now - t0) / period - 1e-9) * period
            change = (ch, rate) != cmd and next_pulse < now + TICK_S - 1e-9
            if not change and now + TICK_S <= end + 1e-9:
                return                 # the train plays on
            self.stop_train()
        ch, rate = cmd
        count = max(1, int(round(rate * TRAIN_S)))
        neurons.stim(ChannelSet(ch), SENSORY_PULSE, BurstDesign(count, rate))
        self.train = (ch, rate, now, now + count / rate)


def first_read(neurons, frames: int, tries: int = 10):
    """The first read, retried: a simulator may take longer than cl-sdk's 30 s to start
    producing data (on a CL1 data flows at once)."""
    for attempt in range(tries):
        try:
            return neurons.read(frames, None)
        except TimeoutError:
            if attempt == tries - 1:
                raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="game time (default 20)")
    ap.add_argument("--seed", type=int, default=0, help="the game's and the feedback's seed")
    ap.add_argument("--log", default="runs/cl-pong.jsonl", help="session log to write")
    ap.add_argument("--max-restarts", type=int, default=20,
                    help="restart neurons.loop this often if it falls behind (TimeoutError)")
    args = ap.parse_args(argv)
    if not args.minutes > 0 or args.seed < 0:
        ap.error("--minutes must be > 0 and --seed >= 0")

    rng = np.random.default_rng(args.seed)
    game, readout = Pong(rng), Readout()
    n_ticks = int(round(args.minutes * 60 * TICKS_PER_SECOND))
    versions = {"python": platform.python_version()}
    for name in ("cl-sdk", "numpy"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    log = SessionLog(Path(args.log), {
        "agent": "cl_pong", "seed": args.seed, "condition": "stimulus",
        "tick_ms": 1000 * TICK_S, "steps_planned": n_ticks,
        "env_config": {"court_width": COURT_W, "court_height": COURT_H, "paddle_width": PADDLE_W,
                       "paddle_height": PADDLE_H, "paddle_friction": PADDLE_FRICTION,
                       "paddle_accel": PADDLE_ACCEL, "ball_speed_x": BALL_SPEED_X,
                       "ball_vy_max": BALL_VY_MAX, "tick_ms": 1000 * TICK_S,
                       "miss_pause_ms": 1000 * MISS_PAUSE_S, "serve_after_miss": True},
        "agent_config": {"app": "examples/cl_pong.py", "sensory": SENSORY,
                         "motor_up": MOTOR_UP, "motor_down": MOTOR_DOWN},
        "versions": versions})
    log.event("serve", 0, game)

    app = Loop(game, readout, log, rng)
    wall0 = time.perf_counter()
    restarts = 0
    with cl.open() as neurons:
        app.neurons = neurons
        first_read(neurons, 25_000)                       # 1 s before: the array settles
        while app.step < n_ticks:
            try:
                for tick in neurons.loop(TICKS_PER_SECOND, stop_after_ticks=n_ticks - app.step):
                    app.tick(tick)
            except TimeoutError as exc:   # the loop fell behind (a busy machine): go on
                restarts += 1
                if restarts > args.max_restarts:
                    raise
                print(f"cl_pong: loop restarted after {exc}", file=sys.stderr)
    step = app.step
    wall = time.perf_counter() - wall0
    log.write({"kind": "end", "t": round(step * TICK_S, 4), "step": step,
               "rallies": game.rallies, "hits": game.hits, "misses": game.misses,
               "wall_s": round(wall, 3), "stopped": step < n_ticks, "loop_restarts": restarts})
    log.f.close()
    print(f"{step * TICK_S / 60:.2f} game min in {wall:.1f} s wall "
          f"(x{step * TICK_S / wall:.1f} real time): {game.hits} hits, {game.misses} misses; "
          f"log {args.log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
