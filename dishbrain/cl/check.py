"""`dishbrain cl-check`: the evoked response of a culture measured through the CL API alone.

The protocol uses only what a CL app can use (``cl.open``, ``neurons.read``, ``neurons.stim``,
``DetectionResult.spikes`` / ``.stims``): for each repeat and each channel, wait ``gap_ms``, read
``window_ms`` (the "before" window), stimulate the channel with one biphasic pulse, read
``window_ms`` from the stim's timestamp (the "after" window), and count the spikes on the
stimulated channel and on its neighbours (the up to 8 channels around it on the 8 x 8 grid).
The same protocol runs on our culture (``dishbrain.cl:culture_source``) or on cl-sdk's stock
simulator (its random source, which does not answer stimulation). Accelerated time throughout.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

GRID = 8
FRAMES_PER_MS = 25
DEFAULT_CHANNELS = (18, 27, 36, 45)
SOURCES = ("culture", "stock")


def neighbours(channel: int) -> tuple[int, ...]:
    """The channels around ``channel`` on CL1's 8 x 8 grid (row-major numbering)."""
    r, c = divmod(channel, GRID)
    return tuple((r + dr) * GRID + (c + dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                 if (dr or dc) and 0 <= r + dr < GRID and 0 <= c + dc < GRID)


def first_read(neurons, frames: int, tries: int = 10):
    """The first read, retried: cl-sdk waits 30 s for data, and on a busy machine building the
    culture in the SDK's producer can take longer."""
    for attempt in range(tries):
        try:
            return neurons.read(frames, None)
        except TimeoutError:
            if attempt == tries - 1:
                raise


@dataclass
class ChannelResponse:
    channel: int
    stims: int
    own_before: int
    own_after: int
    near_before: int
    near_after: int
    first_latency_ms: list


def evoked_response(source: str = "culture", config: dict | None = None,
                    channels: Sequence[int] = DEFAULT_CHANNELS, repeats: int = 10,
                    current_ua: float = 1.0, phase_us: int = 160, window_ms: float = 50.0,
                    gap_ms: float = 500.0, settle_ms: float = 1000.0,
                    seed: int = 0) -> list[ChannelResponse]:
    """Run the protocol (module notes) and return one `ChannelResponse` per channel.

    ``config``: the culture source's config (``dishbrain.cl`` notes); ``seed`` also seeds the
    stock simulator (``CL_SDK_RANDOM_SEED``, replay offset 0).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    os.environ["CL_SDK_ACCELERATED_TIME"] = "1"
    os.environ["CL_SDK_VISUALISATION"] = "0"
    import cl
    from cl import ChannelSet, StimDesign

    if source == "culture":
        cl.sim.set_simulator_data_source("dishbrain.cl:culture_source",
                                         config={"seed": seed, **(config or {})})
    else:
        os.environ.pop("CL_SDK_DATA_SOURCE", None)
        os.environ["CL_SDK_RANDOM_SEED"] = str(seed)
        os.environ["CL_SDK_REPLAY_START_OFFSET"] = "0"
        cl.sim.clear_simulator_data_source()
    w = int(round(window_ms * FRAMES_PER_MS))
    design = StimDesign(phase_us, -current_ua, phase_us, current_ua)
    out = {ch: ChannelResponse(ch, 0, 0, 0, 0, 0, []) for ch in channels}
    try:
        with cl.open() as neurons:
            first_read(neurons, int(settle_ms * FRAMES_PER_MS))
            for _ in range(repeats):
                for ch in channels:
                    near = set(neighbours(ch))
                    neurons.read(int(gap_ms * FRAMES_PER_MS), None)
                    before = neurons.read(w, None, analysis=True)
                    neurons.stim(ChannelSet(ch), design)
                    after = neurons.read(w + 10, None, analysis=True)
                    stim_ts = next((s.timestamp for s in after.stims if s.channel == ch),
                                   after.start_timestamp)
                    res = out[ch]
                    res.stims += 1
                    lo = stim_ts - w
                    pre = [s for s in before.spikes if s.timestamp >= lo] + \
                          [s for s in after.spikes if s.timestamp < stim_ts]
                    post = [s for s in after.spikes if stim_ts <= s.timestamp < stim_ts + w]
                    res.own_before += sum(s.channel == ch for s in pre)
                    res.near_before += sum(s.channel in near for s in pre)
                    res.own_after += sum(s.channel == ch for s in post)
                    res.near_after += sum(s.channel in near for s in post)
                    first = [s.timestamp for s in post if s.channel == ch or s.channel in near]
                    if first:
                        res.first_latency_ms.append((min(first) - stim_ts) / FRAMES_PER_MS)
    finally:
        if source == "culture":
            cl.sim.clear_simulator_data_source()
    return [out[ch] for ch in channels]


def format_table(rows: list[ChannelResponse], title: str, window_ms: float = 50.0) -> str:
    """Spikes per stim in the window before and after, on the channel and its neighbours."""
    head = (f"{title}\n"
            f"{'channel':>7} {'stims':>5} | {'own before':>10} {'own after':>9} | "
            f"{'near before':>11} {'near after':>10} | {'first spike (ms)':>16}")
    lines = [head, "-" * len(head.splitlines()[1])]
    tot = ChannelResponse(-1, 0, 0, 0, 0, 0, [])
    for r in rows + [None]:
        if r is None:
            r, label = tot, "all"
        else:
            label = str(r.channel)
            tot.stims += r.stims
            tot.own_before += r.own_before
            tot.own_after += r.own_after
            tot.near_before += r.near_before
            tot.near_after += r.near_after
            tot.first_latency_ms += r.first_latency_ms
        n = max(r.stims, 1)
        lat = (f"{sorted(r.first_latency_ms)[len(r.first_latency_ms) // 2]:.1f} (median)"
               if r.first_latency_ms else "-")
        lines.append(f"{label:>7} {r.stims:>5} | {r.own_before / n:>10.2f} {r.own_after / n:>9.2f}"
                     f" | {r.near_before / n:>11.2f} {r.near_after / n:>10.2f} | {lat:>16}")
    lines.append(f"(spikes per stim in the {window_ms:g} ms before / after each pulse; near = the "
                 "up to 8 surrounding channels)")
    return "\n".join(lines)
