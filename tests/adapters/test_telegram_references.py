"""Reference pictures from Telegram: an album, and `/ref` replying to a photo, as the Incoming sequence the adapter
hands the engine (the engine's side of "/ref" is tested with the engine). The real adapter in webhook mode against
the Bot API emulator, as in test_telegram.py; the engine's handle records what it is handed and accepts it all
(one plain line each), unless told to refuse a picture."""

from __future__ import annotations

import asyncio
import time

import pytest

from core.messages import Incoming, TextReply
from tests.support.chat import photo_bytes
from tests.support.telegram_harness import UPLOAD_LIMIT
from tests.support.telegram_session import BOT_USERNAME, Person

RED, GREEN, BLUE = photo_bytes(colour=(200, 30, 30)), photo_bytes(colour=(30, 200, 30)), photo_bytes(colour=(30, 30, 200))


class RecordingEngine:
    """The real engine (started, closed, its commands), whose `handle` keeps every Incoming in `received` and answers
    one plain line: an error line for the picture `refuse`, as the engine answers a picture it cannot read."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.received: list[Incoming] = []
        self.handled = 0
        self.refuse: bytes | None = None

    def __getattr__(self, name):
        return getattr(self._engine, name)

    async def handle(self, incoming: Incoming, send) -> None:
        self.received.append(incoming)
        refused = incoming.image is not None and incoming.image == self.refuse
        try:
            await send(TextReply("I can't read that picture." if refused else "Noted.", error=refused))
        finally:
            self.handled += 1


@pytest.fixture
def engine(engine):
    return RecordingEngine(engine)


def seen(engine: RecordingEngine) -> list[tuple[str | None, bytes | None]]:
    return [(incoming.text, incoming.image) for incoming in engine.received]


async def handled(engine: RecordingEngine, count: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while engine.handled < count:
        assert time.monotonic() < deadline, f"only {seen(engine)} handled"
        await asyncio.sleep(0.05)


async def send_album(person: Person, pictures: list[bytes], captions: dict[int, str], group: str = "album-1"):
    for number, data in enumerate(pictures):
        await person.send_photo([(data, 96, 64)], caption=captions.get(number), media_group_id=group)


async def test_an_album_starts_from_its_first_photo_adds_the_others_as_references_then_edits(session, engine):
    alice = Person(session)
    await send_album(alice, [RED, GREEN, BLUE], {0: "put the hat from picture 2 on her"})
    await handled(engine, 4)
    assert seen(engine) == [(None, RED), ("/ref", GREEN), ("/ref", BLUE), ("put the hat from picture 2 on her", None)]


async def test_an_album_caption_on_a_later_photo_still_comes_last(session, engine):
    alice = Person(session)
    await send_album(alice, [RED, GREEN], {1: "swap the colours"})
    await handled(engine, 3)
    assert seen(engine) == [(None, RED), ("/ref", GREEN), ("swap the colours", None)]


async def test_two_albums_of_two_people_stay_apart(session, engine):
    alice, bob = Person(session), Person(session)
    await asyncio.gather(send_album(alice, [RED, GREEN], {0: "one"}, group="a"),
                         send_album(bob, [BLUE, RED], {0: "two"}, group="b"))
    await handled(engine, 6)
    by_person = {person.user_id: [(i.text, i.image) for i in engine.received if i.key.user_id == str(person.user_id)]
                 for person in (alice, bob)}
    assert by_person[alice.user_id] == [(None, RED), ("/ref", GREEN), ("one", None)]
    assert by_person[bob.user_id] == [(None, BLUE), ("/ref", RED), ("two", None)]


async def test_an_album_in_a_group_counts_only_when_its_caption_mentions_the_bot(session, engine):
    alice = Person(session, chat_id=-session.new_id(), chat_type="group")
    await send_album(alice, [RED, GREEN], {0: "just sharing"}, group="chatter")
    await send_album(alice, [GREEN, BLUE], {0: f"@{BOT_USERNAME} blend them"}, group="for-the-bot")
    await handled(engine, 3)
    await asyncio.sleep(1.5)  # the first album's gathering is long over: nothing more comes
    assert seen(engine) == [(None, GREEN), ("/ref", BLUE), ("blend them", None)]


async def test_ref_replying_to_a_photo_makes_that_photo_a_reference(session, engine):
    alice = Person(session)
    await alice.send_photo([(RED, 96, 64)])
    await handled(engine, 1)
    file_id = await session.upload(GREEN, "photo.jpg")
    earlier = {
        "message_id": session.new_id(),
        "from": {"id": alice.user_id, "is_bot": False, "first_name": "Tester"},
        "chat": {"id": alice.chat_id, "type": "private"},
        "date": int(time.time()),
        "photo": [{"file_id": file_id, "file_unique_id": file_id[:16], "width": 96, "height": 64}],
    }
    await alice.say("/ref", reply_to=earlier)
    await handled(engine, 2)
    await alice.say("/ref")  # replying to nothing: the engine explains /ref itself
    await handled(engine, 3)
    assert seen(engine) == [(None, RED), ("/ref", GREEN), ("/ref", None)]


async def test_a_refused_first_photo_stops_the_album(session, engine):
    engine.refuse = RED
    alice = Person(session)
    await send_album(alice, [RED, GREEN], {0: "make it snow"})
    await handled(engine, 1)
    await asyncio.sleep(0.5)
    assert seen(engine) == [(None, RED)]  # neither the reference nor the caption lands on an earlier picture


async def test_a_photo_of_an_album_that_cannot_be_fetched_ends_the_album_there(session, engine):
    alice = Person(session)
    await alice.send_photo([(RED, 96, 64)], caption="put the hat from picture 3 on her", media_group_id="big")
    await alice.send_photo([(GREEN, 96, 64)], file_size=UPLOAD_LIMIT + 1024 * 1024, media_group_id="big")
    await alice.send_photo([(BLUE, 96, 64)], media_group_id="big")
    refusal = await session.expect("sendMessage", lambda record: "MB" in record.get("text", ""))
    await handled(engine, 1)
    await asyncio.sleep(0.5)
    assert "6.0 MB" in refusal["text"]
    assert seen(engine) == [(None, RED)]  # the third photo is not taken for "picture 2", nor the caption sent on
