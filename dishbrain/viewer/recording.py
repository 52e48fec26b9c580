"""Recording the view: GIF or MP4, streamed frame by frame to ffmpeg (imageio-ffmpeg), so memory
stays flat however long the recording.

A recording takes frames at a fixed rate in *game* time (``RECORD_FPS``), whatever the speed, so
that it plays back in real time. GIFs go through ffmpeg too, not Pillow: imageio's Pillow plugin
(v3) keeps every frame until the file is closed, and Pillow's ``save(append_images=...)`` gathers
them all before writing (and merges identical frames), so neither streams. GIF frames are mapped
without dithering (the picture is flat colours) to one fixed palette of the viewer's colours
(``style.gif_palette``, read by ffmpeg's ``paletteuse`` from a small PNG), so that ffmpeg's GIF
encoder can store only the pixels that changed: ~10 kB a frame.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from dishbrain.viewer.style import gif_palette

#: Game-time frames per second of a recording, by format. GIF delays are whole centiseconds
#: (12.5 fps = 8 cs); a GIF frame of the scrolling raster costs ~10 kB, so 12.5 fps keeps a 20 s
#: clip near 3 MB.
RECORD_FPS = {".mp4": 25.0, ".gif": 12.5}
#: The extensions a recording may have.
RECORD_EXTENSIONS = (".gif", ".mp4")

# H.264 as imageio's FFMPEG plugin writes it (quality 7 of 10, yuv420p, 16-pixel blocks).
_MP4 = dict(codec="libx264", pix_fmt_out="yuv420p", quality=7, macro_block_size=16)


def _gif_options(palette_png: Path) -> dict:
    """ffmpeg's GIF settings: the frames mapped to the palette in ``palette_png`` (read inside
    the filter graph), no dithering, looping forever."""
    graph = f"movie='{palette_png}'[pal];[0:v][pal]paletteuse=dither=none"  # a tempfile name
    return dict(codec="gif", pix_fmt_out="pal8", macro_block_size=1,
                output_params=["-filter_complex", graph, "-loop", "0"])


def _write_palette_png(path: Path) -> None:
    """``gif_palette`` as a 16 x 16 RGBA PNG, the last entry transparent (for unchanged pixels)."""
    from PIL import Image

    pal = gif_palette()
    rgba = np.zeros((256, 4), dtype=np.uint8)
    rgba[:len(pal), :3] = pal
    rgba[:len(pal), 3] = 255
    Image.fromarray(rgba.reshape(16, 16, 4), mode="RGBA").save(path)


def check_record_path(path: str | Path) -> Path:
    """A recording's path: .gif or .mp4, in a folder that exists or can be made."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in RECORD_EXTENSIONS:
        raise ValueError(f"cannot record to {str(path)!r}: the file must end in .gif or .mp4 "
                         f"(got {ext or 'no extension'!r})")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the folder of {str(path)!r}: {exc.strerror}") from None
    if not os.access(path.parent, os.W_OK):
        raise ValueError(f"cannot record to {str(path)!r}: its folder is not writable")
    return path


class Recorder:
    """Streams H x W x 3 uint8 frames of one size to a .gif or .mp4 file through ffmpeg
    (``imageio_ffmpeg.write_frames``): ``append(frame)`` for each, then ``close()``."""

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float):
        import imageio_ffmpeg

        self.path = check_record_path(path)
        self.size = (int(size[0]), int(size[1]))
        self.fps = float(fps)
        self._scratch = None
        if self.path.suffix.lower() == ".gif":
            self._scratch = tempfile.TemporaryDirectory(prefix="dishbrain-gif-")
            palette = Path(self._scratch.name) / "palette.png"
            _write_palette_png(palette)
            options = _gif_options(palette)
        else:
            options = _MP4
        self._writer = imageio_ffmpeg.write_frames(
            str(self.path), self.size, fps=self.fps, pix_fmt_in="rgb24",
            ffmpeg_log_level="error", **options)
        self._writer.send(None)  # start ffmpeg
        self.frames = 0

    def append(self, frame: np.ndarray) -> None:
        """Add one H x W x 3 uint8 frame (W x H = ``size``)."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if frame.shape != (self.size[1], self.size[0], 3):
            raise ValueError(f"frame of shape {frame.shape}, expected "
                             f"{(self.size[1], self.size[0], 3)}")
        self._writer.send(frame)
        self.frames += 1

    def close(self) -> None:
        """Finish the file (safe to call twice)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._scratch is not None:
            self._scratch.cleanup()
            self._scratch = None


def open_recorder(path: str | Path, size: tuple[int, int], fps: float) -> Recorder:
    """A frame writer for ``path`` (.gif or .mp4), ``size`` = (width, height) in pixels."""
    return Recorder(path, size, fps)
