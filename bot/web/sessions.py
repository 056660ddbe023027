"""Browsers and what the page shows them: a signed cookie names a browser, a Session keeps its recent chat.

The conversation itself (the edit tree, the settings) lives in the database like every other front-end's; a Session
only holds what the page needs to redraw the chat after a reload: the last events, the pictures that are not nodes
(comparisons, grids, contact sheets) and the progress of edits under way. After a server restart it starts empty
and the page shows the current image from the database.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import secrets
from collections import OrderedDict, deque
from pathlib import Path

COOKIE = "editbot_web"
COOKIE_MAX_AGE = 365 * 24 * 3600
TRANSCRIPT_EVENTS = 200
"""Events a reload replays: enough for a long session; older ones are still in the history tree."""
PICTURE_BYTES_KEPT = 256 * 1024 * 1024
"""Comparisons, grids and contact sheets kept for the pages, all browsers together (the oldest go first)."""
SESSIONS_KEPT = 1000
"""Sessions kept in memory (least recently used go first; their conversations stay in the database)."""


class CookieSigner:
    """Issues and checks `id.signature` cookies. The signature covers the password too, so changing
    EDITBOT_WEB_PASSWORD signs every browser out."""

    def __init__(self, secret: bytes, password: str | None) -> None:
        self._secret = secret
        self.password = password

    def issue(self) -> str:
        browser = secrets.token_urlsafe(18)
        return f"{browser}.{self._sign(browser)}"

    def set_on(self, response) -> None:
        """Name a new browser: a new cookie on the (aiohttp) response."""
        # Lax, not Strict: a link from another site must bring the cookie, or the page would issue a new one over it
        # (a new conversation, the old one out of reach). Other sites' POSTs still go without it (and the Origin check).
        response.set_cookie(COOKIE, self.issue(), max_age=COOKIE_MAX_AGE, httponly=True, samesite="Lax", path="/")

    def browser(self, cookie: str | None) -> str | None:
        """The browser id a cookie names, or None for a missing, forged or outdated one."""
        browser, _, signature = (cookie or "").partition(".")
        if not browser or not hmac.compare_digest(signature, self._sign(browser)):
            return None
        return browser

    def password_ok(self, given: str) -> bool:
        return self.password is None or hmac.compare_digest(given.encode(), self.password.encode())

    def _sign(self, browser: str) -> str:
        message = f"{browser}\0{self.password or ''}".encode()
        digest = hmac.new(self._secret, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest[:24]).decode()


def load_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, else one kept in DATA_DIR/web-secret (made on first start, readable by its owner
    only), so a restart keeps every browser's conversation."""
    if configured:
        return configured.encode()
    path = data_dir / "web-secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip().encode()


class Session:
    """One browser's page state. Events are JSON-able dicts; those with a `seq` are replayed after a reload."""

    def __init__(self, pictures: Pictures) -> None:
        self._seq = itertools.count(1)
        self._transcript: deque[dict] = deque(maxlen=TRANSCRIPT_EVENTS)
        self._listeners: set[asyncio.Queue] = set()
        self._pictures = pictures
        self.progress: dict[str, dict] = {}  # job id -> its latest progress event, while it runs

    def publish(self, event: dict, *, keep: bool = True) -> None:
        """Send an event to every open page of this browser; `keep` it for pages opened later."""
        if keep:
            event = {"seq": next(self._seq), **event}
            self._transcript.append(event)
        for listener in self._listeners:
            listener.put_nowait(event)

    def replay(self, after: int) -> list[dict]:
        return [event for event in self._transcript if event["seq"] > after]

    def listen(self) -> asyncio.Queue:
        queue: asyncio.Queue = asyncio.Queue()
        self._listeners.add(queue)
        return queue

    def unlisten(self, queue: asyncio.Queue) -> None:
        self._listeners.discard(queue)

    def close(self) -> None:
        """Tell every open event stream to end (the server is stopping)."""
        for listener in self._listeners:
            listener.put_nowait(None)

    def keep_picture(self, data: bytes) -> str:
        """Keep a picture for this session's pages; the name to ask for it by."""
        return self._pictures.keep(self, data)

    def picture(self, name: str) -> bytes | None:
        return self._pictures.get(self, name)


class Pictures:
    """The pictures shown in the chats that are not nodes of a tree (those are in the image store), each readable
    only by the session it was shown to, within one memory budget."""

    def __init__(self, budget: int = PICTURE_BYTES_KEPT) -> None:
        self._budget = budget
        self._kept: OrderedDict[str, tuple[Session, bytes]] = OrderedDict()
        self._size = 0

    def keep(self, owner: Session, data: bytes) -> str:
        name = secrets.token_urlsafe(12)
        self._kept[name] = (owner, data)
        self._size += len(data)
        while self._size > self._budget and len(self._kept) > 1:
            _, (_, dropped) = self._kept.popitem(last=False)
            self._size -= len(dropped)
        return name

    def get(self, owner: Session, name: str) -> bytes | None:
        kept = self._kept.get(name)
        return kept[1] if kept is not None and kept[0] is owner else None


class Sessions:
    """Session by browser id, created on first use, the least recently used forgotten past SESSIONS_KEPT."""

    def __init__(self) -> None:
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._pictures = Pictures()

    def get(self, browser: str) -> Session:
        session = self._sessions.pop(browser, None) or Session(self._pictures)
        self._sessions[browser] = session
        while len(self._sessions) > SESSIONS_KEPT:
            self._sessions.popitem(last=False)
        return session

    def close(self) -> None:
        for session in self._sessions.values():
            session.close()
