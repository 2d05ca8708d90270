"""The simulated reviewer of bench/load.py does what the reading screen does, without an error, against the live
app (the bench itself, with gunicorn, PostgreSQL and Redis, runs outside the test suite)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from reviewapp.models import Annotation
from tests.app.conftest import PASSWORD
from tests.helpers.reviews import review_set_with_items

pytestmark = pytest.mark.usefixtures("media_root")
BENCH = Path(__file__).resolve().parents[2] / "bench" / "load.py"


@pytest.fixture
def load_bench(monkeypatch):
    spec = importlib.util.spec_from_file_location("load_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "load_bench", module)  # its dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "PASSWORD", PASSWORD)
    return module


def test_a_simulated_reviewer_logs_in_reads_autosaves_and_submits(live_server, load_bench, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    port = urlsplit(live_server.url).port
    results = load_bench.Results()
    reviewer = load_bench.Reviewer(port, "bob", review_set.pk, results, think=0.0)

    assert reviewer.log_in()
    reviewer.read_item(1)
    reviewer.read_item(2)

    assert dict(results.errors) == {}, results.error_samples
    counts = {kind: len(values) for kind, values in results.latencies.items()}
    assert counts == {"log-in": 2, "reading screen": 2, "image": 12, "autosave": 4, "submit": 2}
    answers = Annotation.objects.filter(reader=bob, item__review_set=review_set)
    assert answers.count() == 2
    assert all(not answer.is_draft and answer.q1_meaningful is False for answer in answers)
    summary = load_bench.report(results, seconds=1.0)
    assert summary["errors"] == 0 and summary["kinds"]["image"]["requests"] == 12
