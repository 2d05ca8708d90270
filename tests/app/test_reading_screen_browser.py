"""The reading screen in a real browser: a flicker that moves nothing, layouts, window/level on the source
pixels, and drafts that are never stale after a reload.

Runs Debian's Chromium through Playwright against a live server; skips without Chromium (fails instead with
REQUIRE_SERVICES=1).
"""

import io
import re

import numpy as np
import pytest
from django.core.files.base import ContentFile
from PIL import Image

from reviewapp.models import Annotation
from tests.app.conftest import PASSWORD
from tests.helpers.browser import chromium, log_in, wait_until
from tests.helpers.reviews import items_in_reader_order, review_set_with_items
from tests.helpers.studies import dicom_bytes

pytestmark = [pytest.mark.usefixtures("media_root"), pytest.mark.timeout(300)]

VIEWPORTS = [(1600, 1000), (1280, 800)]

# Every box that must stay put while the perturbed panel flips, as JSON-able rectangles.
RECTS = """() => [...document.querySelectorAll(
    '.panel:not([hidden]), .panel:not([hidden]) figcaption, .panel:not([hidden]) .viewport, .panel:not([hidden]) .view-image'
  )].filter((e) => e.offsetParent !== null)
   .map((e) => { const r = e.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].map((v) => Math.round(v * 100) / 100); })"""


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def review_set(bob):
    return review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2, name="Reading")


def open_item(browser, base, review_set, *, width=1600, height=1000, position=1):
    page = browser.new_page(viewport={"width": width, "height": height})
    log_in(page, base, "bob", PASSWORD)
    page.goto(f"{base}/reviews/{review_set.pk}/items/{position}/")
    page.wait_for_selector("#reader[data-viewer-ready='true']")
    return page


def flips(page, count: int) -> list:
    """The panel boxes at each of ``count`` flips of the flickering perturbed panel."""
    return page.evaluate(
        """([count, rects]) => new Promise((resolve) => {
            const measure = eval(rects);
            const panel = document.querySelector('.panel.perturbed');
            const seen = [];
            const observer = new MutationObserver(() => {
              seen.push([panel.classList.contains('show-unmodified'), measure()]);
              if (seen.length >= count) { observer.disconnect(); resolve(seen); }
            });
            observer.observe(panel, { attributes: true, attributeFilter: ['class'] });
        })""",
        [count, RECTS],
    )


@pytest.mark.parametrize("difference", [False, True], ids=["three-panels", "with-difference"])
def test_flicker_and_hold_move_no_pixel_at_either_viewport_size(live_server, browser, review_set, difference):
    for width, height in VIEWPORTS:
        page = open_item(browser, live_server.url, review_set, width=width, height=height)
        if difference:
            page.keyboard.press("d")
            wait_until(page, "document.querySelector('[data-panel=difference] img').complete")
        before = page.evaluate(RECTS)
        assert len(before) >= (16 if difference else 13)  # 3 or 4 panels, captions, viewports, images

        page.keyboard.press("]")
        page.keyboard.press("]")  # 3 Hz: a flip every ~167 ms
        page.keyboard.press("f")
        seen = flips(page, 6)
        page.keyboard.press("f")
        assert {shown for shown, _ in seen} == {True, False}  # it did flip both ways
        for _, rects in seen:
            assert rects == before, f"a box moved during flicker at {width}x{height}"

        page.keyboard.down("Space")
        held = page.evaluate(RECTS)
        assert page.locator(".panel.perturbed .when-unmodified").first.is_visible()
        page.keyboard.up("Space")
        assert held == before

        # Every panel's image starts at the same height, the difference panel's too.
        tops = page.eval_on_selector_all(
            ".panel:not([hidden]) .viewport", "els => els.map(e => e.getBoundingClientRect().top)"
        )
        assert len(set(tops)) == 1
        # The probability label is never clipped.
        for prob in page.locator(".panel:not([hidden]) .prob").all():
            assert prob.evaluate(
                "e => e.scrollWidth <= e.clientWidth + 1 && e.getBoundingClientRect().right <= e.closest('figcaption').getBoundingClientRect().right"
            )
        page.close()


def test_layouts_the_answers_panel_and_the_magnifier(live_server, browser, review_set):
    page = open_item(browser, live_server.url, review_set, width=1280, height=800)

    def visible_panels():
        return page.eval_on_selector_all(
            ".panel", "els => els.filter(e => e.offsetParent !== null).map(e => e.dataset.panel)"
        )

    def image_width(panel="perturbed"):
        return page.eval_on_selector(
            f'[data-panel="{panel}"] .viewport', "e => e.getBoundingClientRect().width"
        )

    assert visible_panels() == ["original", "reconstruction", "perturbed"]
    three_up = image_width()

    page.keyboard.press("v")  # 3-up -> 1-up
    assert visible_panels() == ["perturbed"]
    assert page.locator('[data-set-layout="1"]').get_attribute("aria-pressed") == "true"
    one_up = image_width()
    page.keyboard.press("h")  # hide the answers panel
    assert not page.locator(".form-panel").is_visible()
    wide = image_width()
    assert three_up * 2.5 < one_up < wide

    page.click('[data-set-layout="2"]')
    assert visible_panels() == ["reconstruction", "perturbed"]

    # The reader's layout and panel choice are remembered on the next item.
    page.goto(f"{live_server.url}/reviews/{review_set.pk}/items/2/")
    page.wait_for_selector("#reader[data-viewer-ready='true']")
    assert visible_panels() == ["reconstruction", "perturbed"]
    assert not page.locator(".form-panel").is_visible()
    page.keyboard.press("h")
    assert page.locator(".form-panel").is_visible()

    # The magnifier follows the pointer and draws the image under it.
    page.keyboard.press("z")
    box = page.locator('[data-panel="perturbed"] .viewport').bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    assert page.locator("#loupe").is_visible()
    centre = page.eval_on_selector(
        "#loupe canvas", "c => [...c.getContext('2d').getImageData(120, 120, 1, 1).data]"
    )
    assert centre[3] == 255 and centre[0] > 0
    page.keyboard.press("z")
    assert not page.locator("#loupe").is_visible()
    page.close()


def source_png_16bit(values: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(values.astype(np.uint16)).save(buffer, format="PNG")
    return buffer.getvalue()


def canvas_values(page, selector: str) -> list[int]:
    return page.eval_on_selector(
        selector,
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " return Array.from({ length: c.width * c.height }, (_, i) => d[4 * i]); }",
    )


def expected(values, center: float, width: float) -> list[int]:
    out = np.clip((np.asarray(values, dtype=np.float64) - (center - width / 2)) / width, 0, 1)
    return [int(v) for v in np.floor(out * 255 + 0.5)]


def test_window_level_applies_to_the_16_bit_source_pixels(live_server, browser, review_set, bob):
    # Two values 100 apart in 16-bit are one 8-bit step apart: only a window on the source separates them.
    values = np.array([[1000, 1100] * 4] * 8, dtype=np.uint16)
    values[4:] = 40000
    item = items_in_reader_order(review_set, bob)[0]
    item.case.source_file.save("source.png", ContentFile(source_png_16bit(values)), save=True)
    page = open_item(browser, live_server.url, review_set)
    assert page.locator("#wl-units").inner_text() == "16-bit PNG · generated 8-bit"

    # The first preset is the full 16-bit range.
    assert page.locator("#wl-value").inner_text() == "W 65535 · L 32768"
    page.evaluate("window.reader.viewer.setWindow(1050, 200)")
    wait_until(page, "document.getElementById('wl-value').textContent === 'W 200 · L 1050'")
    page.wait_for_timeout(100)
    original = canvas_values(page, '[data-panel="original"] canvas')
    assert original == expected(values.ravel(), 1050, 200)
    assert original[:2] == [64, 191]  # 1000 and 1100 told apart

    # The 8-bit reconstruction sits on the source's scale: 8-bit value p stands for p / 255 * 65535.
    with Image.open(item.counterfactual.projection.reconstruction.path) as image:
        reconstruction = np.asarray(image.convert("L"), dtype=np.float64).ravel()
    page.evaluate("window.reader.viewer.setWindow(30000, 20000)")
    page.wait_for_timeout(100)
    drawn = canvas_values(page, '[data-panel="reconstruction"] canvas')
    assert drawn == expected(reconstruction / 255 * 65535, 30000, 20000)
    assert len(set(drawn)) > 5

    # Right-drag to the right widens the window, downwards raises the level; R resets to the first preset.
    page.keyboard.press("r")
    box = page.locator('[data-panel="original"] .viewport').bounding_box()
    x, y = box["x"] + 50, box["y"] + 50
    page.mouse.move(x, y)
    page.mouse.down(button="right")
    page.mouse.move(x - 40, y + 20, steps=4)
    page.mouse.up(button="right")
    width_text, level_text = re.match(r"W (\d+) · L (\d+)", page.locator("#wl-value").inner_text()).groups()
    assert int(width_text) < 65535 and int(level_text) > 32768
    assert page.locator("#wl-preset").input_value() == ""
    page.keyboard.press("r")
    assert page.locator("#wl-value").inner_text() == "W 65535 · L 32768"
    page.close()


def test_the_dicom_window_is_the_first_preset(live_server, browser, review_set, bob):
    pixels = np.tile(np.linspace(0, 4000, 16, dtype=np.uint16), (16, 1))
    item = items_in_reader_order(review_set, bob)[0]
    item.case.source_file.save("source.dcm", ContentFile(dicom_bytes(pixels, window=(1500, 800))), save=True)
    page = open_item(browser, live_server.url, review_set)

    assert page.locator("#wl-preset option").first.inner_text() == "DICOM: DICOM window 1"
    assert page.locator("#wl-value").inner_text() == "W 800 · L 1500"
    assert page.locator("#wl-units").inner_text() == "12-bit DICOM · generated 8-bit"
    page.wait_for_timeout(100)
    original = canvas_values(page, '[data-panel="original"] canvas')
    assert original[:16] == expected(pixels[0], 1500, 800)
    page.close()


def test_an_edit_made_just_before_a_reload_is_the_draft_after_it(live_server, browser, review_set, bob):
    page = open_item(browser, live_server.url, review_set)
    page.keyboard.press("n")
    page.keyboard.press("6")
    wait_until(page, "document.getElementById('save-state').textContent.startsWith('Draft saved')")
    assert re.fullmatch(r"Draft saved \d\d:\d\d:\d\d", page.locator("#save-state").inner_text())

    # The server is slow to take the last edit: its autosave and the beacon on leaving do not arrive before
    # the page is drawn again.
    page.route("**/draft", lambda route: route.abort())
    page.click("#id_comment")
    page.keyboard.type("first look: no change")
    page.wait_for_timeout(50)  # within 100 ms of the edit
    page.reload()
    page.unroute("**/draft")
    page.wait_for_selector("#reader[data-viewer-ready='true']")

    assert page.locator("#id_comment").input_value() == "first look: no change"
    assert page.locator('input[name="q2_pneumonia"][value="no"]').is_checked()
    wait_until(page, "document.getElementById('save-state').textContent.startsWith('Draft saved')")
    assert re.fullmatch(r"Draft saved \d\d:\d\d:\d\d", page.locator("#save-state").inner_text())
    assert Annotation.objects.get(reader=bob).comment == "first look: no change"

    # A second reload shows the same (the server's and the local copy agree), in the same time format.
    page.reload()
    page.wait_for_selector("#reader[data-viewer-ready='true']")
    assert page.locator("#id_comment").input_value() == "first look: no change"
    assert re.fullmatch(r"Draft saved \d\d:\d\d:\d\d", page.locator("#save-state").inner_text())
    page.close()


def test_a_refused_submit_is_not_posted_again_by_a_reload(live_server, browser, review_set, bob):
    page = open_item(browser, live_server.url, review_set)
    page.keyboard.press("y")  # Q1 yes without a description, no Q2
    page.keyboard.press("Escape")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Describe the change clinically" in page.content()
    assert page.locator('input[name="q1_meaningful"][value="yes"]').is_checked()

    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)
    page.reload()
    page.wait_for_selector("#reader[data-viewer-ready='true']")
    assert not [url for url in posts if not url.endswith("/draft")]
    # What was posted stays as a draft.
    assert page.locator('input[name="q1_meaningful"][value="yes"]').is_checked()
    assert not Annotation.objects.get(reader=bob).q2_pneumonia
    page.close()


def test_a_reader_flags_an_item_and_gives_region_and_finding(live_server, browser, review_set, bob):
    page = open_item(browser, live_server.url, review_set)
    page.select_option("#id_region", "right_lower")
    page.select_option("#id_finding", "image_quality")
    page.locator("#id_finding").press("Escape")
    page.keyboard.press("u")
    assert page.locator('input[name="flag"][value="unreadable"]').is_checked()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    annotation = Annotation.objects.get(reader=bob)
    assert not annotation.is_draft
    assert (annotation.flag, annotation.region, annotation.finding) == (
        "unreadable",
        "right_lower",
        "image_quality",
    )
    page.close()
