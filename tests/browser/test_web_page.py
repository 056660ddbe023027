"""The web chat in headless Chromium (Debian's package, driven by Playwright): what a person does on the page.

The server is real (aiohttp app, engine, queue, SQLite); the editor is the fast fake one. Screenshots of the main
states go to EDITBOT_SCREENSHOTS (default out/screenshots/).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support.web_server import WebServer, find_chromium

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (the test extra)")
CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed: apt-get install chromium")

SAMPLE = Path(__file__).parents[2] / "bot" / "samples" / "sample.jpg"
SHOTS = Path(os.environ.get("EDITBOT_SCREENSHOTS", "out/screenshots"))
RESULTS = "#messages li.image.node"
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with WebServer(tmp_path_factory.mktemp("web")) as server:
        yield server


@pytest.fixture
def page(browser, server):
    """A new browser context (its own cookie, so its own conversation) on the shared server."""
    context = browser.new_context(viewport={"width": 1200, "height": 860})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url)
    yield page
    context.close()


def shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def say(page, text: str) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")


def send_photo(page, path: Path, caption: str) -> None:
    page.set_input_files("#file", str(path))
    say(page, caption)


def wait_results(page, count: int):
    """The chat's result bubbles once there are `count` of them; the last one."""
    page.locator(RESULTS).nth(count - 1).wait_for()
    return page.locator(RESULTS).nth(count - 1)


expect = playwright_api.expect
expect.set_options(timeout=TIMEOUT_MS)  # a busy machine: a sweep may take seconds


def test_a_photo_two_instructions_and_undo(page):
    send_photo(page, SAMPLE, "make it night")
    first = wait_results(page, 1)
    expect(first).to_contain_text("“make it night”")
    expect(page.locator("#messages li.user img")).to_be_visible()  # the photo as sent
    say(page, "add snow")
    second = wait_results(page, 2)
    expect(second).to_contain_text("“add snow”")
    expect(page.locator("#slider")).to_be_visible()
    page.locator("#split").fill("20")  # drag the before/after divider to the left
    expect(page.locator("#before")).to_have_attribute("style", re.compile(r"inset\(0(px)? 80% 0(px)? 0(px)?\)"))
    expect(page.locator("#download")).to_have_attribute("href", re.compile(r"/api/node/\d+\?download=1"))
    shoot(page, "conversation")
    second.get_by_role("button", name="Undo").click()
    expect(wait_results(page, 3)).to_contain_text("Undone. Now at: “make it night”")


def test_the_text_guidance_control_changes_the_next_edit(page):
    send_photo(page, SAMPLE, "make it night")
    wait_results(page, 1)
    page.locator("#text-guidance").fill("9")
    expect(page.locator("#messages li.bot", has_text="Settings: text guidance 9")).to_be_visible()
    expect(page.locator("#messages li.user", has_text="/text 9")).to_be_visible()
    say(page, "add stars")
    expect(wait_results(page, 2)).to_contain_text("text guidance 9 ·")


def test_the_history_panel_goes_to_a_step(page):
    send_photo(page, SAMPLE, "make it night")
    wait_results(page, 1)
    say(page, "add snow")
    wait_results(page, 2)
    page.click("#tree summary")
    steps = page.locator("#tree-lines button")
    expect(steps).to_have_count(3)
    expect(page.locator("#tree-lines button.here")).to_have_text("2. “add snow”")
    expect(page.locator("#tree-picture")).to_be_visible()
    shoot(page, "history")
    steps.nth(1).click()
    expect(wait_results(page, 3)).to_contain_text("Step 1: “make it night”")
    expect(page.locator("#tree-lines button.here")).to_have_text("1. “make it night”")


def test_sweep_then_pick_a_cell(page):
    send_photo(page, SAMPLE, "make it night")
    wait_results(page, 1)
    say(page, "/sweep")
    grid = page.locator("#messages li.image.grid")
    expect(grid.get_by_role("button")).to_have_count(9)
    shoot(page, "sweep")
    grid.get_by_role("button", name="Pick 9").click()
    picked = wait_results(page, 2)
    expect(picked).to_contain_text("Picked.")
    expect(picked).to_contain_text("text guidance 9.5 · image guidance 1.8")
    expect(page.locator("#text-guidance")).to_have_value("9.5")  # the controls follow the conversation


def test_file_offers_the_picture_as_a_download(page):
    send_photo(page, SAMPLE, "make it night")
    wait_results(page, 1)
    say(page, "/file")
    sent = page.locator("#messages li.image.file")
    expect(sent).to_contain_text("Full size, lossless: step 1")
    with page.expect_download() as download:
        sent.get_by_role("link", name="⬇ Download").click()
    path = download.value.path()
    assert download.value.suggested_filename == "step-1.png"  # named as the chat names it
    assert Path(path).read_bytes().startswith(b"\x89PNG")


def test_a_message_the_server_did_not_get_stays_in_the_box(page):
    page.route("**/api/send*", lambda route: route.abort())  # the server is down
    send_photo(page, SAMPLE, "make it night")
    expect(page.locator("#messages li.error")).to_have_text("Could not reach the server: is editbot still running?")
    expect(page.locator("#text")).to_have_value("make it night")
    expect(page.locator("#pending img")).to_be_visible()
    page.unroute("**/api/send*")
    page.press("#text", "Enter")
    expect(wait_results(page, 1)).to_contain_text("“make it night”")


def test_on_a_phone_the_chat_fills_the_screen_and_the_panel_follows(browser, server):
    context = browser.new_context(viewport={"width": 390, "height": 800})
    page = context.new_page()
    page.goto(server.url)
    expect(page.locator("#messages li.bot")).to_contain_text("Hi!")
    header, chat = page.locator("header").bounding_box(), page.locator("#chat").bounding_box()
    assert chat["y"] == pytest.approx(header["height"], abs=1)  # right under the header, down to the screen's foot
    assert chat["y"] + chat["height"] == pytest.approx(800, abs=1)
    page.locator("#settings").scroll_into_view_if_needed()
    expect(page.locator("#text-guidance")).to_be_in_viewport()
    shoot(page, "phone")
    context.close()


def test_a_first_visit_can_try_the_sample_photo(page):
    page.get_by_role("button", name="Try it on a sample photo").click()
    expect(page.locator("#pending img")).to_be_visible()
    expect(page.locator("#text")).to_have_value("make it night")
    page.press("#text", "Enter")
    expect(wait_results(page, 1)).to_contain_text("“make it night”")
    expect(page.locator("#messages li.user img")).to_be_visible()


def test_the_box_grows_with_a_long_instruction_and_shrinks_once_sent(page):
    box = page.locator("#text")
    one_line = box.bounding_box()["height"]
    box.fill("make it night and add snow and stars and a moon over the hills " * 3)
    assert box.bounding_box()["height"] > 2 * one_line  # every line of it in view, not one
    box.press("Enter")
    expect(page.locator("#messages li.error")).to_contain_text("Send me a photo first.")
    assert box.bounding_box()["height"] == pytest.approx(one_line, abs=1)


def test_enter_that_confirms_an_input_method_word_does_not_send(page):
    page.focus("#text")
    input_method = page.context.new_cdp_session(page)
    input_method.send("Input.imeSetComposition", {"text": "夜に", "selectionStart": 2, "selectionEnd": 2})
    page.keyboard.press("Enter")  # picks the word: still typing (sending would empty the box at once)
    expect(page.locator("#text")).to_have_value(re.compile(r"^夜に"))
    page.fill("#text", "夜にして")
    page.keyboard.press("Enter")  # now it sends
    expect(page.locator("#messages li.user")).to_have_text("夜にして")
    expect(page.locator("#text")).to_have_value("")


def test_a_photo_over_the_upload_limit_is_refused_before_it_is_sent(browser, tmp_path):
    with WebServer(tmp_path, upload_limit=20_000) as small:  # the sample photo is 22 KB
        page = browser.new_context().new_page()
        page.goto(small.url)
        expect(page.locator("#messages li.bot")).to_contain_text("Hi!")  # the page has the limit
        send_photo(page, SAMPLE, "make it night")
        refusal = page.locator("#messages li.error")
        expect(refusal).to_have_text("That file is 0.021 MB; the most I can take is 0.019 MB. Nothing was sent.")
        expect(page.locator("#text")).to_have_value("make it night")  # nothing lost: pick a smaller one, send
        expect(page.locator("#pending img")).to_be_visible()
        expect(page.locator("#messages li.user")).to_have_count(0)
        page.context.close()


def test_a_link_from_another_site_opens_the_same_conversation(page, server):
    """Following a link to the page (from a code host's README, a bookmarks page) must not start a new conversation:
    the cookie has to travel with that navigation, or the page issues a new one over it."""
    send_photo(page, SAMPLE, "make it night")
    wait_results(page, 1)
    link = f'<a href="{server.url}">editbot</a>'
    page.route("http://elsewhere.example/", lambda route: route.fulfill(content_type="text/html", body=link))
    page.goto("http://elsewhere.example/")
    page.click("text=editbot")
    expect(page.locator(RESULTS)).to_contain_text("“make it night”")


def test_a_dropped_photo_waits_in_the_box_as_the_overlay_says(page):
    """Dropping only attaches the photo (it goes with the next message), so the overlay must not promise to send it."""
    overlay = page.evaluate("""async (bytes) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], "sample.jpg", { type: "image/jpeg" }));
        const chat = document.querySelector("#chat");
        chat.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        const shown = document.querySelector("#drop").innerText;
        chat.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        return shown;
    }""", list(SAMPLE.read_bytes()))
    assert overlay == "Drop the photo to add it to your message"
    expect(page.locator("#pending")).to_be_visible()
    expect(page.locator("#messages li.user")).to_have_count(0)
    say(page, "make it night")
    wait_results(page, 1)


def test_a_text_file_is_refused_in_one_line(page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo\n")
    send_photo(page, notes, "make it night")
    refusal = page.locator("#messages li.error")
    expect(refusal).to_contain_text("I can only read")
    expect(page.locator("#messages li.user")).to_have_text("📎 not a picture\nmake it night")  # not a broken image
    expect(page.locator("#messages li.user img")).to_have_count(0)
    expect(refusal).not_to_contain_text("Traceback")
    shoot(page, "refusal")


def test_a_reload_finds_the_conversation(page):
    send_photo(page, SAMPLE, "make it night")
    wait_results(page, 1)
    page.reload()
    expect(page.locator(RESULTS)).to_have_count(1)
    expect(page.locator(RESULTS)).to_contain_text("“make it night”")
    expect(page.locator("#messages li.user")).to_contain_text("📷 photo")


def test_two_browsers_keep_separate_conversations(page, browser, server):
    send_photo(page, SAMPLE, "make it night")
    wait_results(page, 1)
    other = browser.new_context().new_page()
    other.goto(server.url)
    expect(other.locator("#messages li.bot")).to_contain_text("Hi! Drop or paste a photo")
    expect(other.locator("#no-image")).to_be_visible()
    other.fill("#text", "/undo")
    other.press("#text", "Enter")
    expect(other.locator("#messages li.error")).to_contain_text("Send me a photo first.")
    other.context.close()
    expect(page.locator(RESULTS)).to_have_count(1)


def test_the_page_answers_while_an_edit_runs(page):
    send_photo(page, SAMPLE, "make it night")
    wait_results(page, 1)
    say(page, "/steps 100")  # the fake editor takes 0.02 s a step: about 2 s
    expect(page.locator("#messages li.bot", has_text="100 steps")).to_be_visible()
    say(page, "add snow")
    progress = page.locator("#messages li.progress")
    expect(progress).to_contain_text(re.compile(r"Editing: step \d+/100"))
    shoot(page, "progress")
    say(page, "/settings")
    expect(page.locator("#messages li.bot", has_text="Steps: 100")).to_be_visible()
    expect(progress).to_be_visible()  # answered before the edit finished
    expect(wait_results(page, 2)).to_contain_text("“add snow”")
    expect(progress).to_have_count(0)


def test_a_restarted_server_resumes_the_conversation(browser, tmp_path):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    with WebServer(tmp_path) as first:
        page.goto(first.url)
        send_photo(page, SAMPLE, "make it night")
        wait_results(page, 1)
        port = first.settings.web.web_port
    second = WebServer(tmp_path)
    second.settings.web.web_port, second.url = port, first.url
    with second:
        page.goto(second.url)
        resumed = page.locator(RESULTS)
        expect(resumed).to_contain_text("Where you left off.")
        say(page, "add snow")
        expect(wait_results(page, 2)).to_contain_text("“add snow”")
    context.close()


def test_the_controls_follow_the_conversation_s_model_family(browser, tmp_path):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    server = WebServer(tmp_path)
    server.settings.editor.models = "ip2p=tiny,qwen=qwen-edit:tiny"  # the fake editor stands for both
    with server:
        page.goto(server.url)
        expect(page.locator("#text-guidance")).to_have_value("7.5")
        say(page, "/model qwen")
        expect(page.locator("#true-cfg-scale")).to_have_value("4")
        expect(page.locator("#text-guidance")).to_have_count(0)
        page.locator("#true-cfg-scale").fill("6")
        expect(page.locator("#messages li.bot", has_text="true cfg scale 6")).to_be_visible()
        page.locator("#negative-prompt").fill("blurry")
        page.locator("#negative-prompt").press("Enter")
        expect(page.locator("#messages li.bot", has_text="negative prompt blurry")).to_be_visible()
        shoot(page, "qwen-controls")
    context.close()


def test_before_any_photo_there_is_nothing_to_download(page):
    expect(page.locator("#no-image")).to_be_visible()
    expect(page.locator("#download")).to_be_hidden()
    send_photo(page, SAMPLE, "make it night")
    wait_results(page, 1)
    expect(page.locator("#download")).to_be_visible()


def test_a_restart_clears_the_progress_of_the_edit_it_interrupted(browser, tmp_path):
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    with WebServer(tmp_path, step_seconds=0.2) as first:
        page.goto(first.url)
        say(page, "/steps 100")
        send_photo(page, SAMPLE, "make it night")
        expect(page.locator("#messages li.progress")).to_contain_text("Editing: step")
        port = first.settings.web.web_port
    second = WebServer(tmp_path)
    second.settings.web.web_port, second.url = port, first.url
    with second:  # the page reconnects by itself; the edit is over (finished or interrupted by the stop)
        expect(page.locator("#messages li.progress")).to_have_count(0)  # not left saying it edits
    context.close()
