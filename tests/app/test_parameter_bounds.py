"""Sweep, selection and curation parameters: the engine's config dataclasses own each default and bound, the
model fields take them, and the form, the API and ``full_clean`` refuse the same values."""

import dataclasses

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from rest_framework.test import APIClient

from explain_engine.params import spec
from explain_engine.selection import CurationFilters, SelectionConfig
from explain_engine.sweep import SweepConfig
from reviewapp.api.serializers import SweepLaunchSerializer
from reviewapp.forms.sweeps import ReviewSetForm, SweepForm
from reviewapp.models import Case, DimensionEffect, ReviewSet, Sweep
from tests.factories import ProjectionFactory, StudyFactory, SweepFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

SWEEP_FIELDS = {
    "mode": SweepConfig,
    "screening_top_k": SweepConfig,
    "aggregate": SelectionConfig,
    "delta": SelectionConfig,
    "min_fraction": SelectionConfig,
    "strongest_k": SelectionConfig,
}
REVIEW_SET_FIELDS = {name: CurationFilters for name in ReviewSet.CURATION_FIELDS}


def _limits(field) -> tuple:
    """The bounds declared on the field (not those the database backend adds to integer fields)."""
    declared = field._validators
    low = [v.limit_value for v in declared if isinstance(v, MinValueValidator)]
    high = [v.limit_value for v in declared if isinstance(v, MaxValueValidator)]
    return (low[0] if low else None, high[0] if high else None)


@pytest.mark.parametrize(
    ("model", "name", "config"),
    [(Sweep, name, config) for name, config in SWEEP_FIELDS.items()]
    + [(ReviewSet, name, config) for name, config in REVIEW_SET_FIELDS.items()],
)
def test_model_fields_take_default_and_bounds_from_the_engine(model, name, config):
    field = model._meta.get_field(name)
    parameter = spec(config, name)
    default = field.default if field.has_default() else None
    assert default == parameter.default
    assert _limits(field) == (parameter.min, parameter.max)
    assert field.null == parameter.optional
    if field.choices:
        assert {value for value, _ in field.choices} <= set(parameter.choices)


def test_the_model_choices_cover_every_aggregate():
    assert {value for value, _ in Sweep.Aggregate.choices} == set(spec(SelectionConfig, "aggregate").choices)


def test_the_engine_refuses_out_of_bounds_configs():
    with pytest.raises(ValueError, match="delta must be at most 1.0"):
        SelectionConfig(delta=1.5)
    with pytest.raises(ValueError, match="images_per_dimension must be at least 1"):
        CurationFilters(images_per_dimension=0)
    with pytest.raises(ValueError, match="dim_chunk must be at least 1"):
        SweepConfig(dim_chunk=0)
    assert dataclasses.asdict(CurationFilters(min_psnr=None, max_prob_diff=None))["min_psnr"] is None


# The same out-of-bounds values, each refused by the form, the API serializer and the model.
SWEEP_BAD = [
    ("delta", -0.1),
    ("delta", 1.5),
    ("min_fraction", 2.0),
    ("screening_top_k", 0),
    ("strongest_k", 0),
    ("strongest_k", 5001),
    ("aggregate", "median"),
]
SWEEP_GOOD = [("delta", 0.0), ("delta", 1.0), ("strongest_k", 5000), ("strongest_k", None)]
REVIEW_SET_BAD = [
    ("images_per_dimension", 0),
    ("images_per_dimension", 51),
    ("min_confidence", 1.2),
    ("min_ssim", -1.5),
    ("max_perceptual", -1.0),
    ("max_prob_diff", 1.5),
    ("min_psnr", -3.0),
]
REVIEW_SET_GOOD = [("images_per_dimension", 50), ("min_confidence", 0.0), ("min_psnr", None)]


def _sweep_form_data(**change) -> dict:
    data = {
        "mode": "exact",
        "screening_top_k": 64,
        "aggregate": "mean_abs",
        "delta": 0.3,
        "min_fraction": 0.1,
    }
    data.update(change)
    return {key: "" if value is None else value for key, value in data.items()}


def _sweep_verdicts(name, value) -> tuple[bool, bool, bool]:
    form = SweepForm(_sweep_form_data(**{name: value}), cases=Case.objects.none())
    study = StudyFactory()
    serializer = SweepLaunchSerializer(data={"study": study.pk, name: value})
    sweep = Sweep(study=study, **{name: value})
    try:
        sweep.full_clean(exclude=["study", "job"])
        model_ok = True
    except ValidationError as error:
        assert name in error.message_dict
        model_ok = False
    form_ok = form.is_valid()
    api_ok = serializer.is_valid()
    if not form_ok:
        assert name in form.errors
    if not api_ok:
        assert name in serializer.errors
    return form_ok, api_ok, model_ok


@pytest.mark.parametrize(("name", "value"), SWEEP_BAD)
def test_form_api_and_model_refuse_the_same_sweep_values(name, value):
    assert _sweep_verdicts(name, value) == (False, False, False)


@pytest.mark.parametrize(("name", "value"), SWEEP_GOOD)
def test_form_api_and_model_accept_the_same_sweep_values(name, value):
    assert _sweep_verdicts(name, value) == (True, True, True)


def _review_set_verdicts(name, value) -> tuple[bool, bool]:
    data = {
        "name": "Set",
        "dimensions": [],
        "images_per_dimension": 5,
        "min_confidence": 0.9,
        "blinded": "on",
    }
    data[name] = "" if value is None else value
    form = ReviewSetForm(data, dimensions=DimensionEffect.objects.all())
    form.fields["dimensions"].required = False
    sweep = SweepFactory()
    review_set = ReviewSet(study=sweep.study, sweep=sweep, name="Set", **{name: value})
    try:
        review_set.full_clean(exclude=["study", "sweep", "job"])
        model_ok = True
    except ValidationError as error:
        assert name in error.message_dict
        model_ok = False
    form_ok = form.is_valid()
    if not form_ok:
        assert name in form.errors, form.errors
    return form_ok, model_ok


@pytest.mark.parametrize(("name", "value"), REVIEW_SET_BAD)
def test_form_and_model_refuse_the_same_review_set_values(name, value):
    assert _review_set_verdicts(name, value) == (False, False)


@pytest.mark.parametrize(("name", "value"), REVIEW_SET_GOOD)
def test_form_and_model_accept_the_same_review_set_values(name, value):
    assert _review_set_verdicts(name, value) == (True, True)


def test_the_api_refuses_an_out_of_bounds_delta_with_a_field_error(alice):
    client = APIClient()
    client.force_authenticate(alice)
    study = StudyFactory(ranges_path="studies/1/ranges.pt")
    ProjectionFactory(case__study=study)
    response = client.post("/api/sweeps/", {"study": study.pk, "delta": 1.5}, format="json")
    assert response.status_code == 400
    assert "delta" in response.json()
    assert not Sweep.objects.exists()


def test_the_api_shows_the_review_sets_curation_parameters(alice):
    sweep = SweepFactory()
    review_set = ReviewSet.objects.create(study=sweep.study, sweep=sweep, name="Set", min_confidence=0.5)
    from reviewapp.api.serializers import ReviewSetSerializer

    data = ReviewSetSerializer(review_set, context={}).data
    assert data["min_confidence"] == 0.5 and data["images_per_dimension"] == 5 and data["min_psnr"] == 25.0
