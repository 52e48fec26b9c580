"""The viewer's colours and the raster's 8-bit palette (the court's own: envs.rendering)."""

from __future__ import annotations

import numpy as np

from dishbrain.logs import EV_BOUNCE, EV_HIT, EV_MISS, EV_SERVE

PANEL = (20, 24, 32)
EDGE = (48, 56, 72)
DIM = (120, 128, 145)
UP = (70, 210, 120)
DOWN = (225, 100, 225)
SENSORY = (255, 200, 50)
PREDICTABLE = (70, 170, 255)
UNPREDICTABLE = (255, 70, 55)
HIT = (90, 230, 120)
MISS = (255, 70, 55)
ELECTRODE = (60, 68, 86)
STIM_FILL = (255, 230, 50)   # the stimulated sensory electrode at 40 Hz ...
STIM_LOW = (205, 135, 25)    # ... and at 4 Hz
STIM_DIM = (90, 75, 25)
_ELECTRODE_OFF = np.array((52, 60, 78), dtype=np.float32)
_ELECTRODE_ON = np.array((150, 215, 255), dtype=np.float32)
ARL_LINE = (255, 200, 90)

# Raster colour map: spikes per tick -> colour (0 dark, 1 red, 2 orange, >= 4 yellow-white).
_RASTER_LUT = np.zeros((256, 3), dtype=np.uint8)
_RASTER_LUT[0] = PANEL
_RASTER_LUT[1] = (150, 40, 30)
_RASTER_LUT[2] = (230, 90, 30)
_RASTER_LUT[3] = (255, 170, 40)
_RASTER_LUT[4:] = (255, 240, 170)
_SERVE_MARK = (120, 120, 140)
# The raster's 8-bit palette: spike counts 0-4+, the stimulation tint, event marks (by event
# code), row roles (other, sensory, up, down).
_PAL_SPIKES_MAX, _PAL_STIM, _PAL_EVENT, _PAL_ROLE = 4, 5, 8, 16
_RASTER_PALETTE = np.zeros((256, 3), dtype=np.uint8)
_RASTER_PALETTE[:] = PANEL
_RASTER_PALETTE[:5] = _RASTER_LUT[:5]
_RASTER_PALETTE[_PAL_STIM] = STIM_DIM
_RASTER_PALETTE[_PAL_EVENT + EV_SERVE] = _SERVE_MARK
_RASTER_PALETTE[_PAL_EVENT + EV_HIT] = HIT
_RASTER_PALETTE[_PAL_EVENT + EV_MISS] = MISS
_RASTER_PALETTE[_PAL_EVENT + EV_BOUNCE] = (80, 80, 95)
_RASTER_PALETTE[_PAL_ROLE:_PAL_ROLE + 4] = (EDGE, SENSORY, UP, DOWN)


def gif_palette() -> np.ndarray:
    """The recordings' fixed 255 colours (a GIF has at most 256; one more is kept for pixels that
    did not change): a 6x6x6 cube, dark blue-greys for the panels, the viewer's own colours. One
    palette for every frame keeps flat colours exact and lets each frame store only what
    changed."""
    from envs.rendering import BACKGROUND, BALL, LINES, PADDLE, TEXT

    levels = np.array([0, 51, 102, 153, 204, 255])
    cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    ramp = [(int(12 + 9 * k), int(14 + 10 * k), int(20 + 12 * k)) for k in range(14)]
    own = [BACKGROUND, PANEL, EDGE, DIM, TEXT, LINES, PADDLE, BALL, UP, DOWN, SENSORY,
           PREDICTABLE, UNPREDICTABLE, HIT, ARL_LINE, ELECTRODE, STIM_FILL, STIM_LOW, STIM_DIM,
           tuple(_ELECTRODE_OFF.astype(int)), tuple(_ELECTRODE_ON.astype(int)),
           *(tuple(int(c) for c in _RASTER_LUT[k]) for k in (1, 2, 3, 4)), (235, 240, 255)]
    pal = np.concatenate([cube, np.array(ramp), np.array(own)]).astype(np.int64)
    return np.unique(pal, axis=0)[:255].astype(np.uint8)
