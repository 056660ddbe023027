"""The Discord adapter, driven offline through SimCord: the real discord.py client, a simulated Discord, and the
real engine over in-memory storage with the fast fake editor (tests/conftest.py, tests/support/)."""

from __future__ import annotations

import io

import discord
import pytest
import simcord
from PIL import Image

from bot.discord_adapter import NOT_ALLOWED, build_client
from bot.discord_replies import CUSTOM_ID_PREFIX
from core.config import DiscordSettings, LimitSettings
from core.conversation.engine import ConversationEngine
from core.messages import Incoming, ProgressReply
from core.queue import EditQueue
from core.runner import EditRunner
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.support.chat import photo_bytes

MESSAGE_RESPONSE, DEFERRED_THINKING, SILENT_UPDATE, MODAL_RESPONSE = 4, 5, 6, 9  # interaction callback types
EPHEMERAL = 1 << 6
INTERACTION_UPLOAD_LIMIT = 25 * 1024 * 1024  # what SimCord, like Discord, grants an interaction by default


def original_edits(env) -> list[str]:
    """The contents the bot gave its deferred responses, in order."""
    return [
        (entry.json or {}).get("content")
        for entry in env.http_requests
        if entry.method == "PATCH" and entry.path.endswith("/messages/@original")
    ]


def acknowledgements(env) -> list[int]:
    """The interaction callback types the bot answered with, in order (5: deferred "thinking", 6: silent)."""
    return [
        entry.json["type"]
        for entry in env.http_requests
        if entry.method == "POST" and entry.path.startswith("/interactions/") and entry.path.endswith("/callback")
    ]


def webhook_posts(env) -> list:
    return [entry for entry in env.http_requests if entry.method == "POST" and entry.path.startswith("/webhooks/")]


def button_labels(message) -> list[str]:
    return [component["label"] for row in message.components for component in row["components"]]


def button_id(message, label: str) -> str:
    return next(
        component["custom_id"]
        for row in message.components
        for component in row["components"]
        if component["label"] == label
    )


async def edit(alice, channel, instruction="make it snow", **options):
    return await alice.slash(channel, "edit", image=("photo.jpg", photo_bytes()), instruction=instruction, **options)


async def test_edit_defers_shows_progress_then_follows_up_with_image_and_buttons(world, editor):
    env, _, channel, alice, _ = world

    result = await edit(alice, channel)

    assert acknowledgements(env) == [DEFERRED_THINKING] and not result.ephemeral
    progress = original_edits(env)
    assert progress[0].startswith("⏳ ")
    assert progress[-1] == "✅ Done."
    assert result.response.content == "✅ Done."
    [followup] = result.followups
    assert "make it snow" in followup.content
    [attachment] = followup.attachments
    assert attachment.filename.endswith(".png")
    with Image.open(io.BytesIO(await attachment.read())) as image:
        assert image.size == (96, 64)
    assert button_labels(followup) == ["↶ Undo", "🎲 Retry", "➕ Stronger", "➖ Weaker", "⇆ Compare"]
    assert all(button_id(followup, label).startswith(CUSTOM_ID_PREFIX) for label in button_labels(followup))
    assert [call[0] for call in editor.calls] == ["make it snow"]


async def test_progress_edits_are_throttled(world, engine, monkeypatch):
    env, _, channel, alice, _ = world
    updates = count_progress(monkeypatch, engine)

    await edit(alice, channel)  # 20 steps, all within the same (simulated) second

    assert updates[0] > 3
    assert len(original_edits(env)) == 2, "one progress edit, then the final line"


async def test_a_failed_progress_edit_does_not_lose_the_result(world):
    env, _, channel, alice, _ = world
    env.inject_error("PATCH", "/webhooks/*/messages/@original", status=500)

    result = await edit(alice, channel)

    assert result.followups[0].attachments


async def test_a_press_shows_progress_only_to_the_presser_and_then_removes_it(world, engine, monkeypatch):
    env, _, channel, alice, _ = world
    first = (await edit(alice, channel)).followups[0]
    updates = count_progress(monkeypatch, engine)

    pressed = await alice.click(first, label="🎲 Retry")

    assert acknowledgements(env)[-1] == SILENT_UPDATE
    assert updates[0] > 0
    progress_posts = [entry for entry in webhook_posts(env) if (entry.json or {}).get("content", "").startswith("⏳")]
    assert len(progress_posts) == 1 and progress_posts[0].json["flags"] & EPHEMERAL
    assert any(entry.method == "DELETE" and "/webhooks/" in entry.path for entry in env.http_requests)
    [result] = pressed.followups  # the progress message is gone
    assert "make it snow" in result.content and result.attachments and not result.ephemeral


async def test_direct_messages_work_too(simcord_env, editor):
    alice = simcord_env.create_user("alice")

    result = await alice.slash("edit", image=("photo.png", photo_bytes(fmt="PNG")), instruction="make it snow")

    assert result.followups[0].attachments
    assert [call[0] for call in editor.calls] == ["make it snow"]


async def test_edit_options_become_settings(world, editor):
    env, _, channel, alice, _ = world

    await edit(alice, channel, text_guidance=9.0, steps=3, seed=42)

    [(_, params)] = editor.calls
    assert (params.text_guidance, params.steps, params.seed) == (9.0, 3, 42)


async def test_refine_edits_the_current_image(world, editor):
    env, _, channel, alice, _ = world
    await edit(alice, channel)

    result = await alice.slash(channel, "refine", instruction="now add a rainbow")

    [followup] = result.followups
    assert "now add a rainbow" in followup.content
    assert followup.attachments
    assert [call[0] for call in editor.calls] == ["make it snow", "now add a rainbow"]


async def test_undo_button_goes_back(world):
    env, _, channel, alice, _ = world
    await edit(alice, channel)
    refined = (await alice.slash(channel, "refine", instruction="now add a rainbow")).followups[0]

    pressed = await alice.click(refined, label="↶ Undo")

    [followup] = pressed.followups
    assert followup.content.startswith("Undone.") and "make it snow" in followup.content
    assert followup.attachments and not followup.ephemeral


async def test_a_strangers_press_is_refused_only_to_them(world, editor):
    env, _, channel, alice, bob = world
    result = await edit(alice, channel)

    pressed = await bob.click(result.followups[0], label="🎲 Retry")

    [refusal] = pressed.followups
    assert refusal.ephemeral
    assert "someone else" in refusal.content
    assert not refusal.attachments
    assert len(editor.calls) == 1


async def test_a_non_image_attachment_is_refused(world, engine, monkeypatch):
    env, _, channel, alice, _ = world
    handled = spy_engine(monkeypatch, engine)

    result = await alice.slash(channel, "edit", image=("notes.txt", b"hello"), instruction="make it snow")

    assert result.ephemeral and acknowledgements(env) == [MESSAGE_RESPONSE]
    assert result.response.content == "“notes.txt” is not an image: please attach a photo (JPEG, PNG, WebP or GIF)."
    assert handled == []


@pytest.mark.parametrize(
    ("our_limit", "size"),
    [
        (64 * 1024 * 1024, INTERACTION_UPLOAD_LIMIT + 1),  # the interaction's own limit
        (1024, 2048),  # our configured limit, when lower
    ],
)
async def test_an_oversize_attachment_is_refused_before_reading(world, engine, settings, monkeypatch, our_limit, size):
    env, _, channel, alice, _ = world
    settings.limits = LimitSettings(max_upload_bytes=our_limit)
    handled = spy_engine(monkeypatch, engine)
    reads = []

    async def read(self, **kwargs):
        reads.append(self.filename)
        return b""

    monkeypatch.setattr(discord.Attachment, "read", read)

    result = await alice.slash(channel, "edit", image=("huge.png", b"\0" * size), instruction="make it snow")

    assert result.ephemeral and "the most I accept is" in result.response.content
    assert reads == [] and handled == []


async def test_edit_this_image_menu_asks_for_an_instruction(world, editor):
    env, _, channel, alice, _ = world
    message = await alice.send(channel, "look", attachments=[("cat.jpg", photo_bytes())])

    shown = await alice.context_menu(channel, "Edit this image", message)
    assert shown.modal is not None
    submitted = await alice.submit_modal(shown, {"instruction": "make it a watercolour"})

    assert acknowledgements(env) == [MODAL_RESPONSE, DEFERRED_THINKING]
    assert "make it a watercolour" in submitted.followups[0].content
    assert submitted.followups[0].attachments
    assert [call[0] for call in editor.calls] == ["make it a watercolour"]


async def test_edit_this_image_on_a_message_without_image(world):
    env, _, channel, alice, _ = world
    message = await alice.send(channel, "no picture here")

    result = await alice.context_menu(channel, "Edit this image", message)

    assert result.modal is None and result.ephemeral
    assert result.response.content == "That message has no image to edit."


async def test_setting_commands_are_generated_from_the_engine_s_arguments(world):
    env, _, channel, alice, _ = world

    await alice.slash(channel, "text", x=9.0)
    result = await alice.slash(channel, "steps", n=30)

    assert result.response.content.startswith("Settings:")
    assert "text guidance 9" in result.response.content and "30 steps" in result.response.content
    shown = await alice.slash(channel, "settings")
    assert shown.ephemeral and "Text guidance: 9" in shown.response.content
    assert "Seed: random" in shown.response.content
    await alice.slash(channel, "seed", n=77)
    assert "Seed: 77" in (await alice.slash(channel, "settings")).response.content
    await alice.slash(channel, "seed")  # left out: back to random
    assert "Seed: random" in (await alice.slash(channel, "settings")).response.content


async def test_errors_are_one_line(world):
    env, _, channel, alice, _ = world

    result = await alice.slash(channel, "undo")

    [refusal] = result.followups
    assert refusal.content == "Send me a photo first." and refusal.ephemeral


async def test_meant_and_asis_reach_the_engine(world):
    env, _, channel, alice, _ = world
    await edit(alice, channel)

    meant = await alice.slash(channel, "meant", english="make the photo snowy")
    asis = await alice.slash(channel, "asis")

    # Edited in English, so there is no translation to correct or to skip: the engine's own lines come back, to the
    # person alone (a refusal is a private follow-up).
    [meant_refusal], [asis_refusal] = meant.followups, asis.followups
    assert "was not translated" in meant_refusal.content and meant_refusal.ephemeral
    assert "nothing to run as is" in asis_refusal.content and asis_refusal.ephemeral


async def test_goto_and_history(world):
    env, _, channel, alice, _ = world
    await edit(alice, channel)

    history = await alice.slash(channel, "history")
    back = await alice.slash(channel, "goto", label="0")

    assert history.ephemeral and "make it snow" in history.response.content
    assert back.response.content.startswith("Step 0: Original photo")


async def test_allowlist_refuses_others_politely(world, settings, engine, monkeypatch):
    env, guild, channel, alice, bob = world
    settings.discord = DiscordSettings(allowed_ids={alice.id})
    handled = spy_engine(monkeypatch, engine)

    refused = await bob.slash(channel, "help")
    allowed = await alice.slash(channel, "help")

    assert refused.ephemeral and refused.response.content == NOT_ALLOWED
    assert allowed.response.content != NOT_ALLOWED
    assert [incoming.key.user_id for incoming in handled] == [str(alice.id)]


@pytest.mark.slow
async def test_end_to_end_with_the_tiny_model(settings):
    from core.editing.pix2pix import Pix2PixEditor
    from core.editing.sources import load_pipeline

    editor = Pix2PixEditor(load_pipeline("tiny", device="cpu"), safety_checker=False)
    history, images = InMemoryHistoryRepository(), InMemoryImageStore()
    engine = ConversationEngine(history, images, EditQueue(EditRunner(editor, history, images)))
    await engine.start()
    try:
        async with simcord.run(build_client(settings, engine), settle_timeout=120) as env:
            channel = env.create_guild().create_text_channel("art")
            alice = env.guild.add_member(env.create_user("alice"))

            result = await edit(alice, channel, steps=2, seed=7)

            [followup] = result.followups
            assert "2 steps · seed 7" in followup.content
            with Image.open(io.BytesIO(await followup.attachments[0].read())) as image:
                assert image.format == "PNG" and image.size == (96, 64)
    finally:
        await engine.close()


def spy_engine(monkeypatch, engine) -> list[Incoming]:
    """Record what reaches the engine (still answering as usual)."""
    handled: list[Incoming] = []
    real_handle = engine.handle

    async def handle(incoming, send):
        handled.append(incoming)
        await real_handle(incoming, send)

    monkeypatch.setattr(engine, "handle", handle)
    return handled


def count_progress(monkeypatch, engine) -> list[int]:
    """How many ProgressReplies the engine sends, as a one-item list the test reads after acting."""
    count = [0]
    real_handle = engine.handle

    async def handle(incoming, send):
        async def counting(reply):
            count[0] += isinstance(reply, ProgressReply)
            await send(reply)

        await real_handle(incoming, counting)

    monkeypatch.setattr(engine, "handle", handle)
    return count


async def test_sweep_grid_and_a_pick_button(world, editor):
    env, _, channel, alice, _ = world
    await edit(alice, channel)

    swept = await alice.slash(channel, "sweep")
    grid = swept.followups[0] if swept.followups else swept.response
    assert editor.batches == [9]
    assert grid.attachments and "Pick one" in grid.content

    picked = await alice.click(grid, label="Pick 5")
    assert picked.followups[0].content.startswith("Picked.")


async def test_exact_edits_and_compare(world):
    env, _, channel, alice, _ = world
    await edit(alice, channel)

    rotated = await alice.slash(channel, "rotate", angle="90")
    compared = await alice.slash(channel, "compare")

    for result in (rotated, compared):
        message = result.followups[0] if result.followups else result.response
        assert message.attachments
    message = rotated.followups[0] if rotated.followups else rotated.response
    assert "Rotated 90° clockwise" in message.content
