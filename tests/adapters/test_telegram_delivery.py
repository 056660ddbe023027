"""Results on Telegram: a photo inside Telegram's photo limits, and the full-size file as a document on request (the
Full size button under a result, or /file) or in answer to a file. The engine shows results as JPEG previews, as the
bots' engine does."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from bot.telegram_photos import PHOTO_MAX_BYTES, fits_as_photo, photo_for
from core.messages import Press
from core.stored_images import stored_as_png
from tests.support.chat import photo_bytes
from tests.support.telegram_session import Person, as_received


@pytest.fixture
def jpeg_previews() -> bool:
    return True


def full_size_press(record: dict) -> Press:
    rows = record["reply_markup"]["inline_keyboard"]
    [data] = [button["callback_data"] for row in rows for button in row if button["text"] == "⬇ Full size"]
    return Press.parse(data)


async def test_the_full_size_button_and_file_send_the_stored_picture_as_a_document(session, history, image_store):
    alice = Person(session)
    await alice.send_photo([(photo_bytes((96, 64)), 96, 64)], caption="make it night")
    result = await session.expect("sendPhoto")
    press = full_size_press(result)
    stored = stored_as_png(image_store.get(history.node(press.node_id).image_hash))

    await alice.press(press.data, result["message_id"])
    pressed = await session.expect("sendDocument")
    assert await session.download(pressed["file_id"]) == stored
    assert "Full size" in pressed["caption"]

    await alice.say("/file")
    asked = await session.expect("sendDocument")
    assert await session.download(asked["file_id"]) == stored
    assert pressed["file_name"] == asked["file_name"] == "step-1.png"  # the label /history shows and /goto takes


async def test_file_info_and_compare_in_reply_to_an_older_result_are_about_that_result(session, history,
                                                                                      image_store):
    alice = Person(session)
    await alice.send_photo([(photo_bytes((96, 64)), 96, 64)], caption="make it night")
    older = await session.expect("sendPhoto")
    await alice.say("add a moon")
    await session.expect("sendPhoto")
    older_node = history.node(full_size_press(older).node_id)

    await alice.say("/file", reply_to=as_received(older, alice))
    sent = await session.expect("sendDocument")
    assert await session.download(sent["file_id"]) == stored_as_png(image_store.get(older_node.image_hash))
    assert sent["file_name"] == "step-1.png"
    await alice.say("/info", reply_to=as_received(older, alice))
    record = await session.expect("sendMessage", lambda record: "Made:" in record["text"])
    assert "“make it night”" in record["text"] and "add a moon" not in record["text"]
    await alice.say("/compare", reply_to=as_received(older, alice))
    compared = await session.expect("sendPhoto", lambda record: "Before and after" in record.get("caption", ""))
    assert "make it night" in compared["caption"]


async def test_a_picture_sent_as_a_file_gets_its_result_back_as_a_lossless_file(session, history, image_store):
    """Someone who sends a PNG uncompressed, to keep every pixel, gets the stored result, not the JPEG preview."""
    alice = Person(session)
    await alice.send_document(photo_bytes((96, 64)), "photo.png", "image/png", caption="make it night")
    result = await session.expect("sendDocument")

    node = history.node(full_size_press(result).node_id)
    returned = await session.download(result["file_id"])
    assert returned == stored_as_png(image_store.get(node.image_hash))
    assert result["file_name"] == "step-1.png" and "make it night" in result["caption"]


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_picture_beyond_the_photo_limits_is_brought_inside_them():
    wide = _png(Image.new("RGB", (9000, 1200), (20, 90, 160)))
    assert not fits_as_photo(wide)
    shown = Image.open(io.BytesIO(photo_for(wide)))
    assert shown.width + shown.height < 10_000 and abs(shown.width / shown.height - 9000 / 1200) < 0.01
    noise = _png(Image.frombytes("RGB", (1900, 1900), os.urandom(1900 * 1900 * 3)))
    assert len(noise) > PHOTO_MAX_BYTES
    squeezed = photo_for(noise)
    assert len(squeezed) <= PHOTO_MAX_BYTES and fits_as_photo(squeezed)


def test_sides_beyond_twenty_to_one_cannot_be_a_photo_and_a_fitting_png_goes_as_it_is():
    assert photo_for(_png(Image.new("RGB", (2100, 100)))) is None
    small = _png(Image.new("RGB", (96, 64)))
    assert photo_for(small) is small
