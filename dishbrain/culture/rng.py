"""The culture's random numbers: a counter-based hash of (key, index, time step).

Every random number the simulation draws during a run (the background current of each neuron
every ``noise_interval_ms``, the intervals of Poisson pulse trains, the first pulse of a Poisson
stimulation) is a pure function of a stream key (seed and stream), an index (neuron or electrode)
and a counter (time step, or the number of ``stimulate`` calls so far). So the same seed gives the
same activity, several cultures can share a process, and a saved culture continues bit-identically
after loading: there is no generator state to save.

The hash is the SplitMix64 finaliser (Steele, Lea & Flood 2014, OOPSLA "Fast splittable
pseudorandom number generators"), applied twice: once to key and step, once more with the index.
Uniforms take its top 53 bits; normals are the Irwin-Hall sum of its four 16-bit quarters, scaled
to mean 0 and sd 1 (bounded at +-3.46, ample for a background current).

The same function is written three times, and the three must agree bit for bit: in numpy (the
reference, and Brian2's numpy target), as Cython (Brian2's runtime target; `dishbrain.culture.model`
makes the Brian2 functions) and as inline C++ (the compiled backend; `dishbrain.culture.link`).
The structure (placement, wiring, cell parameters) is drawn once with numpy's own generator
instead (`dishbrain.culture.structure`).
"""

from __future__ import annotations

import numpy as np

# Stream ids: a culture's key for a stream is seed * 8 + stream.
STREAM_NOISE, STREAM_PULSES, STREAM_FIRST_PULSE = 1, 2, 3
# Seeds below 2**27 keep every key (seed * 8 + stream) below 2**30, inside a 32-bit signed
# integer whatever integer type a code generator gives it.
MAX_SEED = 2**27


def stream_key(seed: int, stream: int) -> int:
    """The hash key of ``stream`` (one of the STREAM_* ids) for the culture of ``seed``."""
    return seed * 8 + stream


_C1, _C2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_GOLD, _IDX = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xD1B54A32D192ED03)


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


def _hash64(key, index, step) -> np.ndarray:
    with np.errstate(over="ignore"):
        k = np.asarray(key).astype(np.uint64)
        s = np.asarray(step).astype(np.uint64)
        idx = np.atleast_1d(np.asarray(index)).astype(np.uint64)
        z = _mix64(k * _GOLD + s)
        return _mix64(z + idx * _IDX)


def hash_uniform_np(key, index, step) -> np.ndarray:
    """Uniform in (0, 1), a pure function of (key, index, step)."""
    z = _hash64(key, index, step)
    return ((z >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


def hash_normal_np(key, index, step) -> np.ndarray:
    """Approximately standard normal (Irwin-Hall sum of four 16-bit uniforms), mean 0, sd 1."""
    z = _hash64(key, index, step)
    m = np.uint64(0xFFFF)
    s = ((z & m) + ((z >> np.uint64(16)) & m) + ((z >> np.uint64(32)) & m)
         + (z >> np.uint64(48))).astype(np.float64) + 2.0
    return (s / 65536.0 - 2.0) * 1.7320508075688772


# Cython (Brian2's runtime target): one support-code block per function, since Brian2 pastes each
# function's code into every code object that uses it (the normal's copy is renamed so that a code
# object using both does not define _mix64 twice).
_CYTHON_HASH = """
cdef inline unsigned long long _mix64(unsigned long long z):
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL
    return z ^ (z >> 31)

cdef inline unsigned long long _hash64(long long key, long long index, long long step):
    cdef unsigned long long z = _mix64(<unsigned long long>key * 0x9E3779B97F4A7C15ULL
                                       + <unsigned long long>step)
    return _mix64(z + <unsigned long long>index * 0xD1B54A32D192ED03ULL)
"""
CYTHON_UNIFORM = _CYTHON_HASH + """
cdef double _hash_uniform(long long key, long long index, long long step):
    return ((_hash64(key, index, step) >> 11) + 0.5) * (1.0 / 9007199254740992.0)
"""
CYTHON_NORMAL = _CYTHON_HASH.replace("_mix64", "_mix64n").replace("_hash64", "_hash64n") + """
cdef double _hash_normal(long long key, long long index, long long step):
    cdef unsigned long long z = _hash64n(key, index, step)
    cdef double s = <double>((z & 0xFFFFULL) + ((z >> 16) & 0xFFFFULL) + ((z >> 32) & 0xFFFFULL)
                             + (z >> 48)) + 2.0
    return (s / 65536.0 - 2.0) * 1.7320508075688772
"""

# C++ (the compiled backend), inline in the link header. The binary is built once for every seed
# with the keys of seed 0; ``ds_seed8`` (seed * 8, read from the environment at launch) moves each
# key to the culture's streams.
CPP_HASH = r"""
static inline unsigned long long ds_mix64(unsigned long long z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline unsigned long long ds_hash64(long long key, long long index, long long step) {
    // The build uses the streams of seed 0; the culture's seed is added here.
    key += ds_seed8;
    unsigned long long z = ds_mix64((unsigned long long)key * 0x9E3779B97F4A7C15ULL
                                    + (unsigned long long)step);
    return ds_mix64(z + (unsigned long long)index * 0xD1B54A32D192ED03ULL);
}

static inline double ds_hash_uniform(long long key, long long index, long long step) {
    return ((ds_hash64(key, index, step) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static inline double ds_hash_normal(long long key, long long index, long long step) {
    unsigned long long z = ds_hash64(key, index, step);
    double s = (double)((z & 0xFFFFULL) + ((z >> 16) & 0xFFFFULL) + ((z >> 32) & 0xFFFFULL)
                        + (z >> 48)) + 2.0;
    return (s / 65536.0 - 2.0) * 1.7320508075688772;
}
"""
