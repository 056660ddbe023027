"""How long the web chat's first load takes from a warm server, and how much it weighs: a benchmark, not a test.

    .venv/bin/python -m tests.browser.first_load [--loads 10]

Starts the browser-test server (tests/support/web_server.py), loads the page once to warm it, then loads it in
fresh browser contexts (new cookie, empty cache: a first visit each time) and prints, per load, the time until the
load event and until the page is usable (the greeting is shown: state fetched, event stream open), and the bytes the
page and its assets weigh.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.support.web_server import WebServer, find_chromium


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=10)
    args = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit("Chromium is not installed: apt-get install chromium")
    with tempfile.TemporaryDirectory() as folder, WebServer(Path(folder)) as server, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True)
        usable, loaded, weight = [], [], 0
        for attempt in range(args.loads + 1):  # the first load warms the server (and the browser) up
            context = browser.new_context()
            page = context.new_page()
            start = time.perf_counter()
            page.goto(server.url, wait_until="load")
            loaded_at = time.perf_counter()
            page.locator("#messages li.bot").first.wait_for()
            ready_at = time.perf_counter()
            weight = page.evaluate("""() => performance.getEntries()
                .filter(entry => entry.entryType === 'navigation' || entry.entryType === 'resource')
                .filter(entry => !entry.name.includes('/api/events'))
                .reduce((total, entry) => total + entry.encodedBodySize, 0)""")
            context.close()
            if attempt:
                loaded.append(loaded_at - start)
                usable.append(ready_at - start)
        browser.close()
    print(f"first load from a warm server, {args.loads} fresh browser contexts, headless Chromium:")
    print(f"  load event:  median {statistics.median(loaded) * 1000:.0f} ms, max {max(loaded) * 1000:.0f} ms")
    print(f"  page usable: median {statistics.median(usable) * 1000:.0f} ms, max {max(usable) * 1000:.0f} ms")
    print(f"  page weight: {weight / 1024:.1f} KiB (HTML, CSS, JavaScript and the state, uncompressed)")


if __name__ == "__main__":
    main()
