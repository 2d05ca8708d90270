"""A radiologist completes a review set in a real browser, keyboard first; an admin exports the answers.

Runs Debian's Chromium through Playwright against a live server; skips without Chromium (fails instead with
REQUIRE_SERVICES=1).
"""

import csv
import io
import re

import pytest

from reviewapp.models import Annotation, FactorAnnotation, ReviewAssignment
from tests.app.conftest import PASSWORD
from tests.helpers.browser import chromium, log_in, wait_until
from tests.helpers.reviews import review_set_with_items

pytestmark = [pytest.mark.usefixtures("media_root"), pytest.mark.timeout(300)]

DESCRIPTION = "blurring of the right heart border"


@pytest.fixture
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def review_set(bob, charlie):
    return review_set_with_items(
        readers=[bob, charlie], dimensions=2, images_per_dimension=2, name="Demo review"
    )


def item_position(page) -> int:
    return int(re.search(r"/items/(\d+)/", page.url).group(1))


def test_a_reviewer_completes_a_set_from_the_keyboard_and_an_admin_exports_it(
    live_server, browser, review_set, bob, alice
):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    base = live_server.url
    log_in(page, base, "bob", PASSWORD)

    # The worklist shows the set; Start opens the first item.
    page.get_by_role("link", name="Start").click()
    page.wait_for_url(re.compile(r"/items/1/$"))
    assert page.locator(".item-count").inner_text() == "Item 1 / 4"
    assert page.locator('[data-panel="original"] .prob').inner_text() == "p(pneumonia) = 0.95"

    # Flicker: on, faster, and it alternates the perturbed panel with the unmodified image.
    page.keyboard.press("f")
    assert page.locator('[data-action="flicker"]').get_attribute("aria-pressed") == "true"
    page.keyboard.press("]")
    assert page.locator("#flicker-rate-value").inner_text() == "2.5 Hz"
    wait_until(page, "document.querySelector('.panel.perturbed').classList.contains('show-unmodified')")
    page.keyboard.press("f")
    assert page.locator('[data-action="flicker"]').get_attribute("aria-pressed") == "false"

    # Hold Space to compare.
    page.keyboard.down("Space")
    assert "show-unmodified" in page.locator(".panel.perturbed").get_attribute("class")
    assert page.locator(".panel.perturbed .panel-name .when-unmodified").is_visible()
    assert not page.locator(".panel.perturbed .panel-name .when-perturbed").is_visible()
    page.keyboard.up("Space")
    assert "show-unmodified" not in page.locator(".panel.perturbed").get_attribute("class")

    # Zoom all panels together, then fit.
    page.keyboard.press("+")
    page.keyboard.press("+")
    assert page.locator("#zoom-level").inner_text() == "156%"
    transforms = page.eval_on_selector_all(".view-image", "els => els.map(e => e.style.transform)")
    assert len(set(transforms)) == 1 and "scale(1.5625)" in transforms[0]
    assert "zoomed" in page.locator("#panels").get_attribute("class")
    page.keyboard.press("Shift+ArrowRight")
    page.keyboard.press("0")
    assert page.locator("#zoom-level").inner_text() == "100%"

    # Window/level (the cases keep no source pixels here: W and L are on the 8-bit values): darker, less
    # contrast, inverted, a preset, then reset.
    page.wait_for_selector("#reader[data-viewer-ready='true']")
    assert page.locator("#wl-units").inner_text() == "8-bit PNG values"
    assert page.locator("#wl-value").inner_text() == "W 255 · L 128"
    page.keyboard.press("b")
    page.keyboard.press("c")
    assert page.locator("#wl-value").inner_text() == "W 281 · L 133"
    page.keyboard.press("i")
    assert page.evaluate("window.reader.viewer.inverted")
    page.keyboard.press("w")  # from a manual window, W starts over at the first preset
    page.keyboard.press("w")
    assert page.locator("#wl-preset").input_value() == "1"
    assert page.locator("#wl-preset option:checked").inner_text() == "Lung (low values)"
    page.keyboard.press("r")
    assert page.locator("#wl-value").inner_text() == "W 255 · L 128"
    assert not page.evaluate("window.reader.viewer.inverted")

    # Difference map and the list of shortcuts.
    page.keyboard.press("d")
    assert page.locator('[data-panel="difference"]').is_visible()
    page.keyboard.press("?")
    assert page.locator("#help-overlay").is_visible()
    assert page.locator("#keymap td kbd").count() > 20
    page.keyboard.press("Escape")
    assert not page.locator("#help-overlay").is_visible()

    # Answer from the keyboard: Q1 yes focuses the description; Q2 "early change"; confidence 4.
    page.keyboard.press("y")
    page.keyboard.type(DESCRIPTION)
    page.keyboard.press("Escape")
    page.keyboard.press("3")
    page.keyboard.press("Shift+Digit4")
    wait_until(page, "document.getElementById('save-state').textContent.startsWith('Draft saved')")

    # The draft survives a reload.
    page.reload()
    assert page.locator("#id_clinical_description").input_value() == DESCRIPTION
    assert page.locator('input[name="q2_pneumonia"][value="early_change"]').is_checked()
    assert page.locator('input[name="confidence"][value="4"]').is_checked()
    assert page.locator("#save-state").inner_text().startswith("Draft saved")

    # Enter submits; the rest of the items are answered "not meaningful, not relevant". After the last item
    # of a factor, the factor page asks for its name.
    with page.expect_navigation():
        page.keyboard.press("Enter")
    answered_positions = {1}
    for _ in range(10):
        if "/factors/" in page.url:
            page.fill("#id_factor_name", "right heart border blurring")
            page.check('input[name="clinical_relevance"][value="yes"]')
            page.check('input[name="pneumonia_relevance"][value="possible"]')
            with page.expect_navigation():
                page.get_by_role("button", name="Save the factor").click()
            continue
        if "/items/" not in page.url:
            break
        answered_positions.add(item_position(page))
        page.keyboard.press("n")
        page.keyboard.press("6")
        with page.expect_navigation():
            page.keyboard.press("Enter")
    assert answered_positions == {1, 2, 3, 4}

    # Every item is answered: finalise from the overview.
    assert "4 / 4" in page.locator("main").inner_text()
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#finalise-button")
    page.wait_for_selector("text=Review set finalised")
    assert ReviewAssignment.objects.get(review_set=review_set, reader=bob).finalised_at is not None
    assert FactorAnnotation.objects.filter(reader=bob).count() == 2
    page.close()

    # The admin downloads the review table; its rows are bob's answers.
    admin = browser.new_page(accept_downloads=True)
    log_in(admin, base, "alice", PASSWORD)
    admin.goto(f"{base}/review-sets/{review_set.pk}/results/")
    assert "Cohen" in admin.content() or "two readers" in admin.content()
    with admin.expect_download() as download:
        admin.click("text=review table (CSV)")
    rows = list(csv.DictReader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))

    assert len(rows) == 4
    by_item = {(r["style_dimension"], r["image_index"]): r for r in rows}
    for annotation in Annotation.objects.filter(reader=bob).select_related("item__counterfactual__dimension"):
        row = by_item[(str(annotation.item.counterfactual.dimension.dim), str(annotation.item.position))]
        assert row["reader"] == "bob"
        assert row["pneumonia_relevance"] == annotation.q2_pneumonia
        assert row["semantically_meaningful"] == ("yes" if annotation.q1_meaningful else "no")
    described = [r for r in rows if r["clinical_relevance"] == DESCRIPTION]
    assert len(described) == 1
    assert described[0]["pneumonia_relevance"] == "early_change"
    assert described[0]["confidence"] == "4"
    assert int(described[0]["time_spent_seconds"]) >= 1
    admin.close()


def test_a_reviewer_cannot_open_admin_pages_in_the_browser(live_server, browser, review_set, bob):
    page = browser.new_page()
    log_in(page, live_server.url, "bob", PASSWORD)
    response = page.goto(f"{live_server.url}/review-sets/{review_set.pk}/results/")
    assert response.status == 403
    page.close()
