"""Confidence change in a real browser: before the explanation is shown, its keys do nothing visible and the
page holds none of it; once shown, the before-rating is read-only and a tampered save of it is refused.

Runs Debian's Chromium through Playwright against a live server; skips without Chromium (fails instead with
REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import pytest

from reviewapp.models import Annotation
from tests.app.conftest import PASSWORD
from tests.helpers.browser import chromium, log_in, wait_until
from tests.helpers.reviews import review_set_with_items

pytestmark = [pytest.mark.usefixtures("media_root"), pytest.mark.timeout(300)]

EXPLANATION = ("/reconstruction", "/perturbed", "/difference", "/flicker", "/stack", "/heatmap")

PERTURBED_SHOWN = """() => {
  const reader = document.getElementById('reader');
  const viewport = document.querySelector('[data-panel="perturbed"] .viewport');
  const layer = window.reader.viewer.layers.get(document.querySelector('.layer-perturbed'));
  return getComputedStyle(viewport).visibility !== 'hidden' && layer.values !== null
    && !reader.classList.contains('awaiting-before');
}"""

TAMPER = """async (rating) => {
  const form = document.getElementById('annotation-form');
  const data = new FormData();
  const token = form.querySelector('input[name="csrfmiddlewaretoken"]').value;
  data.set('csrfmiddlewaretoken', token);
  data.set('confidence_before', String(rating));
  data.set('version', form.querySelector('#id_version').value);
  const response = await fetch(window.location.pathname + 'draft', {
    method: 'POST', body: data, headers: {'X-CSRFToken': token, Accept: 'application/json'},
    credentials: 'same-origin'});
  return [response.status, await response.json()];
}"""


def test_the_before_stage_keeps_the_explanation_hidden_and_the_rating_is_then_fixed(live_server, bob):
    review_set = review_set_with_items(
        readers=[bob], dimensions=1, images_per_dimension=1, confidence_change=True
    )
    base = live_server.url
    errors: list[str] = []
    requested: list[str] = []

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("request", lambda request: requested.append(request.url))
        log_in(page, base, "bob", PASSWORD)
        page.goto(f"{base}/reviews/{review_set.pk}/items/1/")
        page.wait_for_selector("#reader[data-viewer-ready='true']")
        assert page.evaluate("document.getElementById('reader').classList.contains('awaiting-before')")

        # Every key of the explanation, and the layouts: nothing of it appears, nothing of it is fetched.
        for key in ("f", "]", "d", "g", "v", "y", "Shift+1"):
            page.keyboard.press(key)
        page.keyboard.down("Space")
        page.wait_for_timeout(300)
        assert not page.evaluate(PERTURBED_SHOWN)
        assert page.evaluate("window.reader.viewer.flickering") is False
        assert page.evaluate("window.reader.viewer.showingUnmodified") is False
        page.keyboard.up("Space")
        assert page.evaluate("document.querySelector('[data-panel=difference]').hidden")
        assert page.evaluate("document.getElementById('gif-overlay').hidden")
        assert page.evaluate("window.reader.viewer.layout") == 3
        assert page.evaluate("document.querySelector('[data-action=flicker]').disabled")
        assert not page.evaluate("document.querySelector('input[name=q1_meaningful]:checked')")
        assert not [url for url in requested if url.endswith(EXPLANATION)]

        # The key help lists the before-stage's keys only, and says so.
        page.keyboard.press("?")
        help_text = page.text_content("#help-overlay")
        assert "only these keys work" in help_text and "Show the explanation" in help_text
        assert "Flicker" not in help_text and "Difference map" not in help_text
        page.keyboard.press("Escape")

        # A digit rates the call; Enter shows the explanation, which freezes the rating.
        page.keyboard.press("4")
        assert page.is_checked('input[name="confidence_before"][value="4"]')
        with page.expect_navigation():
            page.keyboard.press("Enter")
        page.wait_for_selector("#reader[data-viewer-ready='true']")
        wait_until(page, PERTURBED_SHOWN)
        annotation = Annotation.objects.get(item__review_set=review_set, reader=bob)
        assert annotation.confidence_before == 4 and annotation.explanation_shown_at is not None

        assert page.is_disabled('input[name="confidence_before"][value="4"]')
        assert page.is_checked('input[name="confidence_before"][value="4"]')
        assert page.is_visible("#before-frozen-note")
        page.keyboard.press("2")  # now Q2's "possible", not a before-rating
        assert page.is_checked('input[name="q2_pneumonia"][value="possible"]')
        assert page.is_checked('input[name="confidence_before"][value="4"]')
        page.keyboard.press("f")
        assert page.evaluate("window.reader.viewer.flickering") is True
        page.keyboard.press("f")

        status, body = page.evaluate(TAMPER, 1)
        assert status == 409 and "confidence_before" in body["errors"]
        annotation.refresh_from_db()
        assert annotation.confidence_before == 4
    assert errors == []
