"""The conversation engine: the one call every chat adapter makes.

    await engine.handle(Incoming(key, text, image), send)

answers a message by awaiting `send(reply)` for each Reply (core/messages.py). The engine owns the rules of the
conversation: a photo starts a new tree, plain text edits the current image, commands navigate and tune, buttons act
on the node they were built for. It reaches the world only through the ports (history, images, the edit queue), and
every repository or image call runs in a worker thread so the event loop stays free.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace

from core.commands import CommandInfo, collect, command, parse_number, parse_whole, split_command, unknown_command
from core.domain import (
    IMAGE_GUIDANCE_RANGE,
    SEED_RANGE,
    STEPS_RANGE,
    TEXT_GUIDANCE_RANGE,
    Conversation,
    EditParams,
    Node,
)
from core.errors import BadParams, UserError
from core.images import encode_png, load_untrusted
from core.metrics import log_conversation
from core.messages import Button, ImageReply, Incoming, Press, ProgressReply, Reply, TextReply
from core.ports import HistoryRepository, ImageStore
from core.jobs import EditJob
from core.queue import EditQueue, Position, Step

log = logging.getLogger(__name__)

Send = Callable[[Reply], Awaitable[None]]

# What the Stronger / Weaker buttons change, per press. Documented in the README.
STRONGER_TEXT_STEP = 1.5
STRONGER_IMAGE_STEP = 0.25


def _clamp(value: float, bounds: tuple[float, float]) -> float:
    return round(min(max(value, bounds[0]), bounds[1]), 2)


class ConversationEngine:
    """Answers every message of every conversation, whichever platform it came from."""

    def __init__(
        self,
        history: HistoryRepository,
        images: ImageStore,
        queue: EditQueue,
        *,
        intake_limits: dict | None = None,
        defaults: EditParams = EditParams(),
        command_groups: Iterable[object] = (),
    ) -> None:
        """command_groups: more objects whose `@command` methods answer commands too (e.g. admin commands);
        their handlers take (conversation, args, send) like the engine's own."""
        self._history = history
        self._images = images
        self._queue = queue
        self._intake_limits = intake_limits or {}
        self._defaults = defaults
        self._handlers = collect(self, *command_groups)

    @property
    def commands(self) -> list[CommandInfo]:
        """The public commands, for /help and the platforms' menus (hidden ones answer but are not listed)."""
        return [info for info, _ in self._handlers.values() if not info.hidden]

    async def start(self) -> None:
        await self._queue.start()

    async def close(self) -> None:
        await self._queue.close()

    # ------------------------------------------------------------------ entry point

    async def handle(self, incoming: Incoming, send: Send) -> None:
        """Answer one message. Never raises for the person's mistakes: they become one-line TextReplies."""
        label = log_conversation.set(str(incoming.key))  # every log line of this answer names the conversation
        try:
            if incoming.action is not None:
                await self._press(incoming, send)
            elif incoming.image is not None:
                await self._photo(incoming, send)
            elif incoming.text and (parsed := split_command(incoming.text.strip())):
                await self._command(incoming, *parsed, send)
            elif incoming.text and incoming.text.strip():
                conversation = await self._conversation(incoming)
                head = await self._head(conversation)
                await self._edit(conversation, head, incoming.text.strip(), conversation.settings, send)
            else:
                await send(TextReply("Send me a photo with an instruction, like “make it night”. /help lists what I can do."))
        except UserError as error:
            await send(TextReply(str(error), error=True))
        except Exception:
            log.exception("failed to answer %s", incoming.key)
            await send(TextReply("Something went wrong on my side; nothing was changed. Please try again.", error=True))
        finally:
            log_conversation.reset(label)

    # ------------------------------------------------------------------ photos and edits

    async def _photo(self, incoming: Incoming, send: Send) -> None:
        intake = await asyncio.to_thread(load_untrusted, incoming.image, **self._intake_limits)
        digest = await asyncio.to_thread(lambda: self._images.put(encode_png(intake.image)))
        conversation = await self._conversation(incoming)
        root = await self._db(self._history.add_node, conversation.id, None, digest, None, None, None)
        if intake.notice:
            await send(TextReply(intake.notice))
        instruction = (incoming.text or "").strip()
        if instruction:
            await self._edit(conversation, root, instruction, conversation.settings, send)
        else:
            await send(TextReply("Got your photo. What should I change? For example: “make it a watercolour”."))

    async def _edit(
        self, conversation: Conversation, parent: Node, instruction: str, params: EditParams, send: Send
    ) -> None:
        """Edit `parent` with `instruction`; the result becomes a child of parent and the new head."""
        params = params.validated()
        if not instruction:
            raise BadParams("Tell me what to change, for example “make it night”.")
        job = EditJob(conversation.id, self._person(conversation), parent.id, parent.image_hash, instruction, params)
        queued = self._queue.submit(job)
        async for update in queued.updates():
            await send(self._progress(queued.id, update))
        [node] = await queued.result
        await send(await self._show(node, self._caption(node)))

    @staticmethod
    def _progress(job_id: int, update: Position | Step) -> ProgressReply:
        if isinstance(update, Step):
            return ProgressReply(job_id, f"Editing: step {update.done}/{update.total}", 0, update.done, update.total)
        if update.ahead:
            return ProgressReply(job_id, f"Queued: {update.ahead} ahead of you", update.ahead)
        return ProgressReply(job_id, "Starting the edit…")

    @staticmethod
    def _caption(node: Node) -> str:
        if node.instruction is None or node.params is None:
            return "Original photo"
        seconds = f" · {node.seconds:.1f} s" if node.seconds is not None else ""
        return f"“{node.instruction}”\n{node.params.describe()}{seconds}"

    async def _show(self, node: Node, caption: str) -> ImageReply:
        """An image reply for a node, with the buttons that make sense on it."""
        data = await asyncio.to_thread(self._images.get, node.image_hash)
        children = await self._db(self._history.children, node.id)
        labels = []
        if node.parent_id is not None:
            labels.append(("↶ Undo", "undo"))
        if children:
            labels.append(("↷ Redo", "redo"))
        if node.instruction is not None:
            labels += [("🎲 Retry", "retry"), ("➕ Stronger", "stronger"), ("➖ Weaker", "weaker")]
        buttons = tuple(Button(label, Press(action, node.id)) for label, action in labels)
        return ImageReply(data, caption, node.id, buttons)

    # ------------------------------------------------------------------ history navigation (shared by commands and buttons)

    async def _undo_from(self, conversation: Conversation, node: Node, send: Send) -> None:
        if node.parent_id is None:
            raise UserError("Nothing to undo: this is the original photo.")
        parent = await self._move(conversation, node.parent_id)
        await send(await self._show(parent, f"Undone. Now at: {self._caption(parent)}"))

    async def _redo_from(self, conversation: Conversation, node: Node, send: Send) -> None:
        target = await self._redo_target(node)
        if target is None:
            raise UserError("Nothing to redo.")
        target = await self._move(conversation, target.id)
        await send(await self._show(target, f"Redone. Now at: {self._caption(target)}"))

    async def _redo_target(self, node: Node) -> Node | None:
        """The child we most recently came back from (or, failing that, the newest one)."""
        children = await self._db(self._history.children, node.id)
        return max(children, key=lambda child: (child.visit, child.id), default=None)

    async def _rerun(self, conversation: Conversation, node: Node, params: EditParams, send: Send) -> None:
        """Edit node's parent again with node's instruction: a sibling of node."""
        if node.parent_id is None or node.instruction is None:
            raise UserError("That is the original photo: send an instruction to edit it.")
        parent = await self._db(self._history.node, node.parent_id)
        await self._edit(conversation, parent, node.instruction, params, send)

    async def _move(self, conversation: Conversation, node_id: int | None) -> Node | None:
        await self._db(self._history.move_head, conversation.id, node_id)
        return None if node_id is None else await self._db(self._history.node, node_id)

    # ------------------------------------------------------------------ buttons

    async def _press(self, incoming: Incoming, send: Send) -> None:
        press = incoming.action
        conversation = await self._conversation(incoming)
        node = await self._db(self._history.node, press.node_id)
        if node is None:
            raise UserError("That button is out of date.")
        if node.conversation_id != conversation.id:
            raise UserError("That button belongs to someone else's edits; send your own photo to start.")
        if press.action == "undo":
            await self._undo_from(conversation, node, send)
        elif press.action == "redo":
            await self._redo_from(conversation, node, send)
        elif press.action == "retry":
            # The button under a result repeats that result's own settings, with a new seed.
            await self._rerun(conversation, node, replace(node.params or conversation.settings, seed=None), send)
        elif press.action in ("stronger", "weaker"):
            await self._tune(conversation, node, +1 if press.action == "stronger" else -1, send)
        else:
            raise UserError("That button is out of date.")

    async def _tune(self, conversation: Conversation, node: Node, direction: int, send: Send) -> None:
        """Re-run node's edit with more (direction +1) or less (-1) change, same seed; keep the new values."""
        base = node.params or conversation.settings
        tuned = replace(
            base,
            text_guidance=_clamp(base.text_guidance + direction * STRONGER_TEXT_STEP, TEXT_GUIDANCE_RANGE),
            image_guidance=_clamp(base.image_guidance - direction * STRONGER_IMAGE_STEP, IMAGE_GUIDANCE_RANGE),
        )
        await self._db(
            self._history.save_settings,
            conversation.id,
            replace(conversation.settings, text_guidance=tuned.text_guidance, image_guidance=tuned.image_guidance),
        )
        await self._rerun(conversation, node, tuned, send)

    # ------------------------------------------------------------------ commands

    async def _command(self, incoming: Incoming, name: str, args: str, send: Send) -> None:
        entry = self._handlers.get(name)
        if entry is None:
            raise unknown_command(name)
        _, handler = entry
        conversation = await self._conversation(incoming)
        await handler(conversation, args, send)

    @command("start")
    async def start_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Say hello and explain how to start."""
        await send(TextReply(
            "Hi! Send me a photo with an instruction as its caption, like “make it night” or “give him a red suit”, "
            "and I'll edit it. Keep sending instructions to refine the result; /undo and /redo walk your history. "
            "/help lists everything."
        ))

    @command("help")
    async def help_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """List the commands."""
        lines = ["Send a photo with an instruction, then keep refining with plain text.", ""]
        lines += [f"{info.usage} — {info.summary}" for info in self.commands]
        await send(TextReply("\n".join(lines)))

    @command("undo")
    async def undo_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Go back to the image before the last edit."""
        await self._undo_from(conversation, await self._head(conversation), send)

    @command("redo")
    async def redo_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Go forward again to the edit you undid."""
        await self._redo_from(conversation, await self._head(conversation), send)

    @command("history")
    async def history_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Show the edits from the original photo to here, numbered for /goto."""
        line = await self._line(conversation)
        head_id = conversation.head_id
        rows = []
        for number, node in enumerate(line):
            what = "original photo" if node.instruction is None else f"“{node.instruction}”"
            mark = "  ◀ you are here" if node.id == head_id else ""
            rows.append(f"{number}. {what}{mark}")
        await send(TextReply("Your edits (use /goto N):\n" + "\n".join(rows)))

    @command("goto", "N")
    async def goto_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Jump to step N of /history."""
        line = await self._line(conversation)
        allowed = f"0 to {len(line) - 1}, as numbered in /history"
        number = parse_whole(args, "/goto", allowed)
        if number >= len(line):
            raise BadParams(f"/goto needs a step from {allowed}.")
        node = await self._move(conversation, line[number].id)
        await send(await self._show(node, f"Step {number}: {self._caption(node)}"))

    @command("retry")
    async def retry_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Run the last edit again from the same image, with your current settings and a new seed."""
        head = await self._head(conversation)
        await self._rerun(conversation, head, replace(conversation.settings, seed=None), send)

    @command("original")
    async def original_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Go back to the original photo (your edits stay in /history)."""
        line = await self._line(conversation)
        root = await self._move(conversation, line[0].id)
        await send(await self._show(root, "Original photo"))

    @command("reset")
    async def reset_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Put the photo aside and restore the default settings; send a new photo to start again."""
        await self._db(self._history.move_head, conversation.id, None)
        await self._db(self._history.save_settings, conversation.id, self._defaults)
        await send(TextReply("Done: settings are back to defaults. Send a new photo to start again."))

    @command("settings")
    async def settings_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Show your current edit settings."""
        settings = conversation.settings
        seed = "random" if settings.seed is None else settings.seed
        await send(TextReply(
            f"Text guidance: {settings.text_guidance:g} (how strongly to follow the instruction; /text)\n"
            f"Image guidance: {settings.image_guidance:g} (how much of the photo to keep; /image)\n"
            f"Steps: {settings.steps} (/steps)\n"
            f"Seed: {seed} (/seed)"
        ))

    @command("text", "X")
    async def text_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Set text guidance: how strongly to follow the instruction (default 7.5)."""
        lo, hi = TEXT_GUIDANCE_RANGE
        value = parse_number(args, "/text", f"from {lo:g} to {hi:g}, e.g. /text 9")
        await self._set(conversation, send, text_guidance=value)

    @command("image", "X")
    async def image_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Set image guidance: how much of the photo to keep (default 1.5)."""
        lo, hi = IMAGE_GUIDANCE_RANGE
        value = parse_number(args, "/image", f"from {lo:g} to {hi:g}, e.g. /image 1.2")
        await self._set(conversation, send, image_guidance=value)

    @command("steps", "N")
    async def steps_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Set the number of denoising steps: more is slower and finer (default 20)."""
        lo, hi = STEPS_RANGE
        await self._set(conversation, send, steps=parse_whole(args, "/steps", f"from {lo} to {hi}, e.g. /steps 30"))

    @command("seed", "N|random")
    async def seed_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Pin the random seed to repeat results, or go back to a random one."""
        if args.strip().lower() == "random":
            await self._set(conversation, send, seed=None)
            return
        lo, hi = SEED_RANGE
        await self._set(conversation, send, seed=parse_whole(args, "/seed", f"from {lo} to {hi}, or 'random'"))

    @command("cancel")
    async def cancel_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Cancel your edit that is waiting or running."""
        cancelled = self._queue.cancel(conversation.id)
        await send(TextReply("Cancelling your edit." if cancelled else "You have no edit on the way."))

    async def _set(self, conversation: Conversation, send: Send, **change) -> None:
        settings = replace(conversation.settings, **change).validated()
        await self._db(self._history.save_settings, conversation.id, settings)
        await send(TextReply(f"Settings: {settings.describe()}."))

    # ------------------------------------------------------------------ helpers

    async def _conversation(self, incoming: Incoming) -> Conversation:
        return await self._db(self._history.conversation, incoming.key)

    async def _head(self, conversation: Conversation) -> Node:
        if conversation.head_id is None:
            raise UserError("Send me a photo first.")
        return await self._db(self._history.node, conversation.head_id)

    async def _line(self, conversation: Conversation) -> list[Node]:
        """The path from the root to the head, continued by the redo chain: what /history shows."""
        head = await self._head(conversation)
        line = await self._db(self._history.path, head.id)
        while (after := await self._redo_target(line[-1])) is not None:
            line.append(after)
        return line

    @staticmethod
    def _person(conversation: Conversation) -> str:
        return f"{conversation.key.platform}:{conversation.key.user_id}"

    @staticmethod
    async def _db(method, *args):
        return await asyncio.to_thread(method, *args)

