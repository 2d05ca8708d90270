"""Images are served only to people who may see them, with private cache headers and ETags."""

import pytest
from django.urls import reverse

from tests.helpers.reviews import review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


@pytest.mark.parametrize(
    "kind", ["original", "reconstruction", "perturbed", "difference", "flicker", "stack"]
)
def test_every_image_of_an_item_is_served_to_its_reader(bob, bob_client, kind):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    response = bob_client.get(reverse("review-item-image", args=[review_set.pk, 1, kind]))
    assert response.status_code == 200
    assert response["Content-Type"] == ("image/gif" if kind == "flicker" else "image/png")


def test_images_are_cached_privately_and_revalidated_with_an_etag(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    url = reverse("review-item-image", args=[review_set.pk, 1, "perturbed"])

    first = bob_client.get(url)
    again = bob_client.get(url, HTTP_IF_NONE_MATCH=first["ETag"])

    assert "private" in first["Cache-Control"]
    assert "max-age=3600" in first["Cache-Control"]
    assert first["ETag"].startswith('"')
    assert again.status_code == 304


def test_an_unknown_image_kind_is_not_found(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    assert bob_client.get(reverse("review-item-image", args=[review_set.pk, 1, "styles"])).status_code == 404


def test_media_files_are_for_admins_only(bob, bob_client, alice_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    name = review_set.items.get().counterfactual.perturbed_image.name
    url = reverse("media", args=[name])

    assert alice_client.get(url).status_code == 200
    assert bob_client.get(url).status_code == 403


def test_media_needs_a_log_in(client, alice):
    response = client.get(reverse("media", args=["cases/anything.png"]))
    assert response.status_code == 302
    assert reverse("login") in response.url


def test_a_path_outside_the_media_folder_is_refused(alice_client):
    response = alice_client.get("/media/../../etc/passwd")
    assert response.status_code in (400, 404)


def test_a_missing_file_is_not_found(alice_client):
    assert alice_client.get(reverse("media", args=["cases/missing.png"])).status_code == 404
