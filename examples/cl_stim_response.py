"""Evoked responses, written only against Cortical Labs' CL API (cl-sdk), no dishbrain.

Stimulates each of a few channels with one biphasic pulse at a time, counts the spikes on every
channel in the 50 ms after each pulse (and, for comparison, the 50 ms before it), and prints a
table: the stimulated channel, its neighbours on the 8 x 8 grid, and the rest of the array.

    CL_SDK_ACCELERATED_TIME=1 python examples/cl_stim_response.py
    # on a simulated culture that answers:  CL_SDK_DATA_SOURCE=dishbrain.cl:culture_source
    # on cl-sdk's stock simulator (random spikes, no response): leave CL_SDK_DATA_SOURCE unset
"""

from __future__ import annotations

import argparse
import sys

import cl
import numpy as np
from cl import ChannelSet, StimDesign

FRAMES_PER_MS = 25
GRID = 8


def neighbours(channel: int) -> list[int]:
    r, c = divmod(channel, GRID)
    return [(r + dr) * GRID + c + dc for dr in (-1, 0, 1) for dc in (-1, 0, 1)
            if (dr or dc) and 0 <= r + dr < GRID and 0 <= c + dc < GRID]


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
    ap.add_argument("--channels", type=int, nargs="+", default=[18, 27, 36, 45])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--current-ua", type=float, default=1.0)
    ap.add_argument("--phase-us", type=int, default=160)
    ap.add_argument("--window-ms", type=float, default=50.0)
    ap.add_argument("--gap-ms", type=float, default=500.0, help="quiet time before each pulse")
    args = ap.parse_args(argv)
    if any(not 0 <= c < 64 for c in args.channels) or args.repeats < 1:
        ap.error("--channels must be in [0, 63] and --repeats >= 1")

    w = int(args.window_ms * FRAMES_PER_MS)
    design = StimDesign(args.phase_us, -args.current_ua, args.phase_us, args.current_ua)
    after = {ch: np.zeros(64) for ch in args.channels}
    before = {ch: np.zeros(64) for ch in args.channels}
    with cl.open() as neurons:
        first_read(neurons, 25_000)                       # 1 s before: the array settles
        for _ in range(args.repeats):
            for ch in args.channels:
                neurons.read(int(args.gap_ms * FRAMES_PER_MS), None)
                pre = neurons.read(w, None, analysis=True)
                neurons.stim(ChannelSet(ch), design)
                post = neurons.read(w + 10, None, analysis=True)
                t0 = next((s.timestamp for s in post.stims if s.channel == ch),
                          post.start_timestamp)
                for s in pre.spikes:
                    if s.timestamp >= t0 - w:
                        before[ch][s.channel] += 1
                for s in post.spikes:
                    if s.timestamp < t0:
                        before[ch][s.channel] += 1
                    elif s.timestamp < t0 + w:
                        after[ch][s.channel] += 1

    n = args.repeats
    print(f"spikes per pulse ({args.current_ua:g} uA x {args.phase_us} us biphasic, "
          f"{n} pulses per channel), {args.window_ms:g} ms after / before")
    print(f"{'channel':>7} | {'on it':>13} | {'neighbours':>13} | {'rest of array':>13}")
    for ch in args.channels:
        near = neighbours(ch)
        rest = [c for c in range(64) if c != ch and c not in near]
        cells = [f"{after[ch][idx].sum() / n:5.2f} / {before[ch][idx].sum() / n:5.2f}"
                 for idx in ([ch], near, rest)]
        print(f"{ch:>7} | {cells[0]:>13} | {cells[1]:>13} | {cells[2]:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
