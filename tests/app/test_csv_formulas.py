"""No exported cell runs as a spreadsheet formula: text starting with = + - @ tab or CR is neutralised in
every CSV export, web and API; plain numbers stay numbers."""

import csv
import io
import json

import pytest
from django.http import HttpResponse
from django.urls import reverse
from rest_framework.test import APIClient

from reviewapp.api.renderers import CSVRenderer
from reviewapp.selectors.exports import FORMULA_STARTS, csv_cell
from tests.factories import FactorAnnotationFactory
from tests.helpers.reviews import answer, review_set_with_items

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

PAYLOADS = [
    '=HYPERLINK("http://attacker.example","click")',
    '+cmd|" /C calc"!A0',
    "@SUM(A1:A2)",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    "=1+1",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_formula_gets_a_leading_apostrophe(payload):
    assert csv_cell(payload) == "'" + payload


@pytest.mark.parametrize(
    "value", ["-0.25", "+3", "-3", "1e-05", "-1.5E+02", ".5", "hazy base", "", 7, -0.5, None]
)
def test_numbers_and_plain_text_pass_unchanged(value):
    assert csv_cell(value) == value


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def assert_no_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_STARTS) or csv_cell(cell) == cell, cell


@pytest.fixture
def hostile_set(bob):
    """A review set whose answers and factor name are formulas, stored as an API client could store them."""
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=len(PAYLOADS))
    for item, payload in zip(review_set.items.order_by("position"), PAYLOADS, strict=True):
        answer(item, bob, clinical_description=payload, comment=payload)
    item = review_set.items.first()
    FactorAnnotationFactory(
        review_set=review_set, dimension=item.counterfactual.dimension, reader=bob, factor_name=PAYLOADS[0]
    )
    return review_set


def test_the_review_table_neutralises_every_formula_on_the_web(alice_client, hostile_set):
    response = alice_client.get(reverse("export-reviews", args=[hostile_set.pk]))
    rows = cells(b"".join(response.streaming_content).decode())
    header, body = rows[0], rows[1:]
    comments = [row[header.index("comment")] for row in body]

    assert sorted(comments) == sorted("'" + p for p in PAYLOADS)
    assert_no_formula(rows)


@pytest.mark.parametrize("table", ["reviews", "agreement", "dimensions"])
def test_the_api_exports_neutralise_every_formula(alice, hostile_set, table):
    client = APIClient()
    client.force_authenticate(alice)
    response = client.get(f"/api/review-sets/{hostile_set.pk}/export/?table={table}", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200
    rows = cells(b"".join(response.streaming_content).decode())
    assert_no_formula(rows)
    if table == "reviews":
        assert "'-2+3" in {cell for row in rows for cell in row}


def test_the_factor_catalogue_neutralises_a_formula_name_on_the_web_and_the_api(
    alice, alice_client, hostile_set
):
    web = alice_client.get(reverse("export-factors", args=[hostile_set.study_id]))
    client = APIClient()
    client.force_authenticate(alice)
    api = client.get(f"/api/studies/{hostile_set.study_id}/factors-csv/", HTTP_ACCEPT="text/csv")

    for response in (web, api):
        rows = cells(b"".join(response.streaming_content).decode())
        assert_no_formula(rows)
        assert f"bob: {PAYLOADS[0]}" in rows[1][rows[0].index("factor_names")]


def test_negative_numbers_in_the_dimension_table_stay_numbers(alice_client, hostile_set):
    dimension = hostile_set.items.first().counterfactual.dimension
    dimension.mean_low = -0.125
    dimension.save()
    response = alice_client.get(reverse("export-dimensions", args=[hostile_set.sweep_id]))
    rows = cells(b"".join(response.streaming_content).decode())
    assert rows[1][rows[0].index("mean_low")] == "-0.125"


def test_the_api_csv_renderer_writes_errors_as_json_not_as_cells():
    """Only errors reach the renderer: they go out as JSON, which no spreadsheet opens as formulas."""
    response = HttpResponse(status=400)
    data = {"table": ["=1+1 is not a table."], "detail": "@x"}
    text = CSVRenderer().render(data, renderer_context={"response": response}).decode()
    assert json.loads(text) == data
    assert response["Content-Type"] == "application/json"
