"""The shared behaviour of the project's frozen config dataclasses (game, culture, codes, feedback)."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

C = TypeVar("C", bound="Config")


class Config:
    """Mixin for frozen, validated config dataclasses: `replace` and `from_dict`.

    Validation lives in each dataclass's ``__post_init__`` and names the field and the allowed
    values; `from_dict` adds the check for unknown names (a typo in a TOML file or a saved state).
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
