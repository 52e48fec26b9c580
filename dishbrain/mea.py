"""The virtual multi-electrode array (MEA) under the culture, and its sensory and motor regions.

Geometry
--------
A ``rows x cols`` grid of electrodes at ``pitch_um`` spacing; the default 8 x 8 grid at 200 um is
the layout of Cortical Labs' CL1 (and of the classic 60-electrode Multichannel Systems arrays that
cultured-network work such as Wagenaar et al. 2006 used, without their missing corners).
Electrode ``k`` sits at row ``k // cols``, column ``k % cols``; its position is
``(x, y) = (col * pitch_um, row * pitch_um)`` with y growing downward, like the court's y. Neurons
are scattered uniformly over the dish: the grid's bounding box widened by ``dish_margin_um``.

Stimulation and recording
-------------------------
- Stimulation: an electrode's pulse reaches every neuron within ``stim_radius_um`` with a coupling
  that falls off with distance as ``1 / (1 + (d / stim_half_distance_um)**2)``. The inverse-square
  fall-off is the classic current-distance relation of extracellular microstimulation: the
  threshold current grows with the square of the distance from the electrode tip (Stoney, Thompson
  & Asanuma 1968, J Neurophysiol 31:659; reviewed by Tehovnik 1996, J Neurosci Methods 65:1).
  ``stim_half_distance_um`` (coupling 0.5) absorbs the electrode's own size (tens of um).
- Recording: an electrode records every spike of every neuron within ``record_radius_um``
  (extracellular units are detectable out to ~50-100 um: Buzsaki 2004, Nat Neurosci 7:446).

Regions
-------
- ``MEA.sensory``: 8 electrodes, one per row band, ordered top to bottom, in the two central
  columns (staggered: even k in the left-central column, odd k in the right-central one). Sensory
  electrode k encodes the k-th vertical band of the court (ball y grows downward).
- Motor regions: the four quadrant blocks around the sensory columns (``top_left``,
  ``top_right``, ``bottom_left``, ``bottom_right``). A ``MotorLayout`` names which two regions
  move the paddle up and which two move it down. Layouts are data (``MOTOR_LAYOUTS``); the
  DishBrain pilot session switched layout after misses, so several exist. ``"dishbrain"`` pairs
  the regions diagonally (one "up" and one "down" region on each side of the dish), the quadrant
  arrangement of Kagan et al. 2022 (Fig. 1) [P]. ``MEAConfig.motor_gap_cols`` leaves columns
  next to the sensory ones out of the quadrants, so that no motor electrode records neurons a
  sensory pulse reaches directly (docs/learning.md, entry 7).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import scipy.sparse as sp

from envs.config import Config, check_int, check_number

# Named motor layouts, in terms of the quadrant regions (see ``MEA.regions``). Each value maps
# "up"/"down" to the names of the regions whose activity pushes the paddle that way.
MOTOR_LAYOUTS: Mapping[str, Mapping[str, tuple[str, ...]]] = MappingProxyType({
    # Kagan et al. 2022 quadrant layout [P]: diagonal pairs, so a left/right bias cancels.
    "dishbrain": {"up": ("top_left", "bottom_right"), "down": ("top_right", "bottom_left")},
    # The same quadrants with the roles swapped (a layout switch after a miss).
    "dishbrain_swapped": {"up": ("top_right", "bottom_left"), "down": ("top_left", "bottom_right")},
    # Topographic: the top half of the dish moves the paddle up.
    "vertical": {"up": ("top_left", "top_right"), "down": ("bottom_left", "bottom_right")},
    # Topographic, mirrored top-to-bottom.
    "vertical_mirrored": {"up": ("bottom_left", "bottom_right"), "down": ("top_left", "top_right")},
    # Left half up, right half down, and its mirror image.
    "horizontal": {"up": ("top_left", "bottom_left"), "down": ("top_right", "bottom_right")},
    "horizontal_mirrored": {"up": ("top_right", "bottom_right"),
                            "down": ("top_left", "bottom_left")},
})
DEFAULT_MOTOR_LAYOUT = "dishbrain"
REGION_NAMES = ("top_left", "top_right", "bottom_left", "bottom_right")


@dataclass(frozen=True)
class MEAConfig(Config):
    """Geometry of the electrode grid and how electrodes couple to neurons (all lengths in um)."""

    rows: int = 8
    cols: int = 8
    # CL1 / MCS-style 200 um pitch.
    pitch_um: float = 200.0
    # Neurons are placed uniformly in the grid's bounding box widened by this margin on each side.
    dish_margin_um: float = 200.0
    # Pulses reach neurons out to this distance (coupling at the default: 0.04, i.e. negligible).
    stim_radius_um: float = 250.0
    # Distance at which the stimulation coupling has fallen to 0.5 (inverse-square fall-off).
    stim_half_distance_um: float = 50.0
    # Spikes of neurons within this distance are recorded (Buzsaki 2004: ~50-100 um).
    record_radius_um: float = 100.0
    # Number of sensory electrodes (DishBrain: 8, one per vertical band of the court).
    n_sensory: int = 8
    # Columns next to the sensory columns left out of the motor regions, on each side (0: the
    # motor quadrants start at the sensory columns' neighbours). With 1 on the default grid the
    # motor electrodes sit >= 400 um from every sensory electrode, beyond the stimulation's
    # reach, so the motor regions see the stimulation only through the network.
    motor_gap_cols: int = 0

    def __post_init__(self) -> None:
        check_int(self, "rows", self.rows, 4, 64, numpy=True)
        check_int(self, "cols", self.cols, 4, 64, numpy=True)
        check_number(self, "pitch_um", self.pitch_um, 10.0, 5000.0, numpy=True)
        check_number(self, "dish_margin_um", self.dish_margin_um, 0.0, 10000.0, numpy=True)
        check_number(self, "stim_radius_um", self.stim_radius_um, 1.0, 5000.0, numpy=True)
        check_number(self, "stim_half_distance_um", self.stim_half_distance_um, 1.0, 5000.0,
                     numpy=True)
        check_number(self, "record_radius_um", self.record_radius_um, 1.0, 5000.0, numpy=True)
        check_int(self, "n_sensory", self.n_sensory, 1, 2 * self.rows, numpy=True)
        check_int(self, "motor_gap_cols", self.motor_gap_cols, 0, self.cols // 2 - 2, numpy=True)


@dataclass(frozen=True)
class MotorLayout:
    """Which electrode regions drive the paddle up and which drive it down.

    ``up`` and ``down`` are tuples of regions; a region is a tuple of electrode indices.
    """

    name: str
    up: tuple[tuple[int, ...], ...]
    down: tuple[tuple[int, ...], ...]

    @property
    def up_electrodes(self) -> tuple[int, ...]:
        return tuple(e for region in self.up for e in region)

    @property
    def down_electrodes(self) -> tuple[int, ...]:
        return tuple(e for region in self.down for e in region)


class MEA:
    """A virtual MEA: electrode positions, named regions and neuron coupling matrices.

    Arguments
    ---------
    config: the grid geometry and coupling radii (``MEAConfig``).
    layouts: named motor layouts, region names per direction (default ``MOTOR_LAYOUTS``).
    """

    def __init__(self, config: MEAConfig = MEAConfig(),
                 layouts: Mapping[str, Mapping[str, tuple[str, ...]]] = MOTOR_LAYOUTS) -> None:
        self.config = config
        rows, cols, pitch = config.rows, config.cols, config.pitch_um
        r, c = np.divmod(np.arange(rows * cols), cols)
        self.positions_um = np.column_stack([c * pitch, r * pitch]).astype(np.float64)
        self.positions_um.setflags(write=False)

        # Sensory: one electrode per row band, top to bottom, staggered over the central columns.
        left_c, right_c = cols // 2 - 1, cols // 2
        sensory = []
        for k in range(config.n_sensory):
            row = min(rows - 1, int((k + 0.5) * rows / config.n_sensory))
            sensory.append(row * cols + (left_c if k % 2 == 0 else right_c))
        if len(set(sensory)) != len(sensory):
            raise ValueError(f"MEAConfig.n_sensory={config.n_sensory} does not fit {rows} rows "
                             "with distinct electrodes (allowed: at most 2 per row)")
        self.sensory: tuple[int, ...] = tuple(sensory)

        top, bottom = r < rows // 2, r >= rows // 2
        gap = config.motor_gap_cols
        left, right = c < left_c - gap, c > right_c + gap
        self.regions: Mapping[str, tuple[int, ...]] = MappingProxyType({
            "top_left": tuple(np.flatnonzero(top & left).tolist()),
            "top_right": tuple(np.flatnonzero(top & right).tolist()),
            "bottom_left": tuple(np.flatnonzero(bottom & left).tolist()),
            "bottom_right": tuple(np.flatnonzero(bottom & right).tolist()),
        })
        self._layouts: dict[str, MotorLayout] = {}
        for name, spec in layouts.items():
            unknown = set(spec.get("up", ())) | set(spec.get("down", ()))
            unknown -= set(self.regions)
            if unknown or not spec.get("up") or not spec.get("down"):
                raise ValueError(f"motor layout {name!r} must name regions from {REGION_NAMES} "
                                 f"under 'up' and 'down', got {dict(spec)!r}")
            self._layouts[name] = MotorLayout(
                name=name,
                up=tuple(self.regions[g] for g in spec["up"]),
                down=tuple(self.regions[g] for g in spec["down"]))

    # -- geometry -------------------------------------------------------------------------------
    @property
    def n_electrodes(self) -> int:
        return self.config.rows * self.config.cols

    @property
    def dish_bounds_um(self) -> tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) of the area over which neurons are scattered."""
        m = self.config.dish_margin_um
        return (-m, (self.config.cols - 1) * self.config.pitch_um + m,
                -m, (self.config.rows - 1) * self.config.pitch_um + m)

    def place_neurons(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Uniform random positions (n, 2) in um over the dish."""
        x0, x1, y0, y1 = self.dish_bounds_um
        return np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])

    # -- regions --------------------------------------------------------------------------------
    @property
    def layout_names(self) -> tuple[str, ...]:
        return tuple(self._layouts)

    def motor_layout(self, name: str = DEFAULT_MOTOR_LAYOUT) -> MotorLayout:
        try:
            return self._layouts[name]
        except KeyError:
            raise KeyError(f"unknown motor layout {name!r}; known: {self.layout_names}") from None

    # -- coupling -------------------------------------------------------------------------------
    def _pairs_within(self, neuron_positions_um: np.ndarray, radius_um: float):
        """(electrode, neuron, distance) for every pair closer than radius_um."""
        pos = np.asarray(neuron_positions_um, dtype=np.float64)
        if pos.ndim != 2 or pos.shape[1] != 2:
            raise ValueError(f"neuron positions must have shape (n, 2), got {pos.shape}")
        e_idx, n_idx, dist = [], [], []
        # Chunk over neurons to keep memory bounded for large cultures.
        for start in range(0, len(pos), 4096):
            block = pos[start:start + 4096]
            d = np.hypot(self.positions_um[:, None, 0] - block[None, :, 0],
                         self.positions_um[:, None, 1] - block[None, :, 1])
            e, n = np.nonzero(d <= radius_um)
            e_idx.append(e)
            n_idx.append(n + start)
            dist.append(d[e, n])
        return np.concatenate(e_idx), np.concatenate(n_idx), np.concatenate(dist)

    def stimulation_matrix(self, neuron_positions_um: np.ndarray) -> sp.csr_matrix:
        """Coupling (n_electrodes, n_neurons), float64 in (0, 1]: 1 / (1 + (d / d_half)**2)."""
        e, n, d = self._pairs_within(neuron_positions_um, self.config.stim_radius_um)
        w = 1.0 / (1.0 + (d / self.config.stim_half_distance_um) ** 2)
        return sp.csr_matrix((w, (e, n)), shape=(self.n_electrodes, len(neuron_positions_um)))

    def recording_matrix(self, neuron_positions_um: np.ndarray) -> sp.csr_matrix:
        """Binary (n_electrodes, n_neurons) int64: 1 where the electrode records the neuron."""
        e, n, _ = self._pairs_within(neuron_positions_um, self.config.record_radius_um)
        return sp.csr_matrix((np.ones(len(e), dtype=np.int64), (e, n)),
                             shape=(self.n_electrodes, len(neuron_positions_um)))

    def __repr__(self) -> str:
        c = self.config
        return f"MEA({c.rows}x{c.cols}, pitch {c.pitch_um:g} um, sensory {self.sensory})"
