"""Discord: results that cannot simply follow up their interaction. After the 15-minute interaction token (or when
Discord calls it invalid) they go to the channel, mentioning the person; a job re-attached after a restart is
posted there too; a result over the upload limit is re-encoded to fit and says so. SimCord as in test_discord.py."""

from __future__ import annotations

import asyncio
import io

from PIL import Image

from bot.discord_adapter import build_client
from bot.discord_replies import ANSWERED_BELOW, fit_upload, upload_caption
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey, EditJob
from core.messages import ImageReply
from core.ports import TrackedJob
from core.queue import EditQueue
from core.runner import EditRunner
from tests.adapters.test_discord import edit, webhook_posts


async def test_a_result_after_the_token_expired_goes_to_the_channel(world, engine, monkeypatch):
    env, _, channel, alice, _ = world
    await edit(alice, channel)
    release = env.bot.loop.create_future()
    real_handle = engine.handle

    async def slow_handle(incoming, send):
        await env.external_wait(release, reason="the edit takes longer than the interaction token lives")
        await real_handle(incoming, send)

    monkeypatch.setattr(engine, "handle", slow_handle)
    result = await alice.slash(channel, "undo")
    await env.advance_time(16 * 60)
    webhook_calls = len(webhook_posts(env))
    release.set_result(None)
    await env.settle()

    assert result.followups == []
    assert len(webhook_posts(env)) == webhook_calls, "a token known to be dead is not even tried"
    posted = channel.last_message
    assert posted.content.startswith(f"{alice.mention} Undone.")
    assert posted.attachments
    assert result.response.content == ANSWERED_BELOW, "the thinking message says where the answer went"
    assert not result.deferred, "and is no longer thinking"


async def test_progress_cut_short_by_the_token_says_where_the_result_went(world, engine, monkeypatch):
    env, _, channel, alice, _ = world
    release = env.bot.loop.create_future()
    real_handle = engine.handle

    async def slow_to_finish(incoming, send):
        async def late(reply):
            if isinstance(reply, ImageReply):
                await env.external_wait(release, reason="the edit runs past the interaction token")
            await send(reply)

        await real_handle(incoming, late)

    monkeypatch.setattr(engine, "handle", slow_to_finish)
    result = await edit(alice, channel)  # returns once the bot waits for the release
    assert result.response.content.startswith("⏳ ")
    await env.advance_time(16 * 60)
    release.set_result(None)
    await env.settle()

    assert channel.last_message.content.startswith(f"{alice.mention} “make it snow”")
    assert result.response.content == ANSWERED_BELOW


async def test_a_token_discord_calls_invalid_falls_back_to_the_channel(world):
    env, _, channel, alice, _ = world
    await edit(alice, channel)
    env.inject_error("POST", "/webhooks/*", status=401, code=50027, message="Invalid Webhook Token")

    await alice.slash(channel, "undo")

    posted = channel.last_message
    assert posted.content.startswith(f"{alice.mention} Undone.")
    assert posted.attachments


def test_large_results_are_reencoded_to_fit():
    noise = Image.effect_noise((256, 256), 100).convert("RGB")
    png = io.BytesIO()
    noise.save(png, "PNG")
    limit = len(png.getvalue()) // 2

    data, mime = fit_upload(png.getvalue(), limit)

    assert len(data) <= limit and mime == "image/jpeg"
    assert fit_upload(png.getvalue(), len(png.getvalue())) == (png.getvalue(), "image/png")


def test_a_result_reencoded_for_the_upload_limit_says_so():
    png = io.BytesIO()
    Image.effect_noise((512, 512), 100).convert("RGB").save(png, "PNG")
    data, _ = fit_upload(png.getvalue(), 20_000)  # small enough that only a smaller JPEG fits
    caption = upload_caption("“make it snow”", png.getvalue(), data)
    assert caption.startswith("“make it snow”\n(sent as JPEG, ") and "of 512×512" in caption
    assert "upload limit" in caption
    assert upload_caption("“make it snow”", png.getvalue(), png.getvalue()) == "“make it snow”"


class RecoveringQueue(EditQueue):
    """An in-process queue that, like a distributed one after a front-end restart, hands back jobs submitted before
    the restart: here one already finished with `nodes` as its result."""

    def __init__(self, runner: EditRunner, job: EditJob, nodes: list) -> None:
        super().__init__(runner)
        self._finished = TrackedJob("job-before-restart", job, asyncio.get_running_loop().create_future())
        self._finished.succeed(nodes)  # over: no more progress

    def recovered(self) -> list[TrackedJob]:
        return [self._finished]


async def test_a_job_re_attached_after_a_restart_is_posted_to_the_channel(world, settings, editor, history,
                                                                            image_store):
    env, _, channel, alice, _ = world
    await edit(alice, channel)
    conversation = history.conversation(ChatKey("discord", str(channel.id), str(alice.id)))
    result = history.node(conversation.head_id)
    parent = history.node(result.parent_id)
    job = EditJob(conversation.id, f"discord:{alice.id}", parent.id, parent.image_hash, result.instruction,
                  result.params)
    runner = EditRunner(editor, history, image_store)
    restarted = ConversationEngine(history, image_store, RecoveringQueue(runner, job, [result]))
    client = build_client(settings, restarted)
    await env.restart_bot(client)

    await restarted.start(send_to=client.send_to)
    try:
        for _ in range(500):  # the delivery runs in the engine's own task
            if channel.last_message.content.startswith(alice.mention):
                break
            await asyncio.sleep(0.01)
    finally:
        await restarted.close()

    posted = channel.last_message
    assert posted.content.startswith(f"{alice.mention} “make it snow”")
    [attachment] = posted.attachments
    with Image.open(io.BytesIO(await attachment.read())) as image:
        assert image.size == (96, 64)
    assert "↶ Undo" in [button.label for row in posted.components for button in row.children]
