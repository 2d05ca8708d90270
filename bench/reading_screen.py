"""Time the reading screen: from navigating to an item to its panels drawn (images decoded, window applied).

Usage, against a running app (e.g. `make demo`) as a reader with an assigned review set:
    python bench/reading_screen.py --url http://127.0.0.1:8000 --user reader1 --password ... --set 1
    python bench/reading_screen.py ... --items 10 --rounds 2      # round 1 cold (fresh browser), 2 warm

Each round opens items 1..N in one browser context: the first round starts with an empty cache ("cold"),
later rounds reuse it ("warm"). Prints p50 and p95 per round in milliseconds. Uses Debian's Chromium.
"""

from __future__ import annotations

import argparse
import statistics
import time

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--set", type=int, required=True, help="review set id")
    parser.add_argument("--items", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    options = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": options.width, "height": options.height})
        page = context.new_page()
        page.goto(f"{options.url}/accounts/login/")
        page.fill("#id_username", options.user)
        page.fill("#id_password", options.password)
        page.click("button[type=submit]")
        page.wait_for_load_state("load")
        for round_number in range(1, options.rounds + 1):
            times = []
            for position in range(1, options.items + 1):
                start = time.perf_counter()
                page.goto(f"{options.url}/reviews/{options.set}/items/{position}/")
                page.wait_for_selector("#reader[data-viewer-ready='true']", timeout=30_000)
                times.append((time.perf_counter() - start) * 1000)
            kind = "cold" if round_number == 1 else "warm"
            print(
                f"round {round_number} ({kind}): {len(times)} items, p50 {statistics.median(times):.0f} ms, "
                f"p95 {percentile(times, 0.95):.0f} ms, max {max(times):.0f} ms"
            )
        browser.close()


if __name__ == "__main__":
    main()
