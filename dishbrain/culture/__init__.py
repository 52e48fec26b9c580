"""The simulated culture: a Brian2 network of cortical neurons grown on a virtual MEA.

One concept per module, in the order a reader meets them:

- `config`: ``CultureConfig``, every parameter with its source, checked on construction.
- `rng`: the counter-based hash random numbers (numpy, Cython and C++ versions of one function).
- `structure`: cell types, placement, wiring and delays, drawn once per (config, MEA, seed).
- `model`: the Brian2 equations (neurons, synapses, STP, STDP, homeostasis, noise, stimulation)
  and ``CultureNetwork``, the Brian2 objects of a culture.
- `runtime`: ``Culture``, the runtime backend (run with a tick callback, stimulate, record,
  save / load).
- `standalone`: ``StandaloneCulture``, the compiled backend run in lock-step, and
  ``make_culture``, which picks a backend.
- `link`: the C++ the compiled binary calls every tick, and the pipe's message layout.
- `build`: the compile caches (Brian2's Cython cache; the C++ builds and their helper process).

The names below are imported from here (``from dishbrain.culture import Culture, CultureConfig,
make_culture``). They load their module on first use, so that importing the package, or only the
config, does not import Brian2 (~1-2 s); `model` and everything that simulates import it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the submodule that defines it
_EXPORTS = {
    "CultureConfig": "config",
    "CELL_TYPES": "structure",
    "IZHIKEVICH_PARAMETERS": "structure",
    "CultureStructure": "structure",
    "generate_structure": "structure",
    "sensory_module": "structure",
    "motor_region": "structure",
    "CultureNetwork": "model",
    "model_namespace": "model",
    "Culture": "runtime",
    "SAVE_FORMAT_VERSION": "runtime",
    "SPIKE_RECORD_DTYPE": "runtime",
    "TickCallback": "runtime",
    "check_run_arguments": "runtime",
    "StandaloneCulture": "standalone",
    "BACKENDS": "standalone",
    "make_culture": "standalone",
    "cache_root": "build",
    "ensure_build": "build",
    "ensure_compiled": "build",
    "standalone_available": "build",
    "warm_cache": "build",
}

__all__ = [
    "BACKENDS",
    "CELL_TYPES",
    "Culture",
    "CultureConfig",
    "CultureNetwork",
    "CultureStructure",
    "IZHIKEVICH_PARAMETERS",
    "SAVE_FORMAT_VERSION",
    "SPIKE_RECORD_DTYPE",
    "StandaloneCulture",
    "TickCallback",
    "cache_root",
    "check_run_arguments",
    "ensure_build",
    "ensure_compiled",
    "generate_structure",
    "make_culture",
    "model_namespace",
    "motor_region",
    "sensory_module",
    "standalone_available",
    "warm_cache",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from dishbrain.culture.build import (
        cache_root,
        ensure_build,
        ensure_compiled,
        standalone_available,
        warm_cache,
    )
    from dishbrain.culture.config import CultureConfig
    from dishbrain.culture.model import CultureNetwork, model_namespace
    from dishbrain.culture.runtime import (
        SAVE_FORMAT_VERSION,
        SPIKE_RECORD_DTYPE,
        Culture,
        TickCallback,
        check_run_arguments,
    )
    from dishbrain.culture.standalone import BACKENDS, StandaloneCulture, make_culture
    from dishbrain.culture.structure import (
        CELL_TYPES,
        IZHIKEVICH_PARAMETERS,
        CultureStructure,
        generate_structure,
        motor_region,
        sensory_module,
    )
