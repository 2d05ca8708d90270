"""A mixed review set in a real browser: a reader answers a counterfactual item and a saliency item (with the
confidence change before and after the explanation), and the results page compares the two arms.

Runs Debian's Chromium through Playwright against a live server; skips without Chromium (fails instead with
REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import pytest

from reviewapp.models import Annotation
from reviewapp.services.lab import lab_run_add_to_review_set
from tests.app.conftest import PASSWORD
from tests.factories import SaliencyRunFactory
from tests.helpers.browser import chromium, log_in, wait_until
from tests.helpers.reviews import items_in_reader_order, review_set_with_items

pytestmark = [pytest.mark.usefixtures("media_root"), pytest.mark.timeout(300)]

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


def visible(page, selector: str) -> bool:
    return page.evaluate(
        """(selector) => { const e = document.querySelector(selector);
           if (!e) return false; const s = getComputedStyle(e);
           return e.offsetParent !== null && s.visibility !== 'hidden' && s.display !== 'none'; }""",
        selector,
    )


def test_a_reader_answers_a_mixed_set_and_the_results_compare_the_arms(live_server, alice, bob):
    review_set = review_set_with_items(
        readers=[bob],
        dimensions=1,
        images_per_dimension=1,
        name="Mixed",
        blinded=True,
        confidence_change=True,
    )
    saliency = lab_run_add_to_review_set(
        run=SaliencyRunFactory(study=review_set.study), review_set=review_set
    )
    order = items_in_reader_order(review_set, bob)
    base = live_server.url
    errors: list[str] = []

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.add_init_script(COLLECT_VIOLATIONS)
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, base, "bob", PASSWORD)
        for position, item in enumerate(order, start=1):
            page.goto(f"{base}/reviews/{review_set.pk}/items/{position}/")
            page.wait_for_selector("#reader[data-viewer-ready='true']")
            # The explanation and its questions wait for the rating of the call from the original alone.
            assert page.evaluate("document.getElementById('reader').classList.contains('awaiting-before')")
            assert visible(page, '[data-panel="original"] .viewport')
            assert not visible(page, '[data-panel="perturbed"] .viewport')
            assert not visible(page, "#confidence-after")
            page.check('input[name="confidence_before"][value="2"]')
            with page.expect_navigation():  # the server records the showing; the page loads the explanation
                page.click("#show-explanation")
            page.wait_for_selector("#reader[data-viewer-ready='true']")
            assert not page.evaluate(
                "document.getElementById('reader').classList.contains('awaiting-before')"
            )
            assert visible(page, '[data-panel="perturbed"] .viewport') and visible(page, "#confidence-after")
            if item.pk == saliency.pk:
                assert page.locator('input[name="q1_meaningful"]').count() == 0
                page.fill("#heat-opacity", "20")
                wait_until(page, "getComputedStyle(document.getElementById('heat-layer')).opacity === '0.2'")
                assert page.text_content("#heat-opacity-value") == "20%"
                wait_until(page, "document.getElementById('heat-layer').complete")
                assert page.evaluate("document.getElementById('heat-layer').naturalWidth") > 0
                page.check('input[name="saliency_relevant"][value="yes"]')
                page.select_option("#id_region", "right_lower")
            else:
                assert page.locator("#heat-opacity").count() == 0
                page.check('input[name="q1_meaningful"][value="yes"]')
                page.fill("#id_clinical_description", "new opacity at the right base")
                page.check('input[name="q2_pneumonia"][value="possible"]')
            page.check('input[name="confidence_after"][value="4"]')
            page.click("#submit-button")
            page.wait_for_url(lambda url, p=position: f"/items/{p}/" not in url)
        assert page.evaluate("window.__cspViolations") == []

        answers = {a.item_id: a for a in Annotation.objects.filter(item__review_set=review_set, reader=bob)}
        assert all(not a.is_draft for a in answers.values()) and len(answers) == 2
        assert answers[saliency.pk].saliency_relevant is True and answers[saliency.pk].region == "right_lower"
        assert {(a.confidence_before, a.confidence_after) for a in answers.values()} == {(2, 4)}

        page = browser.new_page(viewport={"width": 1440, "height": 900})  # a context of its own
        page.add_init_script(COLLECT_VIOLATIONS)
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, base, "alice", PASSWORD)
        page.goto(f"{base}/review-sets/{review_set.pk}/results/")
        counterfactual_row = page.locator('#arms tr[data-arm="counterfactual"]')
        saliency_row = page.locator('#arms tr[data-arm="saliency"]')
        assert "Counterfactual" in counterfactual_row.text_content()
        assert "Saliency map" in saliency_row.text_content()
        for row in (counterfactual_row, saliency_row):
            text = row.text_content()
            assert (
                "1 / 1" in text and "95% CI" in text and "2.00" in text
            )  # relevant, interval, +2 confidence
        assert page.evaluate("window.__cspViolations") == []
    assert errors == []
