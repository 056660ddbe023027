"""The client side of the Bot API emulator (tests/support/telegram_harness.py): one test's session, which delivers
updates as people and reads the bot's calls in order, and the people themselves, who build the updates Telegram
would send (texts with their entities, photos in several sizes, documents, groups, replies, button presses)."""

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from core.domain import ChatKey
from core.messages import Press
from tests.support.chat import photo_bytes
from tests.support.fakes import FakeEditor

WAIT_SECONDS = 20.0
"""How long to wait for the bot's next call before failing: a generous bound so a slow machine never flakes."""

BOT_ID = 123456789  # Telemelya's getMe
BOT_USERNAME = "telemelya_bot"


class EmulatorSession:
    """One test's view of the emulator: it sends updates as people and reads the bot's calls in order.
    webhook_port: where the bot listens for updates, for tests that post to it directly."""

    _ids = itertools.count(int(time.time() * 1000) % 10**9)

    def __init__(self, url: str, bot_token: str, secret_token: str, webhook_port: int = 0) -> None:
        self.bot_token = bot_token
        self.secret_token = secret_token
        self.webhook_port = webhook_port
        self.session_id = f"editbot-{uuid.uuid4()}"
        self.http = httpx.AsyncClient(base_url=url, headers={"Authorization": "Bearer test"}, timeout=WAIT_SECONDS)
        self._seen = 0

    async def close(self) -> None:
        await self.http.aclose()

    @classmethod
    def new_id(cls) -> int:
        """A fresh chat, user or message id: ids map to sessions in the emulator, so tests never share one."""
        return next(cls._ids)

    # ------------------------------------------------------------------ what people do

    async def upload(self, data: bytes, filename: str) -> str:
        """Put file bytes on the emulator; returns the file_id an update can refer to."""
        response = await self.http.post(
            "/api/v1/test/upload_media",
            params={"session_id": self.session_id},
            files={"file": (filename, data, "application/octet-stream")},
        )
        response.raise_for_status()
        return response.json()["file_id"]

    async def deliver(self, update: dict, chat_id: int) -> None:
        response = await self.http.post(
            "/api/v1/test/harness/deliver",
            json={
                "session_id": self.session_id,
                "chat_id": chat_id,
                "update": {"update_id": self.new_id(), **update},
                "bot_token": self.bot_token,
                "secret_token": self.secret_token,
            },
        )
        response.raise_for_status()
        outcome = response.json()
        assert outcome.get("delivered") and outcome["status_code"] == 200, outcome

    async def download(self, file_id: str) -> bytes:
        """The bytes of a file the bot sent."""
        response = await self.http.get(f"/api/v1/test/media/{file_id}", params={"session_id": self.session_id})
        response.raise_for_status()
        return response.content

    async def commands(self) -> list[dict] | None:
        response = await self.http.get("/api/v1/test/harness/commands", params={"bot_token": self.bot_token})
        response.raise_for_status()
        return response.json()["commands"]

    # ------------------------------------------------------------------ what the bot did

    async def responses(self) -> list[dict]:
        """Every Bot API call the bot made in this session, in order."""
        response = await self.http.get("/api/v1/test/responses", params={"session_id": self.session_id})
        response.raise_for_status()
        return response.json()["responses"]

    async def expect(self, method: str, where: Callable[[dict], bool] = lambda record: True) -> dict:
        """The next call (after those already expected) with this method matching `where`; fails after a wait."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            records = await self.responses()
            for index in range(self._seen, len(records)):
                if records[index]["method"] == method and where(records[index]):
                    self._seen = index + 1
                    return records[index]
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot never called {method}; it called {[r['method'] for r in records]}")
            await asyncio.sleep(0.05)

    async def settle(self) -> list[dict]:
        """Calls made since the last expectation, once the bot has gone quiet for a moment."""
        count = -1
        records = await self.responses()
        while count != len(records):
            count = len(records)
            await asyncio.sleep(0.3)
            records = await self.responses()
        return records[self._seen :]


def _entities(text: str) -> list[dict]:
    """The entities Telegram marks in a text: a leading command and mentions of the bot (ASCII texts only)."""
    entities = []
    if text.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
    mention = f"@{BOT_USERNAME}"
    start = text.find(mention)
    while start >= 0:
        entities.append({"type": "mention", "offset": start, "length": len(mention)})
        start = text.find(mention, start + 1)
    return entities


class Person:
    """Someone talking to the bot in one chat (private unless `chat_type` says otherwise)."""

    def __init__(self, session: EmulatorSession, *, chat_id: int | None = None, chat_type: str = "private") -> None:
        self.session = session
        self.user_id = session.new_id()
        self.chat_id = chat_id if chat_id is not None else self.user_id
        self.chat_type = chat_type

    async def send(self, **fields) -> None:
        """Send a message with these fields (text, photo, document, location...) to the bot's chat."""
        chat = {"id": self.chat_id, "type": self.chat_type}
        if self.chat_type != "private":
            chat["title"] = "Test group"
        message = {
            "message_id": self.session.new_id(),
            "from": {"id": self.user_id, "is_bot": False, "first_name": f"Tester{self.user_id}"},
            "chat": chat,
            "date": int(time.time()),
            **fields,
        }
        await self.session.deliver({"message": message}, self.chat_id)

    async def say(self, text: str, *, reply_to: dict | None = None) -> None:
        fields: dict = {"text": text, "entities": _entities(text)}
        if reply_to is not None:
            fields["reply_to_message"] = reply_to
        await self.send(**fields)

    async def send_photo(
        self, sizes: list[tuple[bytes, int, int]], caption: str | None = None, *, file_size: int | None = None,
        media_group_id: str | None = None,
    ) -> None:
        """A compressed photo: one (bytes, width, height) per size Telegram made, smallest first; media_group_id:
        one photo of an album (each comes as its own update)."""
        photo = []
        for data, width, height in sizes:
            file_id = await self.session.upload(data, "photo.jpg")
            photo.append({
                "file_id": file_id,
                "file_unique_id": file_id[:16],
                "width": width,
                "height": height,
                "file_size": file_size or len(data),
            })
        fields: dict = {"photo": photo}
        if media_group_id is not None:
            fields["media_group_id"] = media_group_id
        if caption is not None:
            fields.update(caption=caption, caption_entities=_entities(caption))
        await self.send(**fields)

    async def send_document(
        self, data: bytes, filename: str, mime_type: str, caption: str | None = None, *, file_size: int | None = None
    ) -> None:
        """A file sent uncompressed. file_size may claim more than the bytes (to test limits without 20 MB)."""
        file_id = await self.session.upload(data, filename)
        document = {
            "file_id": file_id,
            "file_unique_id": file_id[:16],
            "file_name": filename,
            "mime_type": mime_type,
            "file_size": file_size or len(data),
        }
        fields: dict = {"document": document}
        if caption is not None:
            fields.update(caption=caption, caption_entities=_entities(caption))
        await self.send(**fields)

    async def press(self, data: str, message_id: int) -> str:
        """Press an inline button with this callback data under the bot's message; returns the query id."""
        query_id = str(uuid.uuid4())
        message = {
            "message_id": message_id,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "TestBot", "username": BOT_USERNAME},
            "chat": {"id": self.chat_id, "type": self.chat_type},
            "date": int(time.time()),
            "photo": [{"file_id": "shown", "file_unique_id": "shown", "width": 64, "height": 64}],
        }
        query = {
            "id": query_id,
            "from": {"id": self.user_id, "is_bot": False, "first_name": f"Tester{self.user_id}"},
            "chat_instance": str(self.chat_id),
            "message": message,
            "data": data,
        }
        await self.session.deliver({"callback_query": query}, self.chat_id)
        return query_id


@pytest.fixture
def stepping_editor() -> FakeEditor:
    """The end-to-end Telegram tests' editor, which a test module takes as its own with `editor = stepping_editor`
    (overriding conftest's): each step takes a moment, as a real edit does, so there is progress to show."""
    return FakeEditor(step_seconds=0.005)


def buttons(record: dict) -> dict[str, Press]:
    """The inline keyboard of a recorded message: label -> parsed press."""
    rows = (record.get("reply_markup") or {}).get("inline_keyboard", [])
    return {button["text"]: Press.parse(button["callback_data"]) for row in rows for button in row}


def as_received(record: dict, person: Person) -> dict:
    """The bot's recorded message as Telegram puts it in the person's reply to it (with its buttons)."""
    return {
        "message_id": record["message_id"],
        "from": {"id": BOT_ID, "is_bot": True, "first_name": "TestBot", "username": BOT_USERNAME},
        "chat": {"id": person.chat_id, "type": person.chat_type},
        "date": int(time.time()),
        "caption": record.get("caption"),
        "reply_markup": record.get("reply_markup"),
    }


def key_of(person: Person) -> ChatKey:
    return ChatKey("telegram", str(person.chat_id), str(person.user_id))


async def edit_photo(session: EmulatorSession, person: Person, caption: str) -> dict:
    await person.send_photo([(photo_bytes((96, 64)), 96, 64)], caption=caption)
    return await session.expect("sendPhoto")
