"""One reader, one item, two tabs: the tab holding an older version is told plainly and saves nothing; the
newer answer is kept; the tab holding the newest version goes on saving and submits.

Runs Debian's Chromium through Playwright against a live server; skips without Chromium (fails instead with
REQUIRE_SERVICES=1).
"""

import re

import pytest

from reviewapp.models import Annotation
from tests.app.conftest import PASSWORD
from tests.helpers.browser import chromium, log_in, wait_until
from tests.helpers.reviews import review_set_with_items

pytestmark = [pytest.mark.usefixtures("media_root"), pytest.mark.timeout(300)]


def test_the_older_tab_gets_a_clear_conflict_and_the_newer_answer_is_kept(live_server, bob):
    review_set = review_set_with_items(readers=[bob], dimensions=1, images_per_dimension=2)
    url = f"{live_server.url}/reviews/{review_set.pk}/items/1/"
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        first, second = context.new_page(), context.new_page()
        log_in(first, live_server.url, "bob", PASSWORD)
        first.goto(url)
        second.goto(url)

        first.fill("#id_comment", "seen in the first tab")
        wait_until(first, "document.getElementById('save-state').textContent.startsWith('Draft saved')")
        assert first.locator("#id_version").input_value() == "1"

        second.fill("#id_comment", "typed in the second tab")
        alert = second.locator("#conflict-alert")
        alert.wait_for()
        assert alert.get_attribute("role") == "alert"
        assert "changed in another tab or window" in alert.inner_text()
        assert "Nothing was saved here" in alert.inner_text()
        assert second.locator("#save-state").inner_text().startswith("Not saved")
        assert Annotation.objects.get().comment == "seen in the first tab"

        # The second tab saves nothing more; reloading shows the newer answer.
        second.fill("#id_comment", "typed again in the second tab")
        second.wait_for_timeout(1200)
        assert Annotation.objects.get().comment == "seen in the first tab"
        alert.get_by_role("button", name="Reload to see the newer answer").click()
        second.wait_for_load_state()
        assert second.locator("#id_comment").input_value() == "seen in the first tab"

        # The first tab holds the newest version: it keeps saving and submits.
        first.fill("#id_comment", "seen in the first tab, twice")
        wait_until(first, "document.getElementById('id_version').value === '2'")
        first.keyboard.press("Escape")
        first.locator('input[name="q1_meaningful"][value="no"]').check()
        first.locator('input[name="q2_pneumonia"][value="no"]').check()
        first.click("#submit-button")
        first.wait_for_url(re.compile(r"/items/2/$"))
        context.close()

    annotation = Annotation.objects.get()
    assert (annotation.comment, annotation.is_draft) == ("seen in the first tab, twice", False)
