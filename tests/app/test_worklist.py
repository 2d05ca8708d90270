"""A reviewer's worklist: their own sets with progress, resuming, and a stable per-reader order."""

import pytest
from django.urls import reverse

from reviewapp.models import ReviewSet
from reviewapp.selectors.reviews import reader_item_ids, worklist_for_reader
from tests.helpers.reviews import answer, assignment_of, items_in_reader_order, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def test_it_lists_the_reviewers_sets_with_progress(bob, bob_client, charlie):
    review_set = review_set_with_items(
        readers=[bob, charlie], dimensions=2, images_per_dimension=3, name="Chest set"
    )
    first, second = items_in_reader_order(review_set, bob)[:2]
    answer(first, bob)
    answer(second, bob, is_draft=True)
    answer(first, charlie)

    response = bob_client.get(reverse("worklist"))

    assert response.status_code == 200
    assert "Chest set" in response.text
    assert "1 / 6" in response.text
    assert "1 draft" in response.text


def test_the_home_page_shows_the_worklist_to_reviewers(bob, bob_client):
    review_set_with_items(readers=[bob], name="Home set")
    assert "Home set" in bob_client.get(reverse("home")).text


def test_it_shows_no_set_the_reviewer_is_not_assigned_to(bob, bob_client, charlie):
    review_set_with_items(readers=[charlie], name="Charlie only")
    response = bob_client.get(reverse("worklist"))
    assert "Charlie only" not in response.text
    assert "Nothing to review yet" in response.text


def test_it_hides_sets_that_are_still_rendering(bob):
    review_set_with_items(readers=[bob], status=ReviewSet.Status.RENDERING)
    assert worklist_for_reader(reader=bob) == []


def test_resume_opens_the_first_unanswered_item_in_the_readers_order(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=2, images_per_dimension=2)
    items = items_in_reader_order(review_set, bob)
    answer(items[0], bob)
    answer(items[1], bob, is_draft=True)

    response = bob_client.get(reverse("review-set-resume", args=[review_set.pk]))

    assert response.url == reverse("review-item", args=[review_set.pk, 2])


def test_resume_goes_to_the_overview_when_everything_is_answered(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    for item in review_set.items.all():
        answer(item, bob)
    response = bob_client.get(reverse("review-set-resume", args=[review_set.pk]))
    assert response.url == reverse("review-set", args=[review_set.pk])


def test_each_reader_gets_an_own_order_that_stays_the_same(bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=4, images_per_dimension=5)
    bob_order = reader_item_ids(assignment=assignment_of(review_set, bob))
    charlie_order = reader_item_ids(assignment=assignment_of(review_set, charlie))

    assert sorted(bob_order) == sorted(charlie_order)
    assert bob_order != charlie_order  # 20! orders: equal seeds aside, a clash is practically impossible
    assert reader_item_ids(assignment=assignment_of(review_set, bob)) == bob_order


def test_a_set_that_does_not_randomise_keeps_the_curation_order(bob):
    review_set = review_set_with_items(
        readers=[bob], dimensions=2, images_per_dimension=3, randomise_order=False
    )
    order = reader_item_ids(assignment=assignment_of(review_set, bob))
    assert order == list(review_set.items.order_by("position").values_list("pk", flat=True))


def test_admins_have_no_worklist_page(alice_client):
    assert alice_client.get(reverse("worklist")).status_code == 403
