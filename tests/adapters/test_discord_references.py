"""Reference pictures from Discord: /edit's optional picture2 and picture3 attachments, as the Incoming sequence the
adapter hands the engine (the engine's side of "/ref" is tested with the engine): SimCord as in test_discord.py,
with the engine's handle replaced by a recording one that accepts everything unless told otherwise."""

from __future__ import annotations

from core.messages import TextReply
from tests.support.chat import photo_bytes

RED, GREEN, BLUE = (photo_bytes(colour=colour, fmt="PNG")
                    for colour in ((200, 30, 30), (30, 200, 30), (30, 30, 200)))


def record(monkeypatch, engine, refuse: bytes | None = None) -> list[tuple[str | None, bytes | None]]:
    """(text, image) of each Incoming that reaches the engine, each answered with a plain line (an error line for
    the picture `refuse`, as the engine answers a picture it cannot read)."""
    seen: list[tuple[str | None, bytes | None]] = []

    async def handle(incoming, send):
        seen.append((incoming.text, incoming.image))
        refused = incoming.image is not None and incoming.image == refuse
        await send(TextReply("I can't read that picture." if refused else "Noted.", error=refused))

    monkeypatch.setattr(engine, "handle", handle)
    return seen


async def test_edit_with_two_reference_pictures_adds_them_before_the_instruction(world, engine, monkeypatch):
    _, _, channel, alice, _ = world
    seen = record(monkeypatch, engine)
    await alice.slash(channel, "edit", image=("photo.png", RED), instruction="put the hat from picture 2 on her",
                      picture2=("hat.png", GREEN), picture3=("scarf.png", BLUE))
    assert seen == [(None, RED), ("/ref", GREEN), ("/ref", BLUE), ("put the hat from picture 2 on her", None)]


async def test_edit_without_references_is_one_message_as_before(world, engine, monkeypatch):
    _, _, channel, alice, _ = world
    seen = record(monkeypatch, engine)
    await alice.slash(channel, "edit", image=("photo.png", RED), instruction="make it snow")
    assert seen == [("make it snow", RED)]


async def test_a_reference_that_is_not_an_image_is_refused_before_anything_is_fetched(world, engine, monkeypatch):
    _, _, channel, alice, _ = world
    seen = record(monkeypatch, engine)
    result = await alice.slash(channel, "edit", image=("photo.png", RED), instruction="make it snow",
                               picture2=("notes.txt", b"hello"))
    assert result.ephemeral and "notes.txt" in result.response.content and "not an image" in result.response.content
    assert seen == []


async def test_a_refused_photo_stops_the_references_and_the_instruction(world, engine, monkeypatch):
    _, _, channel, alice, _ = world
    seen = record(monkeypatch, engine, refuse=RED)
    await alice.slash(channel, "edit", image=("photo.png", RED), instruction="make it snow",
                      picture2=("hat.png", GREEN))
    assert seen == [(None, RED)]  # refused: neither the reference nor the instruction lands on an earlier picture


async def test_ref_with_a_picture_adds_it_for_the_next_edit(world, engine, monkeypatch):
    _, _, channel, alice, _ = world
    seen = record(monkeypatch, engine)
    await alice.slash(channel, "ref", picture=("hat.png", GREEN))
    await alice.slash(channel, "ref")
    assert seen == [("/ref", GREEN), ("/ref clear", None)]


async def test_ref_says_what_it_does_on_discord(simcord_bot):
    ref = simcord_bot.tree.get_command("ref")
    assert "caption" not in ref.description and [option.name for option in ref.parameters] == ["picture"]


async def test_a_ref_that_is_not_an_image_is_refused_before_anything_is_fetched(world, engine, monkeypatch):
    _, _, channel, alice, _ = world
    seen = record(monkeypatch, engine)
    result = await alice.slash(channel, "ref", picture=("notes.txt", b"hello"))
    assert result.ephemeral and "not an image" in result.response.content
    assert seen == []
