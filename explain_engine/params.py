"""Parameters of the engine's config dataclasses, each with its default and its bounds in one place.

A config field declared with :func:`param` carries its bounds and a short description in the field's metadata;
``check(config)`` enforces them (each config's ``__post_init__`` calls it) and :func:`spec` reads them, so that
callers (a command line, a web form, a database column) take defaults and bounds from the dataclass instead of
writing them again::

    @dataclass
    class Config:
        share: float = param(0.5, min=0.0, max=1.0, help="a share of the images")

    spec(Config, "share")  # ParamSpec(name="share", default=0.5, min=0.0, max=1.0, ...)
    Config.share           # 0.5: a dataclass keeps the default as the class attribute
    Config(share=2.0)      # ValueError: share must be at most 1.0, got 2.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ParamSpec:
    """What a config field accepts: ``default``; ``min`` / ``max`` (inclusive) for numbers; ``choices`` for
    strings; ``optional``: None is allowed (it switches the parameter off); ``max_length``: a sequence field
    holds at most this many items, each of which ``min`` / ``max`` / ``choices`` bound. Numbers must be
    finite (NaN and infinities are refused)."""

    name: str
    default: Any
    min: float | None = None
    max: float | None = None
    choices: tuple | None = None
    optional: bool = False
    help: str = ""
    max_length: int | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of bounds, or None when it is fine."""
        if value is None:
            return None if self.optional else f"{self.name} is required"
        if self.max_length is not None and isinstance(value, list | tuple):
            if len(value) > self.max_length:
                return f"{self.name} holds at most {self.max_length} values, got {len(value)}"
            for index, item in enumerate(value):
                problem = self._item_problem(f"{self.name}[{index}]", item)
                if problem:
                    return problem
            return None
        return self._item_problem(self.name, value)

    def _item_problem(self, name: str, value: Any) -> str | None:
        if self.choices is not None and value not in self.choices:
            return f"{name} must be one of {self.choices}, got {value!r}"
        if self.min is None and self.max is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{name} must be a number, got {value!r}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{name} must be a finite number, got {value!r}"
        if self.min is not None and value < self.min:
            return f"{name} must be at least {self.min}, got {value!r}"
        if self.max is not None and value > self.max:
            return f"{name} must be at most {self.max}, got {value!r}"
        return None


def param(
    default: Any,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: Sequence | None = None,
    optional: bool | None = None,
    help: str = "",
    max_length: int | None = None,
) -> Any:
    """A dataclass field with a default and bounds (``optional`` defaults to ``default is None``;
    ``max_length``: a sequence of at most this many items, each bounded by ``min`` / ``max`` / ``choices``)."""
    metadata = {
        "min": min,
        "max": max,
        "choices": tuple(choices) if choices is not None else None,
        "optional": default is None if optional is None else optional,
        "help": help,
        "max_length": max_length,
    }
    return dataclasses.field(default=default, metadata=metadata)


def spec(config: type | object, name: str) -> ParamSpec:
    """The :class:`ParamSpec` of field ``name`` of a config dataclass (class or instance)."""
    for f in dataclasses.fields(config):
        if f.name == name:
            meta = f.metadata
            return ParamSpec(
                name=name,
                default=f.default,
                min=meta.get("min"),
                max=meta.get("max"),
                choices=meta.get("choices"),
                optional=bool(meta.get("optional", f.default is None)),
                help=meta.get("help", ""),
                max_length=meta.get("max_length"),
            )
    raise KeyError(f"{getattr(config, '__name__', type(config).__name__)} has no parameter {name!r}")


def specs(config: type | object) -> dict[str, ParamSpec]:
    """Every field's :class:`ParamSpec`, by name."""
    return {f.name: spec(config, f.name) for f in dataclasses.fields(config)}


def check(config: object, error: type[Exception] = ValueError) -> None:
    """Raise ``error`` (a ``ValueError`` by default) naming the first field of ``config`` that is out of its
    bounds."""
    for f in dataclasses.fields(config):
        if "min" not in f.metadata:
            continue
        problem = spec(config, f.name).problem(getattr(config, f.name))
        if problem:
            raise error(problem)
