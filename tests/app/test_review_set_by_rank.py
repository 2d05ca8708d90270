"""A review set takes any ranked dimension of its sweep (e.g. the 2nd-10th), not only the selected ones."""

from __future__ import annotations

import pytest
from django import forms
from django.urls import reverse

from reviewapp.forms.sweeps import MAX_RANKED_DIMENSIONS, parse_ranks
from reviewapp.models import ReviewSet
from tests.factories import DimensionEffectFactory, SweepFactory

pytestmark = pytest.mark.django_db


def test_ranks_and_ranges_parse():
    assert parse_ranks("2-4, 9 7", highest=10) == [2, 3, 4, 7, 9]
    assert parse_ranks("4-2", highest=10) == [2, 3, 4]
    assert parse_ranks("", highest=10) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [("0", "outside"), ("3-11", "outside"), ("two", "not a rank"), ("1-2-3", "not a rank")],
)
def test_bad_ranks_are_refused_with_a_reason(text, message):
    with pytest.raises(forms.ValidationError, match=message):
        parse_ranks(text, highest=10)


def test_too_many_ranks_are_refused():
    with pytest.raises(forms.ValidationError, match=f"At most {MAX_RANKED_DIMENSIONS}"):
        parse_ranks(f"1-{MAX_RANKED_DIMENSIONS + 1}", highest=1000)


@pytest.fixture
def ranked_sweep():
    sweep = SweepFactory()
    for rank in range(1, 13):
        DimensionEffectFactory(sweep=sweep, dim=100 + rank, rank=rank, selected=rank == 1)
    return sweep


def form_data(sweep, **extra) -> dict:
    return {
        "name": f"Set of sweep {sweep.pk}",
        "images_per_dimension": 5,
        "min_confidence": 0.9,
        "blinded": "on",
        "instructions": "",
        **extra,
    }


def test_an_admin_adds_the_2nd_to_10th_dimensions_without_a_new_sweep(alice_client, ranked_sweep):
    selected = ranked_sweep.dimension_effects.get(rank=1)

    response = alice_client.post(
        reverse("review-set-new", args=[ranked_sweep.pk]),
        form_data(ranked_sweep, dimensions=[selected.pk], ranks="2-10"),
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    review_set = ReviewSet.objects.get(sweep=ranked_sweep)
    assert review_set.curation["dimensions"] == list(range(101, 111))


def test_ranks_alone_make_a_set(alice_client, ranked_sweep):
    response = alice_client.post(
        reverse("review-set-new", args=[ranked_sweep.pk]), form_data(ranked_sweep, ranks="12")
    )

    assert response.status_code == 302
    assert ReviewSet.objects.get(sweep=ranked_sweep).curation["dimensions"] == [112]


def test_a_rank_beyond_the_sweep_is_a_form_error_and_nothing_is_stored(alice_client, ranked_sweep):
    response = alice_client.post(
        reverse("review-set-new", args=[ranked_sweep.pk]), form_data(ranked_sweep, ranks="13")
    )

    assert response.status_code == 400
    assert "Ranks go from 1 to 12" in response.content.decode()
    assert not ReviewSet.objects.exists()


def test_nothing_ticked_and_no_ranks_is_refused(alice_client, ranked_sweep):
    response = alice_client.post(reverse("review-set-new", args=[ranked_sweep.pk]), form_data(ranked_sweep))

    assert response.status_code == 400
    assert "Tick at least one dimension or add some by rank." in response.content.decode()


def test_a_dimension_page_links_to_a_review_set_of_its_rank(alice_client, ranked_sweep):
    page = alice_client.get(reverse("sweep-dimension", args=[ranked_sweep.pk, 105])).content.decode()
    link = f"{reverse('review-set-new', args=[ranked_sweep.pk])}?ranks=5"
    assert link in page

    form = alice_client.get(link).content.decode()
    assert 'name="ranks"' in form and 'value="5"' in form
