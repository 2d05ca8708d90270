"""Explore mode: sliders over style dimensions of a case, regenerated on the server."""

import io

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from explain_engine.ranges import StyleRanges
from reviewapp.bridge.files import media_path
from tests.factories import ProjectionFactory, npy_bytes
from tests.helpers.reviews import assignment_of, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.fixture
def case(tiny_study):
    """A case of the tiny study whose projection is the mean style vector."""
    ranges = StyleRanges.load(media_path(tiny_study.ranges_path))
    styles = ContentFile(npy_bytes(ranges.mean.numpy().astype(np.float32)), name="styles.npy")
    projection = ProjectionFactory(case__study=tiny_study, styles_file=styles)
    return projection.case


def render(client, case, *changes):
    return client.get(reverse("explore-render", args=[case.pk]), {"s": list(changes)})


def decode(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    import base64

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))))


def test_the_page_has_a_slider_per_selected_or_requested_dimension(alice_client, case):
    response = alice_client.get(reverse("explore-case", args=[case.pk]), {"dims": "3,7"})
    assert response.status_code == 200
    sliders = response.context["sliders"]
    assert [s.dim for s in sliders][:2] == [3, 7]
    assert all(s.minimum <= s.low <= s.high <= s.maximum for s in sliders)


def test_moving_a_dimension_regenerates_the_image_and_its_probability(alice_client, case, tiny_study):
    ranges = StyleRanges.load(media_path(tiny_study.ranges_path))
    unchanged = render(alice_client, case).json()
    dims = range(0, ranges.dims, 7)
    moved = render(alice_client, case, *(f"{d}:{float(ranges.maximum[d]) * 3}" for d in dims)).json()

    assert 0.0 <= unchanged["probability"] <= 1.0
    assert decode(unchanged["image"]).shape == (16, 16)
    assert not np.array_equal(decode(unchanged["image"]), decode(moved["image"]))
    assert moved["probability"] != unchanged["probability"]
    assert moved["milliseconds"] < 300


@pytest.mark.parametrize(
    "change, message",
    [("abc", "DIMENSION:VALUE"), ("999999:1", "outside StyleSpace"), ("3:nan", "out of range")],
)
def test_bad_changes_get_a_clear_400(alice_client, case, change, message):
    response = render(alice_client, case, change)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_reviewers_explore_only_after_finalising_a_set_that_shows_the_case(bob, bob_client, case):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    item = review_set.items.get()
    item.counterfactual.projection = case.projections.get()
    item.counterfactual.save()

    assert bob_client.get(reverse("explore-case", args=[case.pk])).status_code == 404
    assert render(bob_client, case).status_code == 404

    assignment = assignment_of(review_set, bob)
    assignment.finalised_at = timezone.now()
    assignment.save()

    assert bob_client.get(reverse("explore-case", args=[case.pk])).status_code == 200
    assert render(bob_client, case).status_code == 200
    assert bob_client.get(reverse("explore-image", args=[case.pk, "reconstruction"])).status_code == 200
