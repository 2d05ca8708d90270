"""The main pages, opened in a real browser as an admin and as a reviewer, break no rule of the
Content-Security-Policy and still work.

Runs Debian's Chromium through Playwright against a live server; skips without Chromium (fails instead with
REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import numpy as np
import pytest
from django.core.files.base import ContentFile

from explain_engine.ranges import StyleRanges
from reviewapp.bridge.files import media_path
from reviewapp.models import DimensionEffect
from tests.app.conftest import PASSWORD
from tests.factories import LabRunFactory, ProjectionFactory, SweepFactory, npy_bytes
from tests.helpers.browser import chromium, log_in, wait_until
from tests.helpers.reviews import review_set_with_items

pytestmark = [pytest.mark.usefixtures("media_root"), pytest.mark.timeout(300)]

# Runs before any script of each page: every violation the browser reports is kept for the test to read.
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


@pytest.fixture
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def pages(tiny_study, bob):
    """A study with a finished sweep, a review set read by Bob, a case to explore and two lab runs."""
    sweep = SweepFactory(study=tiny_study)
    review_set = review_set_with_items(readers=[bob], sweep=sweep, dimensions=1, images_per_dimension=2)
    ranges = StyleRanges.load(media_path(tiny_study.ranges_path))
    styles = ContentFile(npy_bytes(ranges.mean.numpy().astype(np.float32)), name="styles.npy")
    case = ProjectionFactory(case__study=tiny_study, styles_file=styles).case
    first = LabRunFactory(study=tiny_study, case=case, method="gci")
    second = LabRunFactory(study=tiny_study, case=case, method="dip")
    dimension = DimensionEffect.objects.filter(sweep=sweep).order_by("rank").first()
    admin = [
        "/",
        f"/studies/{tiny_study.pk}/",
        f"/studies/{tiny_study.pk}/sweeps/new",
        f"/sweeps/{sweep.pk}/",
        f"/sweeps/{sweep.pk}/dimensions/{dimension.dim}/",
        f"/review-sets/{review_set.pk}/",
        f"/review-sets/{review_set.pk}/results/",
        f"/studies/{tiny_study.pk}/factors/",
        f"/studies/{tiny_study.pk}/lab/",
        f"/lab-runs/{first.pk}/",
        f"/studies/{tiny_study.pk}/lab/compare?run={first.pk}&run={second.pk}",
        f"/explore/cases/{case.pk}/",
        "/api/docs/",
        "/admin/",
    ]
    reviewer = ["/", "/reviews/", f"/reviews/{review_set.pk}/", f"/reviews/{review_set.pk}/items/1/"]
    return {"admin": admin, "reviewer": reviewer, "case": case, "review_set": review_set}


def open_and_check(page, url: str, console: list[str], errors: list[str]) -> None:
    console.clear()
    errors.clear()
    response = page.goto(url)
    assert response is not None and response.status == 200, url
    page.wait_for_load_state("networkidle")
    violations = page.evaluate("window.__cspViolations")
    assert violations == [], (url, violations)
    assert [line for line in console if "Content Security Policy" in line] == [], (url, console)
    assert errors == [], (url, errors)


def new_page(browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.add_init_script(COLLECT_VIOLATIONS)
    console: list[str] = []
    errors: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page, console, errors


def test_the_main_pages_break_no_rule_of_the_policy(live_server, browser, pages, alice, bob):
    base = live_server.url

    page, console, errors = new_page(browser)
    open_and_check(page, f"{base}/accounts/login/", console, errors)
    log_in(page, base, "alice", PASSWORD)
    for url in pages["admin"]:
        open_and_check(page, base + url, console, errors)
        if url.startswith("/explore/"):
            # Explore still works: the script asks the server for the image and shows it.
            wait_until(page, "document.querySelector('#explore-image').naturalWidth > 0")
        if "/lab/compare" in url:
            # The runs are laid out by the stylesheet alone: one row per run.
            assert page.locator(".lab-compare-grid .lab-compare-row").count() == 2
    page.close()

    page, console, errors = new_page(browser)
    log_in(page, base, "bob", PASSWORD)
    for url in pages["reviewer"]:
        open_and_check(page, base + url, console, errors)
    # The reading screen works: its images load, the progress bar is drawn and an answer is autosaved.
    wait_until(
        page,
        "[...document.querySelectorAll('.panel:not([hidden]) img.view-image')].every(img => img.complete && img.naturalWidth > 0)",
    )
    assert page.eval_on_selector(".reader-progress .progress > span", "el => el.style.width") == "0%"
    page.keyboard.press("n")
    wait_until(page, "document.getElementById('save-state').textContent.startsWith('Draft saved')")
    assert page.evaluate("window.__cspViolations") == []
    assert errors == []
