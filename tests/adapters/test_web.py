"""The web chat's HTTP side, without a browser: cookies, the password, the form, events, and what each browser may
read. The page itself is driven in a real browser in tests/browser/."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from bot.web.server import WebChat
from bot.web.sessions import COOKIE
from core.config import Settings
from core.conversation.engine import ConversationEngine
from core.editing.registry import ModelRegistry, ModelSpec
from core.queue import EditQueue
from core.runner import EditRunner
from tests.support.chat import photo_bytes


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("EDITBOT_DATA_DIR", str(tmp_path))
    return Settings()


@pytest.fixture
async def open_client(engine, history, image_store, settings):
    """A function that opens a client (a browser of its own, with its own cookie jar) on one server."""
    server = TestServer(WebChat(engine, history, image_store, settings).app())
    clients = []

    async def open_one() -> TestClient:
        client = TestClient(server)
        await client.start_server()
        clients.append(client)
        assert (await client.get("/")).status == 200  # the first visit sets the cookie
        return client

    yield open_one
    for client in clients:
        await client.close()


def form(text: str = "", image: bytes | None = None, action: str | None = None) -> FormData:
    data = FormData(default_to_multipart=True)  # as a browser sends it
    data.add_field("text", text)
    if image is not None:
        data.add_field("file", image, filename="photo.jpg", content_type="image/jpeg")
    if action is not None:
        data.add_field("action", action)
    return data


async def events_until(client: TestClient, stop, last_event_id: str = "") -> list[dict]:
    """Read the event stream until `stop(event)` is true; every event read, in order (and its `id` when it has
    one)."""
    seen, event_id = [], None
    async with client.get("/api/events", headers={"Last-Event-ID": last_event_id}) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        async with asyncio.timeout(10):
            async for raw in response.content:
                line = raw.decode().strip()
                if line.startswith("id: "):
                    event_id = line[len("id: "):]
                if line.startswith("data: "):
                    seen.append(json.loads(line[len("data: "):]) | ({"id": event_id} if event_id else {}))
                    event_id = None
                    if stop(seen[-1]):
                        return seen
    raise AssertionError("the stream ended")


def results(events: list[dict]) -> list[dict]:
    return [event for event in events if event["type"] == "image" and event["kind"] == "node"]


async def test_a_photo_and_an_instruction_come_back_as_a_result_with_buttons_and_progress(open_client):
    client = await open_client()
    response = await client.post("/api/send?cid=c1", data=form("make it night", photo_bytes()))
    assert response.status == 202
    request = (await response.json())["request"]
    events = await events_until(client, lambda event: event == {"type": "done", "request": request})
    assert events[0] | {"id": "RUN.1"} == {"seq": 1, "type": "user", "text": "make it night", "photo": True,
                                           "cid": "c1", "id": "RUN.1"}
    assert any(event["type"] == "progress" and event["total"] == 20 for event in events)
    [result] = results(events)
    assert "make it night" in result["caption"] and "text guidance 7.5" in result["caption"]
    assert {button["data"].split(":")[0] for button in result["buttons"]} >= {"undo", "retry", "stronger"}
    image = await client.get(result["download"])
    assert image.content_type == "image/png"
    assert image.headers["Content-Disposition"] == 'attachment; filename="step-1.png"'  # its /history label


async def test_a_reload_replays_the_chat_and_a_button_acts_on_its_node(open_client):
    client = await open_client()
    await client.post("/api/send", data=form("make it night", photo_bytes()))
    [result] = results(await events_until(client, lambda event: event["type"] == "image"))
    undo = next(button["data"] for button in result["buttons"] if button["data"].startswith("undo:"))
    await client.post("/api/send", data=form(action=undo))
    replayed = await events_until(client, lambda event: event.get("caption", "").startswith("Undone"))
    kept = [event for event in replayed if "seq" in event]  # the whole chat, from the start
    assert [event["type"] for event in kept] == ["user", "image", "image"] and kept[1]["node"] == result["node"]
    # A page that saw the first two reconnects: it gets the rest; one that saw another server run gets it all.
    run = kept[1]["id"].split(".")[0]
    missed = await events_until(client, lambda event: event["type"] == "ready", f"{run}.2")
    assert [event.get("seq") for event in missed] == [3, None]
    again = await events_until(client, lambda event: event["type"] == "ready", "0123abcd.2")
    assert [event.get("seq") for event in again] == [1, 2, 3, None]
    state = await (await client.get("/api/state")).json()
    assert state["head"]["node"] == result["node"] - 1 and state["head"]["parent_url"] is None


async def test_settings_commands_change_the_state_the_controls_show(open_client):
    client = await open_client()
    await client.post("/api/send", data=form("/text 9"))
    await events_until(client, lambda event: event.get("text", "").startswith("Settings:"))
    state = await (await client.get("/api/state")).json()
    assert state["settings"] == {"text_guidance": 9.0, "image_guidance": 1.5, "steps": 20, "seed": None}
    assert [(control["name"], control["command"]) for control in state["controls"]] == [
        ("text_guidance", "/text"), ("image_guidance", "/image"), ("steps", "/steps")]
    assert state["head"] is None


@pytest.fixture
async def three_models(editor, history, image_store):
    """An engine with InstructPix2Pix, FLUX.2 klein and Qwen enabled, the fake editor standing for each."""
    specs = [ModelSpec("ip2p", "pix2pix", "tiny"), ModelSpec("klein", "flux2-klein", "tiny"),
             ModelSpec("qwen", "qwen-edit", "tiny")]
    models = ModelRegistry(specs, lambda spec: editor)
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(None, history, image_store, models=models)),
                                models=models)
    await engine.start()
    yield engine
    await engine.close()


async def test_the_controls_are_those_of_the_conversation_s_model_family(three_models, history, image_store,
                                                                         settings):
    async with TestClient(TestServer(WebChat(three_models, history, image_store, settings).app())) as client:
        assert (await client.get("/")).status == 200
        await client.post("/api/send", data=form("/model qwen"))
        # Answered before the next is sent: two messages sent at once are handled at once, in either order.
        await events_until(client, lambda event: "Switched to qwen" in event.get("text", ""))
        await client.post("/api/send", data=form("/negative blurry"))
        await events_until(client, lambda event: "negative prompt blurry" in event.get("text", ""))
        state = await (await client.get("/api/state")).json()
        assert state["family"] == "qwen-edit"
        assert state["settings"] == {"true_cfg_scale": 4.0, "negative_prompt": "blurry", "steps": 40, "seed": None}
        [scale, negative, steps] = state["controls"]
        assert (scale["command"], scale["low"], scale["high"]) == ("/guidance", 1.0, 10.0)
        assert (negative["kind"], negative["command"], negative["clear"]) == ("text", "/negative", "off")
        assert (steps["command"], steps["step"]) == ("/steps", 1)

        await client.post("/api/send", data=form("/model klein"))
        await events_until(client, lambda event: "Switched to klein" in event.get("text", ""))
        state = await (await client.get("/api/state")).json()
        assert state["settings"] == {"guidance": 1.0, "steps": 4, "seed": None}
        assert "Base models" in state["controls"][0]["meaning"]


async def test_the_history_panel_lists_numbered_steps_with_the_current_one_marked(open_client):
    client = await open_client()
    assert (await (await client.get("/api/tree")).json())["error"] == "Send me a photo first."
    await client.post("/api/send", data=form("make it night", photo_bytes()))
    await events_until(client, lambda event: event["type"] == "done")
    tree = await (await client.get("/api/tree")).json()
    assert tree["lines"] == [{"label": "0", "text": "original photo", "here": False},
                             {"label": "1", "text": "“make it night”", "here": True}]
    assert (await client.get(tree["picture"])).content_type == "image/png"


@pytest.fixture
def small_uploads(settings) -> None:
    """Requested before open_client: the server is built with a 2000-byte upload limit."""
    settings.limits.max_upload_bytes = 2000


async def test_an_upload_over_the_limit_is_refused_before_anything_is_stored(small_uploads, open_client, image_store):
    client = await open_client()
    big = photo_bytes(size=(400, 400))
    assert len(big) > 2000
    response = await client.post("/api/send", data=form("make it night", big))
    assert response.status == 413
    assert (await response.json())["error"] == "That file is over 0.00190735 MB, the most I can take."
    events = await events_until(client, lambda event: event.get("error"))
    assert events[-1]["text"].startswith("That file is over")
    image_store.grace_seconds = 0
    assert image_store.sweep(keep=set()) == 0  # nothing was stored: a sweep keeping nothing finds nothing
    assert (await (await client.get("/api/state")).json())["head"] is None


async def test_a_text_file_gets_the_same_refusal_as_in_chat(open_client):
    client = await open_client()
    await client.post("/api/send", data=form("make it night", b"just some words\n"))
    events = await events_until(client, lambda event: event.get("error"))
    assert events[-1]["text"].startswith("I can only read") and events[-1]["text"].endswith("none of them.")


async def test_an_empty_file_is_refused_and_its_caption_never_edits_the_photo_before(open_client):
    client = await open_client()
    await client.post("/api/send", data=form("", photo_bytes()))
    await events_until(client, lambda event: event.get("text", "").startswith("Got your photo"))
    before = (await (await client.get("/api/state")).json())["head"]["node"]

    await client.post("/api/send", data=form("make it night", b""))
    events = await events_until(client, lambda event: event.get("error") or event["type"] == "image")
    assert events[-1].get("text") == "That file is empty; please send a photo (JPEG, PNG, WebP or GIF)."
    # The stream starts with what was already published, then "ready": the refusal may come on either side of it.
    [sent] = [event for event in events if event.get("seq") == 3]
    assert sent | {"id": "RUN.3"} == {"seq": 3, "type": "user", "text": "make it night", "photo": True, "cid": "",
                                      "id": "RUN.3"}  # shown as a file sent
    assert (await (await client.get("/api/state")).json())["head"]["node"] == before  # nothing was edited


async def test_a_line_break_typed_in_the_box_reaches_the_engine_as_one(open_client):
    """Browsers send a textarea's line breaks as CR LF (the form encoding's rule); the engine refuses a lone CR."""
    client = await open_client()
    await client.post("/api/send", data=form("make it night\r\nadd stars", photo_bytes()))
    events = await events_until(client, lambda event: event["type"] == "done")
    assert events[0]["text"] == "make it night\nadd stars"
    assert [event for event in events if event.get("error")] == []
    [result] = results(events)
    assert "make it night\nadd stars" in result["caption"]


async def test_each_browser_has_its_own_conversation_and_cannot_read_another_ones_images(open_client):
    alice, bob = await open_client(), await open_client()
    assert alice.session.cookie_jar.filter_cookies(alice.make_url("/"))[COOKIE].value != \
        bob.session.cookie_jar.filter_cookies(bob.make_url("/"))[COOKIE].value
    await alice.post("/api/send", data=form("make it night", photo_bytes()))
    [result] = results(await events_until(alice, lambda event: event["type"] == "image"))
    assert (await bob.get(result["url"])).status == 404
    assert (await (await bob.get("/api/state")).json())["head"] is None
    stolen = await bob.post("/api/send", data=form(action=result["buttons"][0]["data"]))
    assert stolen.status == 202
    refusal = await events_until(bob, lambda event: event.get("error"))
    assert "someone else's" in refusal[-1]["text"]


async def test_api_calls_without_a_valid_cookie_are_refused(open_client):
    client = await open_client()
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: "forged.signature"}, client.make_url("/"))
    response = await client.get("/api/state")
    assert response.status == 401
    assert (await response.json())["error"] == "Your session has ended: reload the page."


async def test_with_a_password_the_page_asks_for_it_first(open_client, settings):
    settings.web.web_password = "open sesame"
    server = TestServer(WebChat(None, None, None, settings).app())
    async with TestClient(server) as client:
        page = await client.get("/")
        assert "Password" in await page.text() and COOKIE not in page.cookies
        wrong = await client.post("/login", data={"password": "guess"})
        assert wrong.status == 403 and "Wrong password." in await wrong.text()
        assert (await client.get("/api/state")).status == 401
        right = await client.post("/login", data={"password": "open sesame"}, allow_redirects=False)
        assert right.status == 303 and COOKIE in right.cookies
        assert "/assets/app.js" in await (await client.get("/")).text()


async def test_posts_from_other_sites_are_refused(open_client):
    client = await open_client()
    response = await client.post("/api/send", data=form("/settings"), headers={"Origin": "http://evil.example"})
    assert response.status == 403


async def test_the_page_loads_nothing_from_elsewhere(open_client):
    client = await open_client()
    page = await client.get("/")
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    html = await page.text()
    assert "http://" not in html and "https://" not in html
    for asset in ("/assets/app.js", "/assets/app.css"):
        body = await (await client.get(asset)).text()
        assert "http://" not in body and "https://" not in body


async def test_the_page_has_an_icon_and_favicon_ico_answers_with_it(engine, history, image_store, settings):
    """No 404 on every visit: the page links its icon, and /favicon.ico (asked for without a cookie) serves it."""
    async with TestClient(TestServer(WebChat(engine, history, image_store, settings).app())) as client:
        icon = await client.get("/favicon.ico")
        assert icon.status == 200 and icon.content_type == "image/svg+xml"
        assert (await icon.text()).startswith("<svg")
        html = await (await client.get("/")).text()
        [linked] = re.findall(r'<link rel="icon" href="([^"]+)"', html)
        assert (await client.get(linked)).status == 200


async def test_serve_platforms_serves_the_web_chat_in_the_bots_process(editor, history, image_store, settings):
    from aiohttp import ClientSession, CookieJar

    from bot.platforms import serve_platforms
    from core.conversation.engine import ConversationEngine
    from core.queue import EditQueue
    from core.runner import EditRunner
    from tests.support.web_server import free_port

    settings.web.web, settings.web.web_port = True, free_port()
    engine = ConversationEngine(history, image_store, EditQueue(EditRunner(editor, history, image_store)))
    announced = []
    serving = asyncio.create_task(serve_platforms(settings, engine, (history, image_store), announced.append))
    try:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as session, asyncio.timeout(10):  # 127.0.0.1
            while not announced:
                await asyncio.sleep(0.05)
            page = await session.get(announced[0])
            assert page.status == 200 and COOKIE in page.cookies
            assert (await session.get(f"{announced[0]}api/state")).status == 200
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
