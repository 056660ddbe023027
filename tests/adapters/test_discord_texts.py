"""Discord: what the bot writes reads whole and speaks of what a person can do on Discord. Texts longer than one
Discord message arrive in several, cut between lines; the greeting and /help name /edit and /refine, as Discord has
no captions and the bot reads no plain messages. SimCord as in test_discord.py."""

from __future__ import annotations

from bot.discord_replies import MESSAGE_LIMIT, message_parts
from tests.support.chat import photo_bytes


def texts(result) -> list[str]:
    return [message.content for message in [result.response, *result.followups] if message is not None]


async def test_help_lists_every_command_across_messages(world, engine):
    _, _, channel, alice, _ = world

    result = await alice.slash(channel, "help")

    shown = texts(result)
    assert len(shown) > 1 and all(len(text) <= MESSAGE_LIMIT for text in shown)
    assert all(message.ephemeral for message in [result.response, *result.followups])
    listed = "\n".join(shown)
    for info in engine.commands:
        assert f"{info.usage} — {info.summary}" in listed.splitlines()


def test_long_texts_are_cut_between_lines_and_lose_nothing():
    lines = [f"{number}. “make it snow” and a few more words" for number in range(200)]
    text = "\n".join(lines)

    parts = message_parts(text)

    assert len(parts) > 1 and all(len(part) <= MESSAGE_LIMIT for part in parts)
    assert "\n".join(parts) == text


def test_a_line_longer_than_a_message_is_cut_between_words():
    text = " ".join(["snow"] * 1000)

    parts = message_parts(text)

    assert all(len(part) <= MESSAGE_LIMIT for part in parts)
    assert " ".join(parts) == text


async def test_the_greeting_and_help_say_how_to_edit_on_discord(world):
    _, _, channel, alice, _ = world

    greeting = texts(await alice.slash(channel, "start"))[0]
    help_intro = texts(await alice.slash(channel, "help"))[0].splitlines()[0]

    for text in (greeting, help_intro):
        assert "/edit" in text and "/refine" in text and "Edit this image" in text
        assert "caption" not in text and "plain text" not in text


async def test_pictures_are_named_after_the_labels_goto_takes(world):
    _, _, channel, alice, _ = world
    await alice.slash(channel, "edit", image=("photo.jpg", photo_bytes()), instruction="make it snow")
    retried = await alice.slash(channel, "retry")  # 1b: a sibling of step 1
    history = await alice.slash(channel, "history")

    assert [attachment.filename for attachment in retried.followups[0].attachments] == ["step-1b.png"]
    assert [attachment.filename for message in history.followups
            for attachment in message.attachments] == ["history-1b.png"]


async def test_a_line_before_an_edit_is_not_overwritten_by_its_progress(world):
    _, _, channel, alice, _ = world
    await alice.slash(channel, "edit", image=("photo.jpg", photo_bytes()), instruction="make it snow")

    tuned = await alice.slash(channel, "refine", instruction="stronger")

    shown = texts(tuned)
    assert shown[0].startswith("More change: now text guidance 9"), shown
    assert tuned.followups[-1].attachments and "text guidance 9" in tuned.followups[-1].content


async def test_a_line_before_a_refusal_stays_where_everyone_saw_it(world):
    _, _, channel, alice, _ = world

    refused = await alice.slash(channel, "edit", image=("photo.jpg", photo_bytes()), instruction="/text 50")

    [said, refusal] = [message for message in [refused.response, *refused.followups] if message is not None]
    assert said.content == "Got your photo; now /text on it." and not said.ephemeral
    assert refusal.content.startswith("/text needs a number") and refusal.ephemeral
