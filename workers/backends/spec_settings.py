"""Typed reads of a model's `[models.<id>.settings]` table, failing with the model id and key.

Backends validate their settings in `__init__` (at worker start, long before the first
participant) through one `SpecSettings`, which also refuses keys the backend does not know, so a
typo such as `max_new_token` is an error and not a silently ignored setting.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from contract.modelsfile import ModelSpec

_MISSING = object()


class SpecSettings:
    def __init__(self, spec: ModelSpec, allowed: Iterable[str]) -> None:
        self.spec = spec
        self.allowed = frozenset(allowed)
        unknown = sorted(set(spec.settings) - self.allowed)
        if unknown:
            raise ValueError(
                f"model {spec.id!r} ({spec.backend}): unknown setting(s) {unknown}; "
                f"allowed: {', '.join(sorted(self.allowed))}"
            )

    def _bad(self, key: str, wanted: str, value: object) -> ValueError:
        return ValueError(
            f"model {self.spec.id!r} ({self.spec.backend}): setting {key!r} must be {wanted}, "
            f"got {value!r}"
        )

    def _get(self, key: str, default: Any) -> Any:
        if key not in self.allowed:
            raise KeyError(f"{self.spec.backend} reads setting {key!r} but does not allow it")
        value = self.spec.settings.get(key, default)
        if value is _MISSING:
            raise ValueError(
                f"model {self.spec.id!r} ({self.spec.backend}): missing required setting {key!r}"
            )
        return value

    def text(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self._bad(key, "a non-empty string", value)
        return value

    def integer(self, key: str, default: Any = _MISSING, minimum: int = 0) -> Any:
        value = self._get(key, default)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < minimum
        ):
            raise self._bad(key, f"an integer >= {minimum}", value)
        return value

    def number(
        self, key: str, default: Any = _MISSING, minimum: float = 0.0, maximum: float | None = None
    ) -> Any:
        value = self._get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(key, "a number", value)
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and <= {maximum}" if maximum is not None else ""
            raise self._bad(key, f"a number >= {minimum}{upper}", value)
        return float(value)

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise self._bad(key, "true or false", value)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value not in choices:
            raise self._bad(key, "one of " + ", ".join(map(repr, choices)), value)
        return value

    def table(self, key: str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is not None and not isinstance(value, dict):
            raise self._bad(key, "a table", value)
        return value
