"""Discord: what answers one person about their own history or their mistake is for them alone (ephemeral), and
nothing the bot posts pings anyone but the person it means to (an instruction may say "@everyone")."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bot.discord_adapter import check_attachment
from bot.sizes import size_and_limit
from core.errors import BadImage
from tests.support.chat import photo_bytes

MEGABYTE = 1024 * 1024
EPHEMERAL = 1 << 6


def posts(env) -> list[dict]:
    """The JSON of every message the bot created or edited (follow-ups, channel messages, responses)."""
    return [entry.json for entry in env.http_requests
            if entry.method in ("POST", "PATCH") and entry.json and "content" in entry.json
            and (entry.path.startswith("/webhooks/") or entry.path.startswith("/channels/"))]


async def edit(alice, channel, instruction: str):
    return await alice.slash(channel, "edit", image=("photo.jpg", photo_bytes()), instruction=instruction)


async def test_an_instruction_saying_everyone_pings_nobody(world):
    env, _, channel, alice, _ = world

    await edit(alice, channel, "@everyone make it night <@&123> <@456>")

    sent = posts(env)
    assert any("@everyone" in (post.get("content") or "") for post in sent)  # the caption echoes it...
    for post in sent:  # ...but no message may ping anyone
        mentions = post.get("allowed_mentions")
        assert mentions is not None and mentions.get("parse") == [], post
        assert not mentions.get("users") and not mentions.get("roles"), post


async def test_a_result_posted_to_the_channel_pings_only_its_person(world):
    env, _, channel, alice, _ = world
    env.inject_error("POST", "/webhooks/*", status=401, code=50027, message="Invalid Webhook Token")

    await edit(alice, channel, "@everyone make it night")

    assert channel.last_message.content.startswith(f"{alice.mention} ")
    channel_post = [post for post in posts(env) if post.get("content", "").startswith(alice.mention)][-1]
    assert "@everyone" in channel_post["content"]
    assert channel_post["allowed_mentions"]["parse"] == []
    assert [int(user) for user in channel_post["allowed_mentions"]["users"]] == [alice.id]


async def test_the_history_contact_sheet_is_private_too(world):
    env, _, channel, alice, _ = world
    await edit(alice, channel, "make it night")

    history = await alice.slash(channel, "history")

    assert history.ephemeral
    sheets = [followup for followup in history.followups if followup.attachments]
    assert sheets and all(followup.ephemeral for followup in sheets)
    assert all(followup.ephemeral for followup in history.followups)


async def test_a_refusal_after_a_public_thinking_message_is_private(world):
    env, _, channel, alice, _ = world

    result = await alice.slash(channel, "undo")  # nothing to undo: a refusal

    assert result.followups and all(followup.ephemeral for followup in result.followups)
    refusals = [post for post in posts(env) if "Send me a photo first." in post["content"]]
    assert refusals and all(post.get("flags", 0) & EPHEMERAL for post in refusals)


def attachment(size: int) -> SimpleNamespace:
    return SimpleNamespace(content_type="image/png", size=size, filename="big.png")


def test_a_size_refusal_shows_the_real_difference():
    with pytest.raises(BadImage) as refusal:
        check_attachment(attachment(20 * MEGABYTE + 10_000), 20 * MEGABYTE)
    assert "20.01 MB" in str(refusal.value) and "20.00 MB" in str(refusal.value)


@pytest.mark.parametrize(
    "size, limit, expected",
    [
        (6 * MEGABYTE, 5 * MEGABYTE, ("6.0 MB", "5.0 MB")),
        (20 * MEGABYTE + 1, 20 * MEGABYTE, ("20,971,521 bytes", "20,971,520 bytes")),
        (20 * MEGABYTE + 2000, 20 * MEGABYTE, ("20.002 MB", "20.000 MB")),
    ],
)
def test_sizes_are_shown_with_enough_decimals_to_differ(size, limit, expected):
    assert size_and_limit(size, limit) == expected
