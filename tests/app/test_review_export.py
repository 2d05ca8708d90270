"""CSV exports: the review table of Appendix A Table 1 and more, streamed; agreement and dimension tables."""

import csv
import io
import re
from pathlib import Path

import pytest
from django.urls import reverse

from reviewapp.selectors import exports
from tests.factories import DimensionEffectFactory
from tests.helpers.reviews import answer, answer_all, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]


def read_csv(response) -> list[dict]:
    assert response.streaming
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_review_table_has_one_row_per_reader_and_item_in_table_1_order(alice_client, bob, charlie):
    review_set = review_set_with_items(
        readers=[bob, charlie], dimensions=2, images_per_dimension=2, name="Set A"
    )
    answer_all(
        review_set,
        bob,
        [
            {
                "clinical_description": "slight increase in density along right heart border",
                "q2_pneumonia": "possible",
            },
            {
                "clinical_description": "blurring right heart border",
                "q2_pneumonia": "subtle",
                "confidence": 4,
            },
            {"q1_meaningful": False, "clinical_description": "", "q2_pneumonia": "no"},
            {"clinical_description": "left basal increased opacity", "q2_pneumonia": "yes"},
        ],
    )
    answer_all(review_set, charlie)

    response = alice_client.get(reverse("export-reviews", args=[review_set.pk]))
    rows = read_csv(response)

    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    assert list(rows[0])[:4] == [
        "style_dimension",
        "image_index",
        "clinical_relevance",
        "pneumonia_relevance",
    ]
    assert list(rows[0]) == exports.header(exports.REVIEW_COLUMNS)
    assert len(rows) == 8
    bobs = [r for r in rows if r["reader"] == "bob"]
    assert [(r["style_dimension"], r["image_index"], r["pneumonia_relevance"]) for r in bobs] == [
        ("1980", "1", "possible"), ("1980", "2", "subtle"), ("2743", "3", "no"), ("2743", "4", "yes"),
    ]  # fmt: skip
    assert bobs[2]["clinical_relevance"] == "no"
    assert bobs[2]["semantically_meaningful"] == "no"
    assert bobs[1]["confidence"] == "4"
    assert bobs[1]["pneumonia_relevant"] == "yes"
    assert bobs[0]["prob_perturbed"] == "0.4"
    assert bobs[0]["probability_change"] == "0.1"
    assert bobs[0]["review_set"] == "Set A"
    assert bobs[0]["status"] == "submitted"


def test_drafts_are_left_out_unless_asked_for(alice_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    first, second = review_set.items.order_by("position")
    answer(first, bob)
    answer(second, bob, is_draft=True)
    url = reverse("export-reviews", args=[review_set.pk])

    assert len(read_csv(alice_client.get(url))) == 1
    assert [r["status"] for r in read_csv(alice_client.get(url + "?drafts=1"))] == ["submitted", "draft"]


def test_the_review_table_streams_many_rows(alice_client, bob, django_assert_max_num_queries):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    item = review_set.items.get()
    from reviewapp.models import Annotation
    from tests.factories import UserFactory

    readers = UserFactory.create_batch(2500)
    Annotation.objects.bulk_create(
        Annotation(item=item, reader=reader, q1_meaningful=False, q2_pneumonia="no", is_draft=False)
        for reader in readers
    )
    response = alice_client.get(reverse("export-reviews", args=[review_set.pk]))
    with django_assert_max_num_queries(6):  # chunks of 2000 rows, not one query per row
        rows = read_csv(response)
    assert len(rows) == 2500


def test_the_sweep_dimension_table_lists_every_dimension_strongest_first(alice_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=2, images_per_dimension=1)
    DimensionEffectFactory(
        sweep=review_set.sweep,
        rank=3,
        dim=7,
        selected=False,
        effect=0.01,
        effect_lower=0.005,
        effect_upper=0.02,
        frequency=0.25,
        borderline=True,
        borderline_reason="within the deltas' numeric tolerance 0.027 of the threshold 0.03",
    )

    rows = read_csv(alice_client.get(reverse("export-dimensions", args=[review_set.sweep_id])))

    assert list(rows[0]) == exports.header(exports.DIMENSION_COLUMNS)
    assert [r["style_dimension"] for r in rows] == ["1980", "2743", "7"]
    assert [r["selected"] for r in rows] == ["yes", "yes", "no"]
    assert (rows[2]["effect_lower"], rows[2]["effect_upper"], rows[2]["selection_frequency"]) == (
        "0.005",
        "0.02",
        "0.25",
    )
    assert [r["borderline"] for r in rows] == ["no", "no", "yes"]
    assert rows[2]["borderline_reason"].startswith("within the deltas' numeric tolerance")
    assert rows[0]["effect_lower"] == ""  # no interval stored


def test_the_agreement_table_has_a_row_per_question(alice_client, bob, charlie):
    review_set = review_set_with_items(readers=[bob, charlie], dimensions=1, images_per_dimension=2)
    answer_all(review_set, bob, [{"q1_meaningful": True}, {"q1_meaningful": False}])
    answer_all(review_set, charlie, [{"q1_meaningful": True}, {"q1_meaningful": False}])

    rows = read_csv(alice_client.get(reverse("export-agreement", args=[review_set.pk])))

    assert [r["question"] for r in rows] == ["q1_meaningful", "q2_pneumonia", "q2_relevant"]
    assert rows[0]["kappa"] == "1.0000"
    assert rows[0]["items"] == "2"
    assert rows[0]["readers"] == "2"


def test_the_dimension_verdicts_table(alice_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=2, images_per_dimension=1)
    answer_all(review_set, bob)
    rows = read_csv(alice_client.get(reverse("export-agreement", args=[review_set.pk]) + "?table=dimensions"))
    assert list(rows[0]) == exports.header(exports.SUMMARY_COLUMNS)
    assert len(rows) == 2


def test_exports_are_for_admins_only(bob_client, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=1)
    for name, pk in (
        ("export-reviews", review_set.pk),
        ("export-agreement", review_set.pk),
        ("export-dimensions", review_set.sweep_id),
        ("export-factors", review_set.study_id),
    ):
        assert bob_client.get(reverse(name, args=[pk])).status_code == 403


def test_every_column_is_documented():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "exports.md").read_text()
    documented = set(re.findall(r"^\| `(\w+)` \|", guide, flags=re.MULTILINE))
    for columns in (
        exports.REVIEW_COLUMNS,
        exports.DIMENSION_COLUMNS,
        exports.AGREEMENT_COLUMNS,
        exports.SUMMARY_COLUMNS,
        exports.FACTOR_COLUMNS,
        exports.AUDIT_COLUMNS,
    ):
        assert set(exports.header(columns)) <= documented
