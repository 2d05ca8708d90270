"""The screenshots of docs/reviewer-guide.md, taken from the live app with lifelike images.

Set REVIEWER_GUIDE_SCREENSHOTS=docs/images to refresh the guide's images; otherwise they go to a temporary
folder, and the test still checks that every page draws its images.
"""

import os
from pathlib import Path

import pytest

from tests.app.conftest import PASSWORD
from tests.factories import FactorAnnotationFactory
from tests.helpers.browser import chromium, log_in, wait_until
from tests.helpers.reviews import answer, items_in_reader_order
from tests.helpers.showcase import showcase_review_set

pytestmark = [pytest.mark.usefixtures("media_root"), pytest.mark.timeout(300)]

SCREENS = [
    "worklist", "reading-screen", "reading-screen-zoomed-difference", "reading-screen-one-up",
    "keyboard-shortcuts", "flicker-gif",
    "factor", "results", "factor-catalogue",
]  # fmt: skip


def drawn(page, selector: str) -> bool:
    """Wait until every image matching ``selector`` has loaded; False if they do not within 10 s."""
    script = "s => { const e = [...document.querySelectorAll(s)]; return e.length > 0 && e.every(i => i instanceof HTMLCanvasElement ? i.dataset.drawn === 'true' : i.complete && i.naturalWidth > 0); }"
    try:
        wait_until(page, script, selector, timeout=10)
    except TimeoutError:
        return False
    return True


def test_screenshots_of_the_reviewer_pages(live_server, bob, charlie, alice, tmp_path):
    folder = Path(os.environ.get("REVIEWER_GUIDE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    review_set = showcase_review_set(
        readers=[bob, charlie], tmp_path=tmp_path, sweep__study__name="Demo study"
    )
    items = items_in_reader_order(review_set, bob)
    opacity, exposure = review_set.sweep.dimension_effects.order_by("rank")
    factor_a = [item for item in items if item.counterfactual.dimension == opacity]
    for item in factor_a[:2]:
        answer(item, bob, clinical_description="increased density along the right heart border")
    base = live_server.url

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1200, "height": 330})
        log_in(page, base, "bob", PASSWORD)
        page.goto(f"{base}/reviews/")
        page.screenshot(path=str(folder / "worklist.png"))

        page.set_viewport_size({"width": 1440, "height": 860})
        position = items.index(factor_a[2]) + 1
        page.goto(f"{base}/reviews/{review_set.pk}/items/{position}/")
        page.wait_for_load_state("networkidle")
        assert drawn(page, ".panel:not([hidden]) .view-image")
        page.keyboard.press("y")
        page.keyboard.type("hazy opacity at the right cardiophrenic angle, blurring the right heart border")
        page.keyboard.press("Escape")
        page.keyboard.press("2")
        page.keyboard.press("Shift+Digit4")
        wait_until(page, "document.getElementById('save-state').textContent.startsWith('Draft saved')")
        page.screenshot(path=str(folder / "reading-screen.png"))

        page.keyboard.press("d")
        for _ in range(3):
            page.keyboard.press("+")
        for _ in range(2):
            page.keyboard.press("Shift+ArrowLeft")
            page.keyboard.press("Shift+ArrowDown")
        page.keyboard.press("w")
        page.wait_for_load_state("networkidle")
        assert drawn(page, '[data-panel="difference"] .view-image')
        page.screenshot(path=str(folder / "reading-screen-zoomed-difference.png"))

        # 1-up without the answer panel, the loupe over the changed right heart border.
        page.keyboard.press("0")
        page.keyboard.press("d")
        page.keyboard.press("r")
        page.keyboard.press("v")
        page.keyboard.press("h")
        page.keyboard.press("z")
        assert page.evaluate("window.reader.viewer.layout") == 1
        box = page.locator('[data-panel="perturbed"] .viewport').bounding_box()
        side = min(box["width"], box["height"])
        page.mouse.move(box["x"] + box["width"] / 2 - side * 0.12, box["y"] + box["height"] / 2 + side * 0.12)
        assert page.locator("#loupe").is_visible()
        page.screenshot(path=str(folder / "reading-screen-one-up.png"))
        page.keyboard.press("z")
        page.keyboard.press("h")
        page.keyboard.press("v")
        page.keyboard.press("v")

        page.keyboard.press("?")
        page.screenshot(path=str(folder / "keyboard-shortcuts.png"))
        page.keyboard.press("Escape")
        page.keyboard.press("r")
        page.keyboard.press("g")
        page.wait_for_load_state("networkidle")
        assert drawn(page, "#gif-image")
        page.screenshot(path=str(folder / "flicker-gif.png"))
        page.keyboard.press("Escape")

        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "/factors/" in page.url
        assert drawn(page, ".example-stack")
        page.fill("#id_factor_name", "blurring of the right heart border")
        page.check('input[name="clinical_relevance"][value="yes"]')
        page.check('input[name="pneumonia_relevance"][value="possible"]')
        page.screenshot(path=str(folder / "factor.png"), full_page=True)
        page.close()

        verdicts = ["possible", "yes", "subtle", "no", "not_compelling", "no"]
        for item, q2 in zip(review_set.items.order_by("position"), verdicts, strict=True):
            answer(item, charlie, q1_meaningful=q2 != "no", q2_pneumonia=q2)
        FactorAnnotationFactory(
            review_set=review_set, dimension=opacity, reader=charlie, factor_name="right medial basal opacity"
        )
        FactorAnnotationFactory(
            review_set=review_set,
            dimension=exposure,
            reader=charlie,
            factor_name="brighter exposure overall",
            clinical_relevance="no",
            pneumonia_relevance="no",
        )
        admin = browser.new_page(viewport={"width": 1280, "height": 900})
        log_in(admin, base, "alice", PASSWORD)
        admin.goto(f"{base}/review-sets/{review_set.pk}/results/")
        admin.screenshot(path=str(folder / "results.png"), full_page=True)
        admin.goto(f"{base}/studies/{review_set.study_id}/factors/")
        assert drawn(admin, ".example-stack")
        admin.screenshot(path=str(folder / "factor-catalogue.png"), full_page=True)
        admin.close()

    for name in SCREENS:
        assert (folder / f"{name}.png").stat().st_size > 10_000, name
