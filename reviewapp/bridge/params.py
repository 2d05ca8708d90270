"""The engine's sweep, selection and curation parameters as the app's model fields see them.

The engine's config dataclasses (``SweepConfig``, ``SelectionConfig``, ``CurationFilters``) own each
parameter's default and bounds. Model fields take theirs from here, ``ModelForm`` s and DRF
``ModelSerializer`` s take them from the model fields, so a bound is written once and checked the same way by
the form, the API and ``full_clean``. Imports only the engine's configs (no app module), so models may use it.
"""

from __future__ import annotations

from typing import Any

from django.core.validators import MaxValueValidator, MinValueValidator

from explain_engine.params import ParamSpec, spec
from explain_engine.selection import AGGREGATES, CurationFilters, SelectionConfig
from explain_engine.sweep import MODES, SweepConfig

__all__ = [
    "AGGREGATES",
    "CURATION_PARAMETERS",
    "MODES",
    "CurationFilters",
    "SelectionConfig",
    "SweepConfig",
    "curation_default",
    "field_options",
    "selection_default",
    "sweep_default",
    "validators",
]

#: Curation parameters a review set is made with (papers/003 3.1), in the order of ``CurationFilters``.
CURATION_PARAMETERS = (
    "images_per_dimension",
    "min_confidence",
    "min_psnr",
    "min_ssim",
    "max_perceptual",
    "max_prob_diff",
)


def validators(parameter: ParamSpec) -> list:
    """Django validators of a parameter's numeric bounds."""
    found: list = []
    if parameter.min is not None:
        found.append(MinValueValidator(parameter.min))
    if parameter.max is not None:
        found.append(MaxValueValidator(parameter.max))
    return found


def field_options(config: type, name: str, **options: Any) -> dict[str, Any]:
    """Keyword arguments of the model field of parameter ``name`` of ``config``: its default, its validators
    and, for a parameter that None switches off, ``null``/``blank``; ``options`` are added (labels, help)."""
    parameter = spec(config, name)
    found: dict[str, Any] = {"validators": validators(parameter)}
    if parameter.default is not None:
        found["default"] = parameter.default
    if parameter.optional:
        found.update(null=True, blank=True)
    found.update(options)
    return found


def sweep_default(name: str) -> Any:
    return spec(SweepConfig, name).default


def selection_default(name: str) -> Any:
    return spec(SelectionConfig, name).default


def curation_default(name: str) -> Any:
    return spec(CurationFilters, name).default
