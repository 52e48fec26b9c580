"""The simulated culture behind Cortical Labs' CL API: a cl-sdk simulator data source.

Cortical Labs' ``cl-sdk`` (PyPI ``cl-sdk`` >= 1.0, Python >= 3.12, CC BY-NC 4.0; the optional
extra ``pip install "dishbrain[cl]"``) is the API that experiments on their CL1 are written
against (``cl.open()``, ``neurons.loop``, ``neurons.stim``, ``tick.analysis.spikes``,
recordings). Its simulator takes its data from a pluggable ``cl.sim.SimulatorDataSource``; this
module is one, backed by our Brian2 culture, so a CL app meets a culture that answers its
stimulation and adapts (STDP, STP, homeostasis) instead of a replay or Poisson noise. One line
in the app's ``.env`` selects it::

    CL_SDK_DATA_SOURCE=dishbrain.cl:culture_source
    CL_SDK_DATA_SOURCE_CONFIG='{"seed": 0, "n_neurons": 1000}'   # optional
    CL_SDK_ACCELERATED_TIME=1                                     # optional: faster than real

or, in Python, ``cl.sim.set_simulator_data_source("dishbrain.cl:culture_source", config={...})``.

Channels
--------
CL1 has 64 channels on an 8 x 8 grid, numbered row by row (channel = 8 * row + col); its four
corners 0, 7, 56 and 63 are grounded (cl-sdk drops stimulation sent to them) and channel 4 is the
reference (cl-sdk's own random source gives no spikes on 0, 4, 7, 56, 63). Our ``dishbrain.mea``
array is 8 x 8 too, electrode ``k`` at row ``k // 8``, column ``k % 8``, so **channel k is
electrode k**: the same row-major numbering, row 0 at the top. By default the five channels
above record nothing here either (``silent_channels``); the culture's neurons under them are
still there and still fire.

Time
----
Frames run at cl-sdk's 25 kHz (25 frames per ms; frame 0 = the culture's time when the source
opened). The culture runs in lock-step with the simulator's reads, in ticks of ``tick_ms``
(default: the culture's dt, 0.5 ms = 12.5 frames): a read of frames ``[a, b)`` simulates every
tick whose spikes fall before ``b``. The spikes each electrode records in a tick come back as
one ``DataSourceSpike`` each on that channel at the tick's first frame, ``floor(25 * t_ms)``.
The culture never runs ahead of the reads, so every stim the SDK commits reaches it before the
tick that contains it; a stim is applied at the start of the tick that contains its timestamp,
at most ``tick_ms`` early, or, if that tick is already simulated (the SDK's real-time mode can
publish a stim a fraction of a ms late), at the next tick. Accelerated time works: the reads
come as fast as the culture runs.

Stimulation
-----------
Every committed stim (``on_stims``: channel, timestamp, ``StimDesign`` phases; a burst arrives
as its single pulses) becomes one pulse on that electrode. The culture's pulse is an
instantaneous kick of ``stim_gain * amplitude_mv * coupling(distance)`` (``dishbrain.culture``),
so a current pulse is converted to a mV-equivalent amplitude, **a modelling choice**:

    amplitude_mv = mv_per_ua * (charge of the strongest phase, uA * us) / reference_phase_us

i.e. proportional to the charge per phase (for pulses shorter than the chronaxie, ~0.1-0.4 ms
for axons, the threshold is set by charge: Lapicque's strength-duration relation; Ranck 1975,
Brain Res 98:417), scaled so that a pulse of ``reference_phase_us`` (200 us, DishBrain's phase
width) at 1 uA is ``mv_per_ua`` mV. The default 50 mV per uA is Ohm's law over an electrode of
~50 kOhm, the order of the 1 kHz impedance of 30 um TiN MEA electrodes (30-50 kOhm in Multi
Channel Systems' specifications): DishBrain's ~75 mV voltage pulses (Kagan et al. 2022) then
correspond to ~1.5 uA at 200 us, and cl-sdk's example pulse ``StimDesign(160, -1.0, 160, 1.0)``
to 40 mV (fires neurons within ~80 um of the electrode). Amplitudes above the culture's 1000 mV
limit are clipped (logged once).

Frames
------
``frames="synthetic"`` (default): Gaussian noise (``noise_rms_uv``, drawn once from the seed and
replayed cyclically, 2**15 frames ~ 1.3 s) plus a spike waveform (trough ``spike_amplitude_uv``
at the spike's frame, a slower positive after-wave) for every spike, in cl-sdk's int16 sample
units (0.195 uV each), so that recordings and the SDK's visualiser show the culture. MEA
recordings have noise of a few uV rms and extracellular spikes of tens to ~100 uV (Obien et al.
2015, Front Neurosci 8:423). ``frames="zeros"``: zero frames (cheaper), spikes as above.

Config (the factory's keyword arguments = ``CL_SDK_DATA_SOURCE_CONFIG``; all optional)
----------------------------------------------------------------------------------------
``seed`` (0), ``n_neurons`` (1000), ``culture`` (a dict of ``CultureConfig`` fields), ``mea`` (a
dict of ``MEAConfig`` fields; it must keep 8 x 8 = 64 electrodes), ``state`` (a saved culture,
``.npz``, to start from; it keeps its own seed, size and config), ``save_state`` (where to save
the culture when the source closes, so the next ``cl.open()`` can continue it), ``backend``
("auto", "standalone", "runtime"; default ``$DISHBRAIN_CULTURE_BACKEND`` or "auto": the compiled
backend where a C++ compiler exists), ``tick_ms``, ``mv_per_ua`` (50), ``reference_phase_us``
(200), ``frames``, ``noise_rms_uv`` (3), ``spike_amplitude_uv`` (60), ``silent_channels``,
``channel_count`` (must be 64). A wrong value fails when the source is built (in the app's
process, at ``cl.open()``) with one line naming the field and the allowed values.

The SDK builds the source twice: in the app's process, to read its metadata (this is where the
one-off compile of the culture happens, with a message), and in its data-producer process, which
must report ready within 15 s. There Brian2 is imported and the culture built in the culture's
own thread; ``open()`` waits up to 6 s for it (a second or two on a quiet machine), then lets the
first read wait instead. cl-sdk's reads wait 30 s for data, but its accelerated ``neurons.loop``
only 0.1 s per tick, so a CL app should read a little (the examples read 1 s) before its first
loop. Passing ``metadata=`` / ``CL_SDK_DATA_SOURCE_METADATA`` skips the app-side build, so then
compile beforehand (``dishbrain warmup``; the compiled backend builds per culture size and
``tick_ms`` on first use).
"""

from __future__ import annotations

try:
    import cl as _cl  # noqa: F401  (the extra's presence)
except ImportError:  # pragma: no cover - exercised on Python 3.11
    raise ImportError(
        "dishbrain.cl needs Cortical Labs' cl-sdk: pip install \"dishbrain[cl]\" "
        "(Python >= 3.12)"
    ) from None

from dishbrain.cl.source import (
    CHANNEL_COUNT,
    CL1_SILENT_CHANNELS,
    FRAMES_PER_SECOND,
    CultureDataSource,
    CultureSourceConfig,
    culture_source,
    pulse_amplitude_mv,
    spike_waveform_uv,
)

__all__ = ["CHANNEL_COUNT", "CL1_SILENT_CHANNELS", "CultureDataSource", "CultureSourceConfig",
           "FRAMES_PER_SECOND", "culture_source", "pulse_amplitude_mv", "spike_waveform_uv"]
