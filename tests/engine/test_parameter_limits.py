"""Every option of the engine's configs has bounds in one place (``explain_engine.params``): sequences are
bounded in length and item by item, numbers must be finite, and what would exhaust a worker is refused."""

from __future__ import annotations

import dataclasses
import math

import pytest

from explain_engine.counterfactuals import METHODS, CounterfactualError, make_config, resolve_target
from explain_engine.images import ImageReadError, read_radiograph
from explain_engine.params import param, spec
from explain_engine.sweep import SweepConfig


@dataclasses.dataclass
class Example:
    widths: tuple[int, ...] = param((4, 8), min=1, max=64, max_length=3)
    rate: float = param(0.5, min=0.0, max=1.0)


def test_a_sequence_is_bounded_in_length_and_item_by_item():
    widths = spec(Example, "widths")
    assert widths.problem((1, 64)) is None
    assert widths.problem((1, 2, 3, 4)) == "widths holds at most 3 values, got 4"
    assert widths.problem([1, 65]) == "widths[1] must be at most 64, got 65"
    assert widths.problem([1, "a"]) == "widths[1] must be a number, got 'a'"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_numbers_must_be_finite(value):
    assert "finite" in spec(Example, "rate").problem(value)


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("gci", {"steps": 10**30}, "steps must be at most 10000"),
        ("gci", {"batch_size": 10**9}, "batch_size must be at most 256"),
        ("dip", {"channels": (10**6,) * 4}, "channels[0] must be at most 512"),
        ("dip", {"channels": (8,) * 20}, "channels holds at most 8 values"),
        ("disc", {"dip_channels": (10**6,)}, "dip_channels[0] must be at most 512"),
        ("disc", {"augmentations": 10**6}, "augmentations must be at most 64"),
        ("stylespace", {"ranges_samples": 10**12}, "ranges_samples must be at most 10000000"),
        ("integrated_gradients", {"steps": 10**6}, "steps must be at most 1024"),
        ("gci", {"lr": math.nan}, "lr must be a finite number"),
    ],
)
def test_options_that_would_exhaust_a_worker_are_refused(method, options, message):
    with pytest.raises(CounterfactualError) as error:
        make_config(method, **options)
    assert message in str(error.value)


def test_every_method_option_with_a_number_has_an_upper_bound():
    unbounded = []
    for name, method in METHODS.items():
        for field in dataclasses.fields(method.config):
            kinds = str(field.type)
            if ("int" in kinds or "float" in kinds) and spec(method.config, field.name).max is None:
                unbounded.append(f"{name}.{field.name}")
    assert not unbounded


def test_the_sweep_config_bounds_its_chunks_and_top_k():
    for name in ("batch_size", "image_chunk", "dim_chunk", "screening_top_k"):
        with pytest.raises(ValueError, match=f"{name} must be at most"):
            SweepConfig(**{name: 10**12})


@pytest.mark.parametrize("target", ["-1", "+1 ", "2", "10", "-0x1"])
def test_a_number_other_than_0_or_1_is_not_a_target(target):
    with pytest.raises(CounterfactualError, match="target must be 0, 1"):
        resolve_target(target, "Pneumonia")


@pytest.mark.parametrize(
    ("target", "expected"), [("1", 1), (" 0 ", 0), ("no-pneumonia", 0), ("Pneumonia", 1)]
)
def test_targets_still_read(target, expected):
    assert resolve_target(target, "Pneumonia") == expected


def test_an_unreadable_image_is_named_without_a_python_object():
    with pytest.raises(ImageReadError) as error:
        read_radiograph(b"this is not an image", filename="scan.png")
    assert "object at 0x" not in str(error.value) and "BytesIO" not in str(error.value)
    assert str(error.value).startswith("not a PNG, JPEG, TIFF or BMP image (.png")
