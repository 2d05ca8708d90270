"""The reading screen: three labelled panels, blinding, the reader's own positions, and its images."""

import pytest
from django.urls import reverse

from tests.helpers.reviews import assignment_of, items_in_reader_order, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def test_it_shows_original_reconstruction_and_perturbed_with_probabilities(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)

    response = bob_client.get(reverse("review-item", args=[review_set.pk, 1]))

    assert response.status_code == 200
    text = response.text
    for name in ("Original", "Reconstruction", "Perturbed", "Difference"):
        assert name in text
    assert "p(pneumonia) = 0.95" in text  # C(x)
    assert "p(pneumonia) = 0.30" in text  # C(G(S))
    assert "p(pneumonia) = 0.40" in text  # C(perturbed)
    assert "Item <strong>1</strong> / 1" in text


def test_a_blinded_set_hides_the_dimension_direction_and_case(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1, blinded=True)
    item = review_set.items.get()
    dimension = item.counterfactual.dimension

    text = bob_client.get(reverse("review-item", args=[review_set.pk, 1])).text

    assert str(dimension.dim) not in text
    assert "Clamped high" not in text
    assert item.counterfactual.projection.case.original_filename not in text
    assert "Factor A" in text


def test_an_unblinded_set_shows_the_dimension_direction_and_layer(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1, blinded=False)
    dimension = review_set.items.get().counterfactual.dimension

    text = bob_client.get(reverse("review-item", args=[review_set.pk, 1])).text

    assert f"<dd>{dimension.dim}</dd>" in text
    assert "Clamped high" in text
    assert dimension.layer in text


def test_probabilities_can_be_hidden(bob, bob_client):
    review_set = review_set_with_items(
        readers=[bob], dimensions=1, images_per_dimension=1, show_probabilities=False
    )
    assert "p(pneumonia) = 0.95" not in bob_client.get(reverse("review-item", args=[review_set.pk, 1])).text


def test_positions_follow_the_readers_own_order(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=3, images_per_dimension=3)
    third = items_in_reader_order(review_set, bob)[2]

    response = bob_client.get(reverse("review-item-image", args=[review_set.pk, 3, "perturbed"]))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == third.counterfactual.perturbed_image.read()


def test_it_links_to_the_next_items_images_for_preloading(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    text = bob_client.get(reverse("review-item", args=[review_set.pk, 1])).text
    assert (
        f'rel="prefetch" href="{reverse("review-item-image", args=[review_set.pk, 2, "perturbed"])}"' in text
    )


def test_a_position_outside_the_set_is_not_found(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    assert bob_client.get(reverse("review-item", args=[review_set.pk, 3])).status_code == 404
    assert bob_client.get(reverse("review-item", args=[review_set.pk, 0])).status_code == 404


def test_another_readers_set_is_not_found(bob, charlie_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assert charlie_client.get(reverse("review-item", args=[review_set.pk, 1])).status_code == 404
    assert (
        charlie_client.get(reverse("review-item-image", args=[review_set.pk, 1, "original"])).status_code
        == 404
    )


def test_the_screen_is_read_only_after_finalising(bob, bob_client):
    from django.utils import timezone

    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assignment = assignment_of(review_set, bob)
    assignment.finalised_at = timezone.now()
    assignment.save()

    text = bob_client.get(reverse("review-item", args=[review_set.pk, 1])).text

    assert "<fieldset disabled>" in text
    assert "Explore this case" in text
