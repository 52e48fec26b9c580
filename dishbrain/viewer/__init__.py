"""The viewer: watch any player play, record the view to a GIF or MP4, replay a session.

One picture, drawn the same way live, when recording and in replays. The package, bottom up:

- ``style``: colours and the raster's palette;
- ``model``: the electrode array (``ArrayLayout``), the culture player read by duck typing
  (``CultureProbe``), the picture's rolling state (``ViewModel``, fixed-size ring buffers, so
  memory stays flat however long the session);
- ``painter``: drawing a ViewModel onto a pygame surface (``Painter``);
- ``recording``: GIF / MP4 files, streamed frame by frame (``open_recorder``);
- ``live``: the window, its timing and keys (``Presenter``) and the gymnasium wrapper that shows a
  session as it is played (``LiveViewer``, ``viewer_wrapper``);
- ``trace``: the per-tick trace of a session, for replays (``TraceRecorder``, ``trace_wrapper``);
- ``replay``: playing back a trace, a session log or Cortical Labs' recording (``replay``).

Every log format is read and written through ``dishbrain.logs``.

Examples (the pictures in ``docs/`` come from the last three)::

    dishbrain play --agent culture --minutes 2 --render            # watch, real time
    dishbrain play --agent tracker --minutes 20 --render --speed max
    dishbrain play --agent culture --minutes 0.4 --record docs/culture-play.gif
    dishbrain play --agent culture --minutes 2 --trace --out runs/viewer-demo --quiet
    dishbrain replay runs/viewer-demo/culture-stimulus-seed0.jsonl --png docs/viewer.png \\
        --start 1.9545
"""

from dishbrain.viewer.live import (
                                     FPS,
                                     SPEED_STEPS,
                                     LiveViewer,
                                     Presenter,
                                     parse_speed,
                                     viewer_wrapper,
)
from dishbrain.viewer.model import RASTER_S, ArrayLayout, CultureProbe, ViewModel
from dishbrain.viewer.painter import RATE_MAX_HZ, RATE_MIN_HZ, Painter, save_png, surface_to_array
from dishbrain.viewer.recording import RECORD_FPS, Recorder, check_record_path, open_recorder
from dishbrain.viewer.replay import (
                                     EventLogSource,
                                     ReplaySource,
                                     SpikeStreamSource,
                                     TraceSource,
                                     open_source,
                                     replay,
)
from dishbrain.viewer.style import PANEL, PREDICTABLE
from dishbrain.viewer.trace import TraceRecorder, trace_wrapper

__all__ = [
    "ArrayLayout", "CultureProbe", "ViewModel", "Painter", "Presenter", "LiveViewer",
    "viewer_wrapper", "parse_speed", "check_record_path", "Recorder", "open_recorder",
    "TraceRecorder", "trace_wrapper", "ReplaySource", "TraceSource", "EventLogSource",
    "SpikeStreamSource", "open_source", "replay", "surface_to_array", "save_png",
    "FPS", "SPEED_STEPS", "RECORD_FPS", "RASTER_S", "RATE_MIN_HZ", "RATE_MAX_HZ", "PANEL",
    "PREDICTABLE",
]
