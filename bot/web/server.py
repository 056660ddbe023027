"""The web chat's HTTP side: an aiohttp app that turns the page's requests into engine calls and Replies into events.

    chat = WebChat(engine, history, images, settings)
    async with serving(chat, settings.web) as send_to:   # bot/platforms.py starts the engine with send_to
        ...

Routes (every one but the assets and the sign-in needs the browser's signed cookie):
    GET  /                 the page (or the sign-in form when EDITBOT_WEB_PASSWORD is set)
    GET  /sample.jpg       the bundled photo the greeting offers to try
    GET  /favicon.ico      the page's icon (assets/favicon.svg), for browsers that ask for it there
    POST /login            the password, then a cookie
    POST /api/send?cid=ID  multipart: text, file, action (a button's Press.data); cid: the page's name for it
    GET  /api/events       server-sent events: the chat's events the page has not seen (Last-Event-ID), then live
    GET  /api/state        the settings of the conversation's model family (the controls) and its current image
    GET  /api/tree         the history panel: the engine's /history (later /tree) answer as numbered lines
    GET  /api/node/ID      a node's image at full resolution (?download=1: as a file)
    GET  /api/picture/NAME a comparison, grid or contact sheet shown in the chat

The engine only ever sees Incoming(ChatKey("web", browser, browser), ...): every change to a conversation, the
settings controls included, goes through it as in the other front-ends. The history repository and image store are
only read here, to draw the page (the current image, its parent for the before/after slider, the controls' values).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import BodyPartReader, web

from bot.chat_common import SAMPLE_PHOTO, over_limit
from bot.web.controls import settings_panel
from bot.web.sessions import COOKIE, CookieSigner, Session, Sessions, load_secret
from core.config import Settings, WebSettings
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.errors import UserError
from core.messages import (
    ImageReply,
    Incoming,
    Press,
    ProgressReply,
    Reply,
    Send,
    TextReply,
)
from core.ports import HistoryRepository, ImageStore
from core.stored_images import stored_as_png
from core.treeview import TreeView

log = logging.getLogger(__name__)

PLATFORM = "web"
ASSETS = Path(__file__).parent / "assets"
TEXT_MAX_BYTES = 8192
"""A typed message longer than this is cut: the model reads 75 tokens, and the engine says so for long ones."""
FORM_OVERHEAD_BYTES = 64 * 1024
"""Room for the form's other fields and boundaries above the largest upload, when judging Content-Length."""
KEEPALIVE_SECONDS = 15.0
WRONG_PASSWORD_DELAY_SECONDS = 0.5
"""Slows down guessing (one browser at a time; put a reverse proxy with rate limits in front on a network)."""
SECURITY_HEADERS = {
    # Everything the page uses comes from this server: no CDN, no inline script.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
BROWSER = web.RequestKey("browser", str)
"""The browser id the request's cookie names (None without a valid cookie)."""
SIGNED_OUT = "Your session has ended: reload the page."
OUT_OF_DATE = "That button is out of date."
# A line of /history (or of a future /tree): "3. “make it snow”  ◀ you are here"; labels such as 2b slot in.
_TREE_LINE = re.compile(r"^\s*(?:↳\s*)?(?P<label>\d+[a-z]*)\.\s+(?P<text>.+?)(?P<here>\s*◀.*)?$")


class TooLarge(UserError):
    pass


class WebChat:
    """The web front-end over one engine: sessions per browser, the routes, and the renderer of Replies."""

    def __init__(self, engine: ConversationEngine, history: HistoryRepository, images: ImageStore,
                 settings: Settings) -> None:
        self._engine = engine
        self._history = history
        self._images = images
        self._upload_limit = settings.limits.max_upload_bytes
        self._signer = CookieSigner(load_secret(settings.web.web_secret, settings.storage.data_dir),
                                    settings.web.web_password)
        self.sessions = Sessions()
        # Event ids carry this run's name: a page that reconnects to a restarted server gets the new run's chat whole.
        self._run = secrets.token_hex(4)
        self._tasks: set[asyncio.Task] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=self._upload_limit + FORM_OVERHEAD_BYTES)
        app.router.add_get("/", self.page)
        app.router.add_post("/login", self.login)
        app.router.add_static("/assets", ASSETS)
        app.router.add_get("/sample.jpg", self.sample)
        app.router.add_get("/favicon.ico", self.favicon)  # asked for by browsers and tools that skip the page's link
        app.router.add_post("/api/send", self.send)
        app.router.add_get("/api/events", self.events)
        app.router.add_get("/api/state", self.state)
        app.router.add_get("/api/tree", self.tree)
        app.router.add_get(r"/api/node/{node:\d{1,18}}", self.node_image)
        app.router.add_get("/api/picture/{name}", self.picture)
        app.on_shutdown.append(self._shut_down)
        return app

    def send_to(self, key: ChatKey) -> Send:
        """How the engine reaches a browser unprompted (an edit re-attached after a restart finishing)."""
        return self._renderer(self.sessions.get(key.chat_id), f"r{secrets.token_hex(4)}")

    # ------------------------------------------------------------------ access

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        """Names the browser from its cookie; API calls without a valid one are refused. Adds the security headers."""
        request[BROWSER] = self._signer.browser(request.cookies.get(COOKIE))
        if request.path.startswith("/api/"):
            if request[BROWSER] is None:
                return web.json_response({"error": SIGNED_OUT}, status=401)
            origin = request.headers.get("Origin")
            if request.method == "POST" and origin and origin.split("://", 1)[-1] != request.host:
                return web.json_response({"error": "Requests from other sites are refused."}, status=403)
        response = await handler(request)
        if not response.prepared:  # the event stream sent its headers already (with these)
            response.headers.update(SECURITY_HEADERS)
        return response

    async def page(self, request: web.Request) -> web.StreamResponse:
        if request[BROWSER] is not None:
            return web.FileResponse(ASSETS / "index.html")
        if self._signer.password is not None:
            return self._sign_in_form()
        response = web.FileResponse(ASSETS / "index.html")
        self._signer.set_on(response)
        return response

    async def sample(self, request: web.Request) -> web.FileResponse:  # public, like the assets
        return web.FileResponse(SAMPLE_PHOTO)

    async def favicon(self, request: web.Request) -> web.FileResponse:  # public, like the assets
        return web.FileResponse(ASSETS / "favicon.svg")

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        if not self._signer.password_ok(str(form.get("password", ""))):
            await asyncio.sleep(WRONG_PASSWORD_DELAY_SECONDS)
            return self._sign_in_form("Wrong password.", status=403)
        response = web.Response(status=303, headers={"Location": "/"})
        self._signer.set_on(response)
        return response

    def _sign_in_form(self, problem: str = "", status: int = 200) -> web.Response:
        html = (ASSETS / "login.html").read_text().replace("<!--problem-->", problem)
        return web.Response(text=html, content_type="text/html", status=status)

    def _key(self, request: web.Request) -> ChatKey:
        return ChatKey(PLATFORM, request[BROWSER], request[BROWSER])

    # ------------------------------------------------------------------ messages in

    async def send(self, request: web.Request) -> web.Response:
        """A message from the page: answered at once; the engine's replies follow as events."""
        session = self.sessions.get(request[BROWSER])
        cid = request.query.get("cid", "")[:40]
        if not request.content_type.startswith("multipart/"):
            return web.json_response({"error": "Send the page's form."}, status=400)
        try:
            fields, image = await self._read_form(request)
        except TooLarge as error:
            session.publish({"type": "user", "text": "", "photo": True, "cid": cid})
            session.publish({"type": "text", "text": str(error), "error": True})
            return web.json_response({"error": str(error)}, status=413)
        action = fields.get("action")
        press = Press.parse(action) if action else None
        if action and press is None:
            session.publish({"type": "text", "text": OUT_OF_DATE, "error": True})
            return web.json_response({"error": OUT_OF_DATE}, status=400)
        text = fields.get("text") or None
        if press is None:
            session.publish({"type": "user", "text": text or "", "photo": image is not None, "cid": cid})
        incoming = Incoming(self._key(request), text=text, image=image, action=press)
        request_id = secrets.token_hex(6)
        task = asyncio.create_task(self._answer(incoming, session, request_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response({"request": request_id}, status=202)

    async def _read_form(self, request: web.Request) -> tuple[dict[str, str], bytes | None]:
        """The form's fields and file, refusing a file over the upload limit before it is read whole (nothing is
        stored: the engine stores a photo only after checking it)."""
        too_large = TooLarge(over_limit(self._upload_limit))
        if request.content_length is not None and request.content_length > self._upload_limit + FORM_OVERHEAD_BYTES:
            raise too_large
        fields: dict[str, str] = {}
        image = None
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":  # an empty file too: the engine says it is empty
                image = await _read_part(part, self._upload_limit, too_large)
            elif part.name in ("text", "action"):
                raw = await _read_part(part, TEXT_MAX_BYTES, None)
                # Forms send a typed line break as CR LF; the engine takes LF and refuses a lone CR.
                fields[part.name] = raw.decode("utf-8", errors="replace").replace("\r\n", "\n").strip()
        return fields, image

    async def _answer(self, incoming: Incoming, session: Session, request_id: str) -> None:
        try:
            await self._engine.handle(incoming, self._renderer(session, request_id))
        finally:
            session.progress.pop(request_id, None)
            session.publish({"type": "done", "request": request_id}, keep=False)

    def _renderer(self, session: Session, request_id: str) -> Send:
        """The `send` of one engine call: each Reply becomes an event of the browser's session."""

        async def render(reply: Reply) -> None:
            if isinstance(reply, ProgressReply):
                event = {"type": "progress", "request": request_id, "text": reply.text, "position": reply.position,
                         "step": reply.step, "total": reply.total}
                session.progress[request_id] = event
                session.publish(event, keep=False)
            elif isinstance(reply, ImageReply):
                session.progress.pop(request_id, None)
                session.publish(self._image_event(session, reply, request_id))
            elif isinstance(reply, TextReply):
                session.publish({"type": "text", "text": reply.text, "error": reply.error, "request": request_id})

        return render

    @staticmethod
    def _image_event(session: Session, reply: ImageReply, request_id: str) -> dict:
        if reply.kind in ("node", "file"):  # stored already (/file: as it is stored): served from the image store
            url, download = f"/api/node/{reply.node_id}", f"/api/node/{reply.node_id}?download=1"
        else:
            url, download = f"/api/picture/{session.keep_picture(reply.image)}", None
        buttons = [{"label": button.label, "data": button.press.data} for button in reply.buttons]
        return {"type": "image", "kind": reply.kind, "node": reply.node_id, "url": url, "download": download,
                "caption": reply.caption, "buttons": buttons, "request": request_id}

    # ------------------------------------------------------------------ events out

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events: what this browser missed (after Last-Event-ID), the edits under way, then live."""
        session = self.sessions.get(request[BROWSER])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no", **SECURITY_HEADERS})
        await response.prepare(request)
        run, _, seen = request.headers.get("Last-Event-ID", "").partition(".")
        last = int(seen) if run == self._run and seen.isdigit() and len(seen) < 12 else 0
        queue = session.listen()  # before the replay, so nothing published meanwhile is lost
        try:
            missed = session.replay(last)
            for event in [*missed, *session.progress.values()]:
                last = await _write_event(response, event, last, self._run)
            # Tells a fresh page whether there was a chat to redraw (else it shows the current image).
            await _write_event(response, {"type": "ready", "replayed": len(missed)}, last, self._run)
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is None:
                    break
                last = await _write_event(response, event, last, self._run)
        except ConnectionResetError:
            pass  # the page closed
        finally:
            session.unlisten(queue)
        return response

    async def state(self, request: web.Request) -> web.Response:
        conversation = await asyncio.to_thread(self._history.conversation, self._key(request))
        head = None
        if conversation.head_id is not None:
            node = await asyncio.to_thread(self._history.node, conversation.head_id)
            head = {"node": node.id, "url": f"/api/node/{node.id}", "download": f"/api/node/{node.id}?download=1",
                    "parent_url": None if node.parent_id is None else f"/api/node/{node.parent_id}"}
        return web.json_response({
            **settings_panel(self._engine.settings_of(conversation)),
            "head": head,
            "upload_limit": self._upload_limit,
        })

    async def tree(self, request: web.Request) -> web.Response:
        """The history panel: the engine's /history as clickable lines (each sends `/goto LABEL`; branches too), and
        the /tree picture where the engine has one, else the /history contact sheet."""
        session = self.sessions.get(request[BROWSER])
        names = {info.name for info in self._engine.commands}
        replies: list[Reply] = []

        async def keep(reply: Reply) -> None:
            replies.append(reply)

        await self._engine.handle(Incoming(self._key(request), text="/history"), keep)
        if "tree" in names and not any(isinstance(reply, TextReply) and reply.error for reply in replies):
            replies = [reply for reply in replies if not isinstance(reply, ImageReply)]
            await self._engine.handle(Incoming(self._key(request), text="/tree"), keep)
        lines, picture, error = [], None, None
        for reply in replies:
            if isinstance(reply, ImageReply):
                picture = f"/api/picture/{session.keep_picture(reply.image)}"
            elif isinstance(reply, TextReply) and reply.error:
                error = reply.text
            elif isinstance(reply, TextReply):
                for line in reply.text.splitlines():
                    if match := _TREE_LINE.match(line):
                        lines.append({"label": match["label"], "text": match["text"], "here": bool(match["here"])})
        return web.json_response({"lines": lines, "picture": picture, "error": error})

    async def node_image(self, request: web.Request) -> web.Response:
        node_id = int(request.match_info["node"])
        conversation = await asyncio.to_thread(self._history.conversation, self._key(request))
        node = await asyncio.to_thread(self._history.node, node_id)
        if node is None or node.conversation_id != conversation.id:
            raise web.HTTPNotFound(text="No such image in your history.")
        data = await asyncio.to_thread(lambda: stored_as_png(self._images.get(node.image_hash)))
        headers = {"Cache-Control": "private, max-age=31536000, immutable"}  # a node's image never changes
        if request.query.get("download"):  # named as the other chats name files (step-2b.png), not by a database id
            tree = await asyncio.to_thread(self._history.tree, node.id)
            label = TreeView.of(tree, node.id).label(node.id) or node_id
            headers["Content-Disposition"] = f'attachment; filename="step-{label}.png"'
        return web.Response(body=data, content_type="image/png", headers=headers)

    async def picture(self, request: web.Request) -> web.Response:
        data = self.sessions.get(request[BROWSER]).picture(request.match_info["name"])
        if data is None:
            raise web.HTTPNotFound(text="That picture is gone; ask for it again.")
        return web.Response(body=data, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    async def _shut_down(self, app: web.Application) -> None:
        self.sessions.close()
        for task in list(self._tasks):
            task.cancel()


async def _read_part(part: BodyPartReader, limit: int, too_large: UserError | None) -> bytes:
    """A form part's bytes, up to `limit`: beyond it, raise `too_large` (None: cut there)."""
    data = bytearray()
    while chunk := await part.read_chunk():
        data += chunk
        if len(data) > limit:
            if too_large is not None:
                raise too_large
            return bytes(data[:limit])
    return bytes(data)


async def _write_event(response: web.StreamResponse, event: dict, last: int, run: str) -> int:
    """Write one event unless the page has it already; returns the last sequence number written. Kept events carry
    an id, `RUN.SEQ`, which the browser sends back as Last-Event-ID when it reconnects."""
    seq = event.get("seq")
    if seq is not None and seq <= last:
        return last
    head = f"id: {run}.{seq}\n" if seq is not None else ""
    await response.write(f"{head}data: {json.dumps(event, ensure_ascii=False)}\n\n".encode())
    return seq if seq is not None else last


@asynccontextmanager
async def serving(chat: WebChat, options: WebSettings,
                  on_started: Callable[[str], None] | None = None) -> AsyncIterator[Callable[[ChatKey], Send]]:
    """Serve the page on the running event loop for as long as the block runs, beside other platforms; the caller
    starts and closes the engine with the sender this yields (bot/platforms.py). `on_started` gets the page's URL."""
    runner = web.AppRunner(chat.app(), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, options.web_host, options.web_port)
    try:
        await site.start()
    except OSError as error:
        await runner.cleanup()
        raise UserError(f"Cannot serve the web chat on {options.web_host}:{options.web_port} ({error.strerror}): "
                        "set EDITBOT_WEB_HOST / EDITBOT_WEB_PORT.") from None
    if on_started is not None:
        on_started(page_url(options))
    try:
        yield chat.send_to
    finally:
        await runner.cleanup()


def page_url(options: WebSettings) -> str:
    host = "127.0.0.1" if options.web_host in ("0.0.0.0", "") else options.web_host
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{options.web_port}/"
