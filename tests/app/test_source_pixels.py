"""The original's source pixels for window/level: depth kept, the square the study's PNG shows, the DICOM's
own window, served only to the reader of the item."""

import io
import json
import struct

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from reviewapp.bridge.cases import case_source_pixels
from tests.helpers.reviews import items_in_reader_order, review_set_with_items
from tests.helpers.studies import dicom_bytes

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def png16(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def parse(body: bytes) -> tuple[dict, np.ndarray]:
    (length,) = struct.unpack("<I", body[:4])
    info = json.loads(body[4 : 4 + length])
    values = np.frombuffer(body[4 + length :], dtype="<u2").reshape(info["height"], info["width"])
    return info, values


def item_with_source(bob, data: bytes, name: str):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    item = items_in_reader_order(review_set, bob)[0]
    item.case.source_file.save(name, ContentFile(data), save=True)
    return review_set, item


def test_a_16_bit_png_keeps_its_values_cropped_to_the_centre_square(bob, bob_client):
    values = np.arange(6 * 10, dtype=np.uint16).reshape(6, 10) * 1000 + 7
    review_set, _ = item_with_source(bob, png16(values), "film.png")

    response = bob_client.get(reverse("review-item-source-pixels", args=[review_set.pk, 1]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert "private" in response["Cache-Control"]
    info, pixels = parse(response.content)
    assert (info["width"], info["height"], info["bits"], info["format"]) == (6, 6, 16, "png")
    assert (info["low"], info["high"], info["windows"], info["invert"]) == (0.0, 65535.0, [], False)
    source = pixels * info["slope"] + info["intercept"]
    np.testing.assert_array_equal(source, values[:, 2:8])


def test_a_dicom_gives_its_own_window_and_its_stored_values(bob):
    pixels = np.tile(np.arange(0, 4000, 250, dtype=np.uint16), (16, 1))
    _, item = item_with_source(bob, dicom_bytes(pixels, window=(1500, 800)), "film.dcm")

    source = case_source_pixels(item.case)

    assert source is not None
    assert source.windows == [{"name": "DICOM window 1", "center": 1500.0, "width": 800.0}]
    assert (source.low, source.high, source.bits, source.source_format) == (1100.0, 1900.0, 12, "dicom")
    np.testing.assert_array_equal(source.values * source.slope + source.intercept, pixels)


def test_a_large_film_is_resampled_to_the_longest_side_sent(bob):
    values = np.full((40, 40), 30000, dtype=np.uint16)
    _, item = item_with_source(bob, png16(values), "film.png")

    source = case_source_pixels(item.case, max_side=16)

    assert source.values.shape == (16, 16)
    assert set(np.unique(source.values * source.slope + source.intercept)) == {30000}


def test_no_source_or_an_unreadable_one_is_not_found(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    url = reverse("review-item-source-pixels", args=[review_set.pk, 1])
    assert bob_client.get(url).status_code == 404

    item = review_set.items.get()
    item.case.source_file.save("broken.png", ContentFile(b"not an image"), save=True)
    assert bob_client.get(url).status_code == 404


def test_another_reader_cannot_fetch_the_source(bob, charlie_client):
    review_set, _ = item_with_source(bob, png16(np.zeros((4, 4), dtype=np.uint16)), "film.png")
    url = reverse("review-item-source-pixels", args=[review_set.pk, 1])
    assert charlie_client.get(url).status_code == 404


def test_the_reading_screen_links_the_source_pixels_and_preloads_the_next_ones(bob, bob_client):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    first, second = items_in_reader_order(review_set, bob)
    second.case.source_file.save("film.png", ContentFile(png16(np.zeros((4, 4)))), save=True)

    first_page = bob_client.get(reverse("review-item", args=[review_set.pk, 1])).text
    second_page = bob_client.get(reverse("review-item", args=[review_set.pk, 2])).text

    source_of_second = reverse("review-item-source-pixels", args=[review_set.pk, 2])
    assert '"sourceUrl": null' in first_page
    assert f'"preloadSource": "{source_of_second}"' in first_page
    assert f'"sourceUrl": "{source_of_second}"' in second_page
