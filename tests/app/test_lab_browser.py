"""An admin launches a Counterfactual-lab run in a real browser and watches it finish on a real worker.

Runs Debian's Chromium through Playwright against a live server; skips without Chromium (fails instead with
REQUIRE_SERVICES=1).
"""

import re

import pytest

from reviewapp.models import LabRun
from reviewapp.services.cases import case_import_files
from tests.app.conftest import PASSWORD
from tests.helpers.browser import chromium, log_in
from tests.helpers.studies import tiny_case_files

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def browser():
    with chromium() as browser:
        yield browser


def test_an_admin_launches_a_run_from_the_lab_page_and_sees_it_finish(
    transactional_db, browser, live_server, celery_worker, lab_study, alice
):
    (case,) = case_import_files(
        study=lab_study, files=tiny_case_files(1), created_by=alice, queue_projections=False
    ).imported
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    base = live_server.url
    log_in(page, base, "alice", PASSWORD)

    page.goto(f"{base}/studies/{lab_study.pk}/")
    page.get_by_role("link", name="Counterfactual lab").click()
    page.select_option("#id_case", str(case.pk))
    page.select_option("#id_method", "gradcam")
    # The form's script may attach after the page is drawn (a module script, a busy machine); it then shows
    # the chosen method's options by itself, so wait for that state rather than check at once.
    page.locator('.method-options[data-method="gci"]').wait_for(state="hidden", timeout=10_000)
    assert page.locator('.method-options[data-method="gradcam"]').is_visible()
    assert not page.locator('.method-options[data-method="gci"]').is_visible()
    page.get_by_role("button", name="Launch run").click()

    page.wait_for_url(re.compile(r"/lab-runs/\d+/$"))
    # Until the run ends the page shows its progress bar (a quick run may end before the page is drawn).
    status = page.locator("#run-status").inner_text()
    assert page.locator(".job-progress").count() == 1 or "Succeeded" in status, status
    # The progress bar polls the job and reloads the page when it ends.
    page.wait_for_selector("#run-status:has-text('Succeeded')", timeout=120_000)
    run = LabRun.objects.get()
    assert run.status == LabRun.Status.SUCCEEDED, celery_worker.log()[-3000:]
    heatmap = page.locator("img[alt='Saliency heatmap over the original']")
    assert heatmap.count() == 1
    assert page.evaluate("img => img.naturalWidth", heatmap.element_handle()) > 0
    assert page.get_by_text("Change in lung").count() >= 1
    # A saliency map changes nothing: the figures of an edit are not shown for it.
    assert page.get_by_text("COUT", exact=True).count() == 0
