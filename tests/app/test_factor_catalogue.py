"""The factor catalogue of a study: every reviewed dimension, its names per reader, majority and examples."""

import csv
import io

import pytest
from django.urls import reverse

from tests.factories import FactorAnnotationFactory
from tests.helpers.reviews import review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def test_it_lists_each_dimension_with_every_readers_name_and_the_majority(alice_client, bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=2, images_per_dimension=2)
    dimension = review_set.items.get(position=1).counterfactual.dimension
    FactorAnnotationFactory(review_set=review_set, dimension=dimension, reader=bob, factor_name="hazy RML")
    FactorAnnotationFactory(
        review_set=review_set, dimension=dimension, reader=charlie, factor_name="right heart border blur"
    )

    response = alice_client.get(reverse("factor-catalogue", args=[review_set.study_id]))

    text = response.text
    assert response.status_code == 200
    assert "Dimension 1980" in text and "Dimension 2743" in text
    assert "hazy RML" in text and "right heart border blur" in text
    assert "clinically relevant" in text
    assert reverse("media", args=[review_set.items.get(position=1).counterfactual.stack_image.name]) in text


def test_it_exports_as_csv(alice_client, bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=1)
    dimension = review_set.items.get().counterfactual.dimension
    FactorAnnotationFactory(review_set=review_set, dimension=dimension, reader=bob, pneumonia_relevance="yes")
    FactorAnnotationFactory(
        review_set=review_set, dimension=dimension, reader=charlie, pneumonia_relevance="no"
    )

    response = alice_client.get(reverse("export-factors", args=[review_set.study_id]))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))

    assert len(rows) == 1
    assert rows[0]["style_dimension"] == "1980"
    assert rows[0]["readers"] == "2"
    assert rows[0]["pneumonia_majority"] == "split"
    assert rows[0]["clinical_majority"] == "yes"
    assert "bob: right heart border blurring" in rows[0]["factor_names"]


def test_the_api_exports_the_catalogue_too(alice_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=2, images_per_dimension=1)
    response = alice_client.get(f"/api/studies/{review_set.study_id}/factors-csv/")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["style_dimension"] for r in rows] == ["1980", "2743"]
