"""Sample efficiency: how much game time a player needs to reach a level of play.

Khajehnejad et al. 2025 (Cyborg and Bionic Systems 6:0336) asked how the sample efficiency of
deep RL compares with that of cultures: a culture plays one 20-minute session, an RL player may
learn for many sessions' worth of game time. For a compare run whose players play longer than
the reference player (``[compare] reference``, e.g. the culture), this module cuts every other
player's session into blocks of the reference's length ("sessions' worth"), takes the ARL of each
block (hits per rally; a rally counts in the block in which its miss fell; a block in which no
rally ended, inside one long rally, takes that rally's hits) per seed, and reads,
for each level,

- the first block whose ARL, averaged over seeds, reaches the level (the mean curve), and the
  first from which it stays there to the end of the session (a single block is noisy: rallies
  are heavy-tailed), and
- per seed, the first block that reaches it, and how many seeds reach it within the budget.

The levels: the reference player's own ARL in its last window (over its seeds; for the culture,
minutes 5-20 of its session, Kagan et al. 2022's late window) and, where the published values are
on this machine, the cultures' published ARL in minutes 5-20 (Kagan et al. 2022, Fig. 5: mouse
and human cortical cells). Pure numpy; `dishbrain.report` writes its table and figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from dishbrain.report.loading import RunData
from dishbrain.report.statistics import column_mean_sem

__all__ = ["Efficiency", "EfficiencyCurve", "first_block_reaching", "sample_efficiency"]

#: The published groups whose 5-20 ARL is a level (``PUBLISHED_GROUPS`` minus the in-silico one).
PUBLISHED_LEVELS = (("MCC", "mouse cortical cells"), ("HCC", "human cortical cells"))


def first_block_reaching(arl: np.ndarray, level: float) -> int | None:
    """The index of the first block whose ARL is >= level (NaN blocks never reach), or None."""
    hits = np.flatnonzero(np.nan_to_num(np.asarray(arl, dtype=float), nan=-np.inf) >= level)
    return int(hits[0]) if hits.size else None


@dataclass(frozen=True)
class EfficiencyCurve:
    """One player's ARL per block: per seed, and mean +- SEM over the seeds with a rally."""

    label: str
    block_starts_min: np.ndarray
    per_seed: dict[int, np.ndarray]

    @cached_property
    def _stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return column_mean_sem(np.vstack(list(self.per_seed.values())))

    @property
    def mean(self) -> np.ndarray:
        return self._stats[0]

    @property
    def sem(self) -> np.ndarray:
        return self._stats[1]

    @property
    def n(self) -> np.ndarray:
        return self._stats[2]

    def reach(self, level: float, block_min: float) -> dict:
        """Game minutes (end of the first block) until the mean curve reaches `level` (None: not
        within the session), until it reaches it for good (every later block too), and per
        seed: how many reach it and their median minutes."""
        mean = self.mean
        first = first_block_reaching(mean, level)
        above = np.nan_to_num(mean, nan=-np.inf) >= level
        # The first block from which the mean curve stays at or above the level to the end.
        below = np.flatnonzero(~above)
        stays = (0 if below.size == 0 else int(below[-1]) + 1) if above[-1] else None
        seeds = {s: first_block_reaching(a, level) for s, a in self.per_seed.items()}
        reached = [(b + 1) * block_min for b in seeds.values() if b is not None]
        return {"mean_min": None if first is None else (first + 1) * block_min,
                "stays_min": None if stays is None else (stays + 1) * block_min,
                "seeds_reaching": len(reached), "seeds": len(seeds),
                "median_min": float(np.median(reached)) if reached else None}


@dataclass(frozen=True)
class Efficiency:
    """What the report shows: the block length, the levels and the curves."""

    reference: str
    block_min: float
    #: (name, ARL) pairs, the reference player's first.
    levels: list[tuple[str, float]]
    curves: list[EfficiencyCurve] = field(default_factory=list)
    #: The reference player's own ARL per seed in its one block (its whole session).
    reference_curve: EfficiencyCurve | None = None


def sample_efficiency(data: RunData, published: dict | None) -> Efficiency | None:
    """The sample-efficiency comparison of a compare run, or None where it does not apply (an
    experiment, no reference, no player longer than the reference, no finished sessions)."""
    c = data.config
    if c.kind != "compare" or c.reference is None:
        return None
    ref = next(p for p in c.players if p.label == c.reference)
    block = float(ref.minutes)
    longer = [p for p in c.players if p.label != ref.label and p.minutes > block + 1e-9]
    if not longer:
        return None
    levels: list[tuple[str, float]] = []
    windows = [i for i, (_, hi) in enumerate(c.windows) if hi <= block + 1e-9]
    if windows:
        w = windows[-1]
        values = list(data.values(ref.label, w, "arl").values())
        if values:
            levels.append((f"{ref.label}, minutes {data.window_names[w]}",
                           float(np.mean(values))))
    for group, desc in PUBLISHED_LEVELS:
        r = (published or {}).get(("arl", group, "5-20"))
        if r is not None and math.isfinite(r["mean"]):
            levels.append((f"Kagan 2022 {group} ({desc}), minutes 5-20", float(r["mean"])))

    def curve(player) -> EfficiencyCurve | None:
        starts, per_seed = data.bin_arl(player.label, block, spanning=True)
        return EfficiencyCurve(player.label, starts, per_seed) if per_seed else None

    curves = [cv for cv in (curve(p) for p in longer) if cv is not None]
    if not curves:
        return None
    return Efficiency(ref.label, block, levels, curves, curve(ref))
