"""The shared behaviour of the project's frozen config dataclasses (game, culture, codes, feedback).

`Config` gives a dataclass `replace` and `from_dict`. The ``check_*`` functions are the field checks
every config's ``__post_init__`` runs; they raise ``ValueError`` with one message format, which
names the field as ``Owner.field``, states what is allowed and shows the value given::

    CultureConfig.dt_ms must be a finite number in [0.01, 1.0], got 5.0
    EncoderConfig.rate_min_hz must be a finite number > 0.0, got 0
    MEAConfig.rows must be an integer in [4, 64], got 8.5
    PongConfig.serve_after_miss must be True or False, got 1
    EncoderConfig.rate_curve must be one of ('linear', 'geometric'), got 'cubic'

Ranges are written as intervals when both ends are given (``[lo, hi]`` closed, ``(lo, hi)`` open,
or mixed) and as one comparison when only one end is (``> lo``, ``>= lo``, ``< hi``, ``<= hi``);
the bounds appear as the caller wrote them (``0`` or ``0.0``). A bool is never a number here,
although Python counts it as an int: ``True`` for a rate is a mistake, not 1 Hz.

Checks between fields (``rate_max_hz >= rate_min_hz``, a paddle no taller than the court) stay in
the configs' ``__post_init__``, worded the same way: ``Owner.field must be ..., got ...``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Collection
from typing import Any, NoReturn, TypeVar

import numpy as np

C = TypeVar("C", bound="Config")


class Config:
    """Mixin for frozen, validated config dataclasses: `replace` and `from_dict`.

    Validation lives in each dataclass's ``__post_init__`` (with the ``check_*`` functions of this
    module) and names the field and the allowed values; `from_dict` adds the check for unknown
    names (a typo in a TOML file or a saved state).
    """

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls: type[C], values: dict[str, Any]) -> C:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} field(s) {unknown}; allowed: {sorted(known)}")
        # TOML and JSON have no tuples: lists become tuples, so the config stays hashable.
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


# ---------------------------------------------------------------------------------------------
# Field checks
# ---------------------------------------------------------------------------------------------
#
# ``owner`` names the class in the message: a config instance (``self`` in ``__post_init__``), a
# class, or a name. ``numpy=True`` also accepts numpy scalars (``np.float32(0.5)``,
# ``np.int64(8)``); without it only Python ints and floats pass (and ``np.float64``, a float
# subclass), which keeps the config JSON-serialisable for session logs.

def _owner_name(owner: Any) -> str:
    if isinstance(owner, str):
        return owner
    return owner.__name__ if isinstance(owner, type) else type(owner).__name__


def _fail(owner: Any, name: str, allowed: str, value: Any) -> NoReturn:
    raise ValueError(f"{_owner_name(owner)}.{name} must be {allowed}, got {value!r}")


def _describe_range(lo: float | None = None, hi: float | None = None,
                   lo_open: bool = False, hi_open: bool = False) -> str:
    """The range as the messages write it: ``"in [0, 1)"``, ``"> 0"``, ``"<= 5"``, or ``""``."""
    if lo is not None and hi is not None:
        return f"in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f"{'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f"{'<' if hi_open else '<='} {hi}"
    return ""


def _in_range(value: Any, lo: float | None, hi: float | None, lo_open: bool,
              hi_open: bool) -> bool:
    if lo is not None and not (value > lo if lo_open else value >= lo):
        return False
    return hi is None or (value < hi if hi_open else value <= hi)


def _allowed(kind: str, rng: str) -> str:
    return f"{kind} {rng}" if rng else kind


def check_number(owner: Any, name: str, value: Any, lo: float | None = None,
                 hi: float | None = None, lo_open: bool = False, hi_open: bool = False,
                 numpy: bool = False) -> None:
    """Raise ValueError unless ``value`` is a finite real number (not a bool) in the range.

    ``lo`` / ``hi`` are the ends (None: unbounded); ``lo_open`` / ``hi_open`` exclude them.
    NaN and +-inf always fail. Ints pass as well as floats.
    """
    types = (int, float, np.integer, np.floating) if numpy else (int, float)
    ok = (isinstance(value, types) and not isinstance(value, bool)
          and (isinstance(value, (int, np.integer)) or math.isfinite(value))
          and _in_range(value, lo, hi, lo_open, hi_open))
    if not ok:
        _fail(owner, name, _allowed("a finite number", _describe_range(lo, hi, lo_open, hi_open)),
              value)


def check_int(owner: Any, name: str, value: Any, lo: int | None = None, hi: int | None = None,
              numpy: bool = False) -> None:
    """Raise ValueError unless ``value`` is an int (not a bool, not a float such as ``8.0``) in
    the closed range ``[lo, hi]`` (None: unbounded at that end)."""
    types = (int, np.integer) if numpy else int
    ok = (isinstance(value, types) and not isinstance(value, bool)
          and _in_range(value, lo, hi, False, False))
    if not ok:
        _fail(owner, name, _allowed("an integer", _describe_range(lo, hi)), value)


def check_bool(owner: Any, name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is ``True`` or ``False`` (not 0 / 1, not ``np.bool_``)."""
    if not isinstance(value, bool):
        _fail(owner, name, "True or False", value)


def check_choice(owner: Any, name: str, value: Any, choices: Collection[Any]) -> None:
    """Raise ValueError unless ``value`` is one of ``choices`` (listed in the message in order)."""
    if value not in choices:
        _fail(owner, name, f"one of {tuple(choices)}", value)
