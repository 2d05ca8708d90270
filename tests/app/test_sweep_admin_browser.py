"""An admin sees a sweep's cost before launching it, watches its live figures, confirms a cancel and resumes it.

Runs Debian's Chromium through Playwright against a live server; no worker is needed (the units' timings are
written by the test). Skips without Chromium (fails instead with REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import pytest

from reviewapp.models import Job, Sweep, SweepUnit
from reviewapp.services.jobs import Tasks, job_mark_cancelled
from reviewapp.services.sweeps import sweep_mark_cancelled
from tests.app.conftest import PASSWORD
from tests.helpers.browser import chromium, log_in

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def browser():
    with chromium() as browser:
        yield browser


def test_cost_live_figures_confirmed_cancel_and_resume(browser, live_server, running_sweep, sent):
    sweep, study = running_sweep, running_sweep.study
    dims = study.style_dims
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    base = live_server.url
    log_in(page, base, "alice", PASSWORD)

    # The launch form: the cost follows the ticked cases and the mode, at the measured 40 images per second.
    page.goto(f"{base}/studies/{study.pk}/sweeps/new")
    perturbations = page.locator('[data-estimate="perturbations"]')
    duration = page.locator('[data-estimate="duration"]')
    assert perturbations.inner_text() == str(2 * 5 * dims)
    assert duration.inner_text() == f"{round(2 * 5 * dims / 40)} s"
    boxes = page.locator('input[name="cases"]')
    for index in range(1, 5):
        boxes.nth(index).uncheck()
    assert perturbations.inner_text() == str(2 * dims)
    page.select_option("#id_mode", "screening")
    page.fill("#id_screening_top_k", "3")
    assert perturbations.inner_text() == str(2 * 3 + 1)

    # The sweep's page: the perturbations figure follows the sweep without a reload.
    page.goto(f"{base}/sweeps/{sweep.pk}/")
    live = page.locator('[data-sweep-field="perturbations"]')
    assert live.inner_text() == "400"
    Sweep.objects.filter(pk=sweep.pk).update(perturbations=800)
    page.wait_for_function(
        "() => document.querySelector('[data-sweep-field=\"perturbations\"]').textContent === '800'",
        timeout=15_000,
    )
    assert "perturbed images/s" in page.locator('[data-sweep-field="rate"]').inner_text()

    # Cancelling asks first: dismissing keeps the sweep running, accepting asks it to stop.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Cancel sweep").click()
    page.wait_for_timeout(500)
    assert not Job.objects.get(pk=sweep.job_id).cancel_requested
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel sweep").click()
    page.wait_for_selector("text=can be resumed")
    assert Job.objects.get(pk=sweep.job_id).cancel_requested

    # The worker's part notices and stops (done here by hand); the page offers to resume.
    old_job = Job.objects.get(pk=sweep.job_id)
    sweep_mark_cancelled(sweep=sweep, task_id="part-a")
    job_mark_cancelled(job=old_job)
    page.goto(f"{base}/sweeps/{sweep.pk}/")
    page.get_by_role("button", name="Resume sweep").click()
    page.wait_for_selector("text=The sweep resumes")

    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.RUNNING
    assert sweep.job_id != old_job.pk
    assert SweepUnit.objects.filter(sweep=sweep, status=SweepUnit.Status.DONE).count() == 1
    assert page.get_by_role("button", name="Resume sweep").count() == 0
    resumed = [task for job, task in sent if job == sweep.job_id]
    assert resumed and set(resumed) == {Tasks.SWEEP_RUN_UNITS}
