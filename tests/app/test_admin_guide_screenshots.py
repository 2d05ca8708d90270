"""The screenshots of docs/admin-guide.md, taken from the live app, and what each of them must show.

Set ADMIN_GUIDE_SCREENSHOTS=docs/images to refresh the guide's images; otherwise they go to a temporary folder.
The sweep pages use the tiny 16x16 study with a sweep whose first unit the test finishes by hand (no worker
runs); the dashboard, the study page and the lab comparison use lifelike phantom images.
"""

import os
from pathlib import Path

import pytest
from PIL import Image

from reviewapp.models import Job, Study
from reviewapp.services.jobs import job_mark_cancelled, job_succeed
from reviewapp.services.sweeps import sweep_mark_cancelled
from tests.app.conftest import PASSWORD
from tests.helpers.browser import chromium, log_in, wait_until
from tests.helpers.showcase import showcase_lab_runs, showcase_review_set

pytestmark = [pytest.mark.usefixtures("media_root"), pytest.mark.timeout(300)]

SCREENS = [
    "admin-dashboard", "admin-study", "admin-sweep-form", "admin-sweep-progress", "admin-jobs", "lab-compare",
]  # fmt: skip

#: Left edge, width, top and kind (an image or not) of every cell of every row of the comparison, and the header's.
CELL_BOXES = """() => [...document.querySelectorAll('.lab-compare-head, .lab-compare-row')].map(
    row => [...row.children].map(cell => { const b = cell.getBoundingClientRect();
        return {x: Math.round(b.left), width: Math.round(b.width), top: Math.round(b.top),
                image: cell.tagName === 'FIGURE'}; }))"""


def shrink(path: Path) -> None:
    """Keep the guide's images small: 256 colours (ample for pages of text and grey films), optimised."""
    image = Image.open(path).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )


def images_drawn(page) -> bool:
    """Every image of the page has loaded."""
    script = "() => [...document.images].every(i => i.complete && i.naturalWidth > 0)"
    try:
        wait_until(page, script, timeout=10)
    except TimeoutError:
        return False
    return True


def test_screenshots_of_the_admin_pages(live_server, running_sweep, alice, bob, charlie, tmp_path):
    folder = Path(os.environ.get("ADMIN_GUIDE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    sweep, tiny = running_sweep, running_sweep.study
    review_set = showcase_review_set(
        readers=[bob, charlie], tmp_path=tmp_path, sweep__study__name="Demo study"
    )
    Study.objects.filter(pk=review_set.study_id).update(ranges_path="ranges.npz")
    # The tiny study's style ranges were estimated in this process, outside a task, which leaves its job open.
    for job in Job.objects.filter(kind="style ranges"):
        job_succeed(job=job)
    runs = showcase_lab_runs(review_set=review_set, tmp_path=tmp_path)
    base = live_server.url

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        log_in(page, base, "alice", PASSWORD)

        # The dashboard: a next step for each study, and the sweep running now.
        page.goto(f"{base}/")
        steps = page.locator("#next-steps li")
        assert steps.count() == 2
        # The study's name and its step read as one sentence (the button apart, on the right).
        assert steps.locator(".next-step").all_inner_texts() == [
            "Demo study: 0 of 2 reader(s) have finished “Demo study: pneumonia classifier”.",
            f"Tiny study: Sweep {sweep.pk} is running.",
        ]
        running = page.locator("#running .running-jobs li")
        assert running.count() == 1
        assert running.get_by_role("link").first.get_attribute("href") == f"/sweeps/{sweep.pk}/"
        assert running.locator(".job-message").inner_text() == "1 of 3 units"
        wait_until(page, "document.querySelector('#running .job-eta').textContent.endsWith('left')")
        page.screenshot(path=str(folder / "admin-dashboard.png"), full_page=True)

        # The study page: the sweep in progress, the models, the cases with the fidelity of their projection.
        page.set_viewport_size({"width": 1280, "height": 1400})
        page.goto(f"{base}/studies/{tiny.pk}/")
        assert images_drawn(page)
        assert page.get_by_role("link", name="Counterfactual lab").count() == 1
        assert page.locator("#cases table tbody tr").count() == 5
        wait_until(page, "document.querySelector('.job-eta').textContent.endsWith('left')")
        page.screenshot(path=str(folder / "admin-study.png"))
        page.set_viewport_size({"width": 1280, "height": 800})

        # The launch form: the cost of the ticked cases at the rate measured on the running sweep.
        page.goto(f"{base}/studies/{tiny.pk}/sweeps/new")
        estimate = page.locator("#sweep-estimate").inner_text()
        assert f"Cost: {2 * 5 * tiny.style_dims} perturbed images" in estimate
        assert "on this installation's workers" in estimate
        page.locator('input[name="cases"]').nth(4).uncheck()
        assert page.locator('[data-estimate="perturbations"]').inner_text() == str(2 * 4 * tiny.style_dims)
        page.screenshot(path=str(folder / "admin-sweep-form.png"), full_page=True)

        # The running sweep: its bar with the time left, the live figures, the measured rate.
        page.set_viewport_size({"width": 1280, "height": 560})
        page.goto(f"{base}/sweeps/{sweep.pk}/")
        wait_until(page, "document.querySelector('.job-eta').textContent.includes('left')")
        wait_until(page, "document.querySelector('[data-sweep-field=\"rate\"]').textContent.includes('/s')")
        assert page.locator('[data-sweep-field="units"]').inner_text() == "1 of 3"
        assert page.get_by_role("button", name="Cancel sweep").is_visible()
        page.screenshot(path=str(folder / "admin-sweep-progress.png"))
        page.set_viewport_size({"width": 1280, "height": 800})

        # Cancelled (the worker's part noticed), the sweep offers to resume and says what is kept.
        job = Job.objects.get(pk=sweep.job_id)
        sweep_mark_cancelled(sweep=sweep, task_id="part-a")
        job_mark_cancelled(job=job)
        page.goto(f"{base}/sweeps/{sweep.pk}/")
        assert page.get_by_role("button", name="Resume sweep").is_visible()
        assert "1 of 3 units had finished" in " ".join(page.locator("p.message").inner_text().split())

        # The jobs page: the history, newest first, with the cancelled sweep.
        page.goto(f"{base}/jobs/")
        rows = page.locator("table tbody tr")
        assert rows.count() == Job.objects.count()
        assert rows.first.get_by_role("link").inner_text() == f"Sweep {sweep.pk} · Tiny study"
        assert rows.first.locator(".tag").inner_text() == "Cancelled"
        page.set_viewport_size({"width": 1280, "height": 540})
        page.screenshot(path=str(folder / "admin-jobs.png"))

        # The lab comparison: one row per run, the same kind of image in the same column.
        ids = "&".join(f"run={run.pk}" for run in runs)
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{base}/studies/{review_set.study_id}/lab/compare?{ids}")
        assert images_drawn(page)
        page.screenshot(path=str(folder / "lab-compare.png"), full_page=True)
        rows = page.evaluate(CELL_BOXES)
        assert len(rows) == 1 + len(runs)
        for row in rows[1:]:
            assert [(c["x"], c["width"]) for c in row] == [(c["x"], c["width"]) for c in rows[0]]
            assert len({c["top"] for c in row if c["image"]}) == 1
        assert min(c["width"] for c in rows[1][1:]) >= 180
        # Grad-CAM's heatmap sits in the result's column; it has no start point, difference or path.
        assert [c["image"] for c in rows[-1]] == [False, True, False, True, False, False]
        metrics = {
            row.locator("th").inner_text(): row.locator("td").all_inner_texts()
            for row in page.locator("table.metrics tbody tr").all()
        }
        assert metrics["COUT"][-1] == "—" and metrics["COUT"][0] != "—"
        page.close()

    for name in SCREENS:
        assert (folder / f"{name}.png").stat().st_size > 10_000, name
        if os.environ.get("ADMIN_GUIDE_SCREENSHOTS"):
            shrink(folder / f"{name}.png")
