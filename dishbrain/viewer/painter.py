"""Drawing a ViewModel: the court, the MEA panel, the scrolling raster, the figures and the
ARL curve, laid out in fixed rects (``_layout``); one picture, drawn the same way live, when
recording and in replays.

- the Pong court (``envs.rendering.draw_court``);
- for a culture, the virtual MEA beside it (Kagan et al. 2022, Fig. 1: 8 sensory electrodes, 4
  motor regions): the stimulated sensory electrode lit, brighter and pulsing faster as the rate
  code rises from 4 to 40 Hz; the motor regions shaded by their recent activity, "up" regions
  green and "down" regions magenta; feedback as a coloured border and banner, blue for the
  predictable stimulation after a hit, red for the unpredictable one after a miss;
- a scrolling raster of the last few seconds of activity (spikes per electrode per 10 ms tick;
  rows: sensory, up, down, then the other electrodes; the stimulated sensory row tinted; event
  marks on top);
- live figures (player, condition, time, current rally, ARL, aces %, long rallies %, the
  published metrics of Kagan et al. 2022, Fig. 5) and a small ARL-per-minute curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dishbrain.logs import EV_HIT, EV_MISS
from dishbrain.viewer.model import CURVE_MINUTES, RASTER_S, ArrayLayout, ViewModel
from dishbrain.viewer.style import (
    _ELECTRODE_OFF,
    _ELECTRODE_ON,
    _PAL_EVENT,
    _PAL_ROLE,
    _PAL_SPIKES_MAX,
    _PAL_STIM,
    _RASTER_LUT,
    _RASTER_PALETTE,
    _SERVE_MARK,
    ARL_LINE,
    DIM,
    DOWN,
    EDGE,
    HIT,
    MISS,
    PANEL,
    PREDICTABLE,
    SENSORY,
    STIM_DIM,
    STIM_FILL,
    STIM_LOW,
    UNPREDICTABLE,
    UP,
)
from envs.rendering import BACKGROUND, TEXT, draw_court, import_pygame

#: The rate code's range (Kagan et al. 2022: 4 Hz far from the paddle to 40 Hz near it).
RATE_MIN_HZ, RATE_MAX_HZ = 4.0, 40.0


def speed_label(speed: float) -> str:
    return "max" if speed == 0 else f"{speed:g}x"


@dataclass(frozen=True)
class _Rects:
    size: tuple[int, int]
    title: tuple[int, int, int, int]
    court: tuple[int, int, int, int]
    figures: tuple[int, int, int, int]
    curve: tuple[int, int, int, int]
    status: tuple[int, int, int, int]
    mea: tuple[int, int, int, int] | None = None
    raster: tuple[int, int, int, int] | None = None


def _layout(with_array: bool, court_px: int = 400) -> _Rects:
    m = 12
    top = 40
    court = (m, top, court_px, court_px)
    below = top + court_px + 10
    if with_array:
        mea = (court[0] + court_px + m, top, 260, 260)
        figures = (mea[0] + mea[2] + m, top, 252, 260)
        raster = (mea[0], top + 260 + 10, figures[0] + figures[2] - mea[0], court_px - 270)
        curve = (m, below, court_px, 544 - below - m)
        status = (mea[0], below, raster[2], 544 - below - m)
        width = figures[0] + figures[2] + m
    else:
        mea = raster = None
        figures = (court[0] + court_px + m, top, 260, 250)
        curve = (figures[0], top + 260, 260, court_px - 260)
        status = (m, below, figures[0] + figures[2] - m, 544 - below - m)
        width = figures[0] + figures[2] + m
    width = (width + 15) // 16 * 16  # video codecs want sizes that are multiples of 16
    return _Rects((width, 544), (0, 0, width, top - 8), court, figures, curve, status, mea, raster)


class Painter:
    """Draws a ViewModel onto a pygame surface: ``paint(surface, model, speed, paused)``.

    Text is cached (bounded), the static frame is pre-drawn once, and the raster is one
    small surface scaled into place, so a frame costs about a millisecond or two.
    """

    def __init__(self, config, array: ArrayLayout | None, title: str = "DishBrain"):
        pygame = import_pygame()
        if not pygame.font.get_init():
            pygame.font.init()
        self.config = config
        self.array = array
        self.title = title
        self.rects = _layout(array is not None)
        self.size = self.rects.size
        self.font = pygame.font.Font(None, 22)
        self.small = pygame.font.Font(None, 18)
        self.big = pygame.font.Font(None, 30)
        self._text_cache: dict[tuple, Any] = {}
        self._background = self._draw_background()
        self._curve_key = None
        self._curve_surface = None
        if array is not None:
            self._electrode_xy, self._electrode_r = self._electrode_geometry()
            self._raster_small = pygame.Surface((1, 1))
            self.set_array(array)

    def set_array(self, array: ArrayLayout) -> None:
        """A new layout of the same electrodes (the motor layout switched)."""
        self.array = array
        roles = array.row_roles()
        self._row_role_index = np.full(len(roles), _PAL_ROLE, dtype=np.uint8)
        for k, colour in enumerate((SENSORY, UP, DOWN)):
            self._row_role_index[(roles == colour).all(axis=1)] = _PAL_ROLE + 1 + k
        self._slot_rows = None
        if array.sensory and not array.grouped:
            row_of = np.empty(array.n, dtype=np.int64)
            row_of[array.raster_order] = np.arange(array.n)
            self._slot_rows = row_of[list(array.sensory)]

    # -- helpers ----------------------------------------------------------------------------
    def text(self, s: str, colour=TEXT, font=None):
        font = font or self.font
        key = (s, colour, id(font))
        surf = self._text_cache.get(key)
        if surf is None:
            if len(self._text_cache) > 512:
                self._text_cache.clear()
            surf = self._text_cache[key] = font.render(s, True, colour)
        return surf

    def fit(self, s: str, width: int, colour=TEXT, font=None):
        """``text`` cut (with an ellipsis) to at most ``width`` pixels."""
        font = font or self.font
        surf = self.text(s, colour, font)
        if surf.get_width() <= width:
            return surf
        lo, hi = 0, len(s)
        while lo < hi:  # the longest prefix that fits
            mid = (lo + hi + 1) // 2
            if font.size(s[:mid] + "...")[0] <= width:
                lo = mid
            else:
                hi = mid - 1
        return self.text(s[:lo].rstrip() + "...", colour, font)

    def _draw_background(self):
        pygame = import_pygame()
        bg = pygame.Surface(self.size)
        bg.fill(BACKGROUND)
        r = self.rects
        panels = [r.figures, r.curve] + [x for x in (r.mea, r.raster) if x is not None]
        for rect in panels:
            pygame.draw.rect(bg, PANEL, rect, border_radius=4)
            pygame.draw.rect(bg, EDGE, rect, width=1, border_radius=4)
        x, y, w, h = r.curve
        bg.blit(self.text("ARL per minute", DIM, self.small), (x + 8, y + 6))
        if r.raster is not None:
            x, y, w, h = r.raster
            a = self.array
            if a.grouped:
                rows = f"rows: groups of ~{a.n // a.raster_rows} channels"
            elif a.sensory or a.motor_up:
                rows = "rows: sensory, up, down, other electrodes"
            else:
                rows = "rows: electrodes"
            bg.blit(self.text(f"spikes, last {RASTER_S:g} s ({rows})", DIM, self.small),
                    (x + 8, y + 5))
        if r.mea is not None:
            x, y, w, h = r.mea
            legend = []
            if self.array.sensory:
                legend.append(("sensory", SENSORY))
            if self.array.motor_up or self.array.motor_down:
                legend += [("up", UP), ("down", DOWN)]
            width = sum(self.small.size(label)[0] + 10 for label, _ in legend)
            bg.blit(self.fit(self.array.name, w - 16 - width, DIM, self.small), (x + 8, y + 5))
            lx = x + w - 8
            for label, colour in reversed(legend):
                surf = self.text(label, colour, self.small)
                lx -= surf.get_width()
                bg.blit(surf, (lx, y + 5))
                lx -= 10
        return bg

    def _electrode_geometry(self) -> tuple[np.ndarray, int]:
        """Pixel centres of the electrodes in the MEA panel, and the dot radius."""
        x, y, w, h = self.rects.mea
        pos = self.array.positions_um
        ok = np.isfinite(pos).all(axis=1)
        xy = np.full((len(pos), 2), -1000, dtype=np.int64)
        if not ok.any():
            return xy, 2
        p = pos[ok]
        lo, hi = p.min(axis=0), p.max(axis=0)
        span = np.maximum(hi - lo, 1e-9)
        # Spacing: the smallest distance between distinct coordinates (the pitch of a grid).
        steps = [np.diff(np.unique(p[:, k])) for k in (0, 1)]
        steps = np.concatenate([s[s > 1e-9] for s in steps]) if any(len(s) for s in steps) \
            else np.array([1.0])
        pitch = float(steps.min()) if len(steps) else 1.0
        pad_top, pad = 26, 16
        area_w, area_h = w - 2 * pad, h - pad_top - pad
        scale = min(area_w / (span[0] + pitch), area_h / (span[1] + pitch))
        ox = x + pad + (area_w - span[0] * scale) / 2
        oy = y + pad_top + (area_h - span[1] * scale) / 2
        xy[ok, 0] = np.round(ox + (p[:, 0] - lo[0]) * scale)
        xy[ok, 1] = np.round(oy + (p[:, 1] - lo[1]) * scale)
        radius = int(max(1, min(pitch * scale * 0.36, 14)))
        return xy, radius

    def electrode_center(self, i: int) -> tuple[int, int]:
        """Pixel centre of electrode ``i`` in the picture (for tests and overlays)."""
        return int(self._electrode_xy[i, 0]), int(self._electrode_xy[i, 1])

    # -- the frame --------------------------------------------------------------------------
    def paint(self, surface, model: ViewModel, speed: float | None = 1.0,
              paused: bool = False) -> None:
        pygame = import_pygame()
        r = self.rects
        surface.blit(self._background, (0, 0))
        feedback = model.feedback_now()
        self._paint_title(surface, model, speed, paused)
        self._paint_court(surface, model, feedback)
        self._paint_figures(surface, model)
        self._paint_curve(surface, model)
        if self.array is not None:
            self._paint_mea(surface, model, feedback)
            self._paint_raster(surface, model)
        self._paint_status(surface, model, feedback, keys=speed is not None)
        if paused:
            x, y, w, h = r.court
            label = self.text("PAUSED  (space: resume, . : one tick)", TEXT, self.font)
            box = label.get_rect(center=(x + w // 2, y + h // 2))
            pygame.draw.rect(surface, PANEL, box.inflate(16, 10), border_radius=4)
            surface.blit(label, box)

    def _paint_title(self, surface, model, speed, paused) -> None:
        who = model.player or "player"
        if model.condition:
            who += f" ({model.condition})"
        left = f"{self.title}  |  {who}"
        if model.source:
            left += f"  |  {model.source}"
        t = model.t_s
        right = f"{int(t // 60):02d}:{t % 60:04.1f}"
        if speed is not None:
            right += f"   speed {speed_label(speed)}"
        if paused:
            right += "   PAUSED"
        surf = self.text(right, TEXT, self.font)
        surface.blit(surf, (self.size[0] - 12 - surf.get_width(), 10))
        room = self.size[0] - 12 - surf.get_width() - 24 - 12
        surface.blit(self.fit(left, room, TEXT, self.font), (12, 10))

    def _paint_court(self, surface, model, feedback) -> None:
        pygame = import_pygame()
        rect = self.rects.court
        ball, paddle_y = model.court
        known = paddle_y is not None
        # Without recorded positions (a real culture's event log) the paddle is drawn off the
        # picture, above the court.
        draw_court(surface, rect, self.config, ball,
                   paddle_y if known else -2.0 * self.config.court_height)
        x, y, w, h = rect
        if not known:
            msg = self.text("ball and paddle not recorded: events only", DIM, self.small)
            surface.blit(msg, msg.get_rect(center=(x + w // 2, y + h - 16)))
            rally = self.text(f"rally {model.rally_hits}", TEXT, self.big)
            surface.blit(rally, rally.get_rect(center=(x + w // 2, y + h // 2)))
        age = model.t_s - model.last_event_t
        if model.last_event == EV_HIT and age < 0.3 and known:
            sy = h / self.config.court_height
            py = y + paddle_y * sy
            ph = self.config.paddle_height * sy
            pygame.draw.rect(surface, HIT, (x, py - ph / 2 - 3, 10, ph + 6), width=2,
                             border_radius=3)
        elif model.last_event == EV_HIT and age < 0.3:
            pygame.draw.rect(surface, HIT, rect, width=3)
        if feedback is not None:
            colour = PREDICTABLE if feedback == "predictable" else UNPREDICTABLE
            pygame.draw.rect(surface, colour, (x - 3, y - 3, w + 6, h + 6), width=4)
            banner = self.text(f"{feedback} feedback", colour, self.big)
            box = banner.get_rect(midtop=(x + w // 2, y + 10))
            pygame.draw.rect(surface, BACKGROUND, box.inflate(14, 6))
            surface.blit(banner, box)
        elif model.last_event == EV_MISS and age < 0.5:
            pygame.draw.rect(surface, MISS, (x - 3, y - 3, w + 6, h + 6), width=3)

    def _paint_figures(self, surface, model) -> None:
        x, y, w, h = self.rects.figures

        def fmt(v, spec):
            return "-" if v != v else format(v, spec)

        t = model.t_s
        rows = [
            ("player", model.player or "-"),
            ("condition", model.condition or "-"),
            ("minute", f"{int(t // 60) + 1}  ({int(t // 60):d}:{int(t % 60):02d})"),
            ("current rally", f"{model.rally_hits} hits"),
            ("rallies", f"{model.rallies}"),
            ("ARL so far", fmt(model.arl, ".2f")),
            ("aces", fmt(model.aces_pct, ".1f") + (" %" if model.rallies else "")),
            (f"long (>{model.long_threshold})", fmt(model.long_pct, ".1f")
             + (" %" if model.rallies else "")),
        ]
        if model.note:
            rows.append(("", model.note))
        ly = y + 10
        for label, value in rows:
            surface.blit(self.text(label, DIM, self.font), (x + 10, ly))
            surface.blit(self.fit(value, w - 128, TEXT, self.font), (x + 118, ly))
            ly += 27

    def _paint_curve(self, surface, model) -> None:
        pygame = import_pygame()
        x, y, w, h = self.rects.curve
        key = (model.curve_version, int(model.t_s // 60.0))
        if key != self._curve_key:
            self._curve_key = key
            minutes, arl = model.arl_curve()
            surf = pygame.Surface((w - 2, h - 24))
            surf.fill(PANEL)
            pw, ph = surf.get_size()
            top = max(2.0, float(np.nanmax(arl)) if np.isfinite(arl).any() else 2.0)
            top = math.ceil(top)
            left_pad, right_pad, bottom_pad = 30, 10, 16
            gw, gh = pw - left_pad - right_pad, ph - bottom_pad - 4
            for level in range(0, top + 1, max(1, top // 4)):
                gy = 4 + gh - gh * level / top
                pygame.draw.line(surf, EDGE, (left_pad, gy), (pw - right_pad, gy))
                surf.blit(self.text(str(level), DIM, self.small), (8, gy - 6))
            n = CURVE_MINUTES
            first = int(minutes[0]) if len(minutes) else 0
            pts = []
            for m, a in zip(minutes, arl):
                gx = left_pad + gw * (m - first + 0.5) / n
                if a == a:
                    gy = 4 + gh - gh * min(a, top) / top
                    pts.append((gx, gy))
                    pygame.draw.circle(surf, ARL_LINE, (int(gx), int(gy)), 3)
                elif pts and len(pts) > 1:
                    pygame.draw.lines(surf, ARL_LINE, False, pts, 2)
                    pts = []
                else:
                    pts = []
            if len(pts) > 1:
                pygame.draw.lines(surf, ARL_LINE, False, pts, 2)
            label = f"minutes {first + 1}-{first + n}"
            surf.blit(self.text(label, DIM, self.small), (left_pad, ph - 14))
            self._curve_surface = surf
        surface.blit(self._curve_surface, (x + 1, y + 22))

    def _region_rects(self, regions) -> list:
        """Pixel boxes around each region's electrodes."""
        pygame = import_pygame()
        xy, r = self._electrode_xy, self._electrode_r
        half = int(r * 1.45)
        boxes = []
        for region in regions:
            pts = xy[list(region)]
            x0, y0 = pts.min(axis=0) - half
            x1, y1 = pts.max(axis=0) + half
            boxes.append(pygame.Rect(int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
        return boxes

    def _paint_mea(self, surface, model, feedback) -> None:
        pygame = import_pygame()
        x, y, w, h = self.rects.mea
        array = self.array
        xy, r = self._electrode_xy, self._electrode_r
        # Recent spikes per tick of each electrode (the activity trace is an exponential sum).
        rate = model.electrode_rate()
        # Motor regions: tinted by their activity relative to the most active region, so the
        # up/down balance the decoder reads shows at any overall firing rate.
        regions = [(reg, UP) for reg in array.motor_up] + [(reg, DOWN) for reg in array.motor_down]
        if regions:
            levels = [float(rate[list(reg)].mean()) if reg else 0.0 for reg, _ in regions]
            top = max(max(levels), 0.02)
            boxes = self._region_rects([reg for reg, _ in regions])
            for (_, hue), level, box in zip(regions, levels, boxes):
                k = 0.12 + 0.6 * level / top
                colour = tuple(int(PANEL[i] + (hue[i] - PANEL[i]) * k) for i in range(3))
                pygame.draw.rect(surface, colour, box, border_radius=5)
                pygame.draw.rect(surface, hue, box, width=1, border_radius=5)
        # Electrodes: dark when silent, light blue-white when active (relative to the array).
        ref = max(float(np.percentile(rate, 90)) * 1.5, 0.05)
        level = np.minimum(rate / ref, 1.0)
        colours = (_ELECTRODE_OFF + (_ELECTRODE_ON - _ELECTRODE_OFF) * level[:, None]).astype(
            np.int64)
        for i in range(array.n):
            if xy[i, 0] > -1000:
                pygame.draw.circle(surface, colours[i], xy[i], r)
        # Sensory electrodes: outlined; the stimulated one filled amber, brighter and with a
        # faster beating ring the higher the rate (4 Hz dim .. 40 Hz bright).
        for e in array.sensory:
            pygame.draw.circle(surface, SENSORY, xy[e], r + 2, width=2)
        if feedback == "predictable":
            stimulated, frac = list(range(len(array.sensory))), 1.0
        elif 0 <= model.stim_slot < len(array.sensory):
            stimulated = [model.stim_slot]
            frac = (min(max(model.stim_rate_hz, RATE_MIN_HZ), RATE_MAX_HZ) - RATE_MIN_HZ) / \
                (RATE_MAX_HZ - RATE_MIN_HZ)
        else:
            stimulated, frac = [], 0.0
        fill = tuple(int(lo + (hi - lo) * frac) for lo, hi in zip(STIM_LOW, STIM_FILL))
        for slot in stimulated:
            e = array.sensory[slot]
            pygame.draw.circle(surface, fill, xy[e], r + 2)
            rate_hz = model.stim_rate_hz or 100.0
            phase = (model.t_s * rate_hz / 8.0) % 1.0  # a visible fraction of the pulse rate
            pygame.draw.circle(surface, SENSORY, xy[e], int(r + 4 + 5 * phase), width=2)
        if feedback == "predictable":
            status, colour = "stimulation: predictable feedback", PREDICTABLE
        elif feedback == "unpredictable":
            status, colour = "stimulation: unpredictable feedback", UNPREDICTABLE
        elif model.stim_slot >= 0:
            status = (f"stimulation: slot {model.stim_slot + 1} of {len(array.sensory)}, "
                      f"{model.stim_rate_hz:.0f} Hz")
            colour = SENSORY
        elif array.sensory:
            status, colour = "stimulation: none", DIM
        else:
            status = ""
        if status:
            surface.blit(self.text(status, colour, self.small), (x + 8, y + h - 16))
        if feedback is not None:
            colour = PREDICTABLE if feedback == "predictable" else UNPREDICTABLE
            pygame.draw.rect(surface, colour, (x, y, w, h), width=3, border_radius=4)

    def _paint_raster(self, surface, model) -> None:
        # Drawn as palette indices into a small 8-bit surface (no RGB arrays), then scaled.
        pygame = import_pygame()
        x, y, w, h = self.rects.raster
        raster, events, stim = model.raster_image()
        rows, cols = raster.shape
        strip = max(4, rows // 12)   # event marks on top
        side = max(2, cols // 100)   # row roles on the left
        img = np.empty((cols + side, rows + strip), dtype=np.uint8)
        body = img[side:, strip:]
        np.minimum(raster.T, _PAL_SPIKES_MAX, out=body)
        # The place code: the stimulated sensory electrode's row, tinted while it is stimulated.
        if self._slot_rows is not None:
            t = np.flatnonzero(stim >= 0)
            if len(t):
                r = self._slot_rows[stim[t]]
                quiet = raster[r, t] == 0
                body[t[quiet], r[quiet]] = _PAL_STIM
        # Events, three ticks wide so that one tick shows at any size.
        ev = events.copy()
        ev[1:] = np.maximum(ev[1:], events[:-1])
        ev[:-1] = np.maximum(ev[:-1], events[1:])
        img[side:, :strip] = (_PAL_EVENT + ev)[:, None]
        img[:side, strip:] = self._row_role_index[None, :]
        img[:side, :strip] = 0
        small = self._raster_small
        if small.get_size() != img.shape:
            small = self._raster_small = pygame.Surface(img.shape, depth=8)
            small.set_palette([tuple(int(c) for c in rgb) for rgb in _RASTER_PALETTE])
        pygame.surfarray.blit_array(small, img)
        area = (x + 6, y + 22, w - 12, h - 28)
        surface.blit(pygame.transform.scale(small, area[2:]), area[:2])

    def _paint_status(self, surface, model, feedback, keys: bool = True) -> None:
        x, y, w, h = self.rects.status
        if keys:  # not in headless recordings
            hint = "space pause   . step   +/- speed   q quit"
            surface.blit(self.text(hint, DIM, self.small), (x + 4, y + h - 16))
        if self.array is None:
            return
        self._legend(surface, x + 4, y + 2)
        age = model.t_s - model.last_event_t
        if feedback is not None:
            label, colour = f"{feedback} feedback", (PREDICTABLE if feedback == "predictable"
                                                     else UNPREDICTABLE)
        elif model.last_event == EV_MISS and age < 4.0:
            label, colour = "miss", MISS
        elif model.last_event == EV_HIT and age < 1.0:
            label, colour = "hit", HIT
        else:
            return
        surf = self.text(label, colour, self.big)
        surface.blit(surf, (x + w - 8 - surf.get_width(), y + h - 26))

    def _legend(self, surface, x: int, y: int) -> None:
        """The raster's colour key: spikes per tick, event marks, stimulation."""
        pygame = import_pygame()
        items = [("spikes/10 ms:", None)] + [(str(k) if k < 4 else "4+", tuple(_RASTER_LUT[k]))
                                             for k in (1, 2, 3, 4)]
        items += [("   events:", None), ("hit", HIT), ("miss", MISS), ("serve", _SERVE_MARK)]
        if self.array.sensory:
            items += [("   ", None), ("stimulated", STIM_DIM)]
        lx = x
        for label, colour in items:
            if colour is not None:
                pygame.draw.rect(surface, colour, (lx, y + 3, 10, 10))
                lx += 13
            surf = self.text(label, DIM, self.small)
            surface.blit(surf, (lx, y + 1))
            lx += surf.get_width() + 6


def surface_to_array(surface) -> np.ndarray:
    """An H x W x 3 uint8 copy of a pygame surface."""
    pygame = import_pygame()
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).swapaxes(0, 1))


def save_png(surface, path: str | Path) -> None:
    import_pygame().image.save(surface, str(path))
