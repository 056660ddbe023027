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
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace

from PIL import Image, ImageOps

from core.commands import CommandInfo, collect, command, parse_number, parse_whole, split_command, unknown_command
from core.domain import (
    IMAGE_GUIDANCE_RANGE,
    SEED_RANGE,
    STEPS_RANGE,
    TEXT_GUIDANCE_RANGE,
    ChatKey,
    Conversation,
    EditParams,
    Node,
    Translation,
)
from core.errors import BadParams, UserError
from core.hints import estimate_tokens
from core.images import decode_png, encode_png, load_untrusted
from core.metrics import log_conversation
from core import pictures
from core.messages import Button, ImageReply, Incoming, Press, ProgressReply, Reply, TextReply
from core.ports import HistoryRepository, ImageStore, Translator
from core.jobs import EditJob
from core.queue import EditQueue, Position, Step, TrackedJob
from core.understanding import HeldBack, Understanding

log = logging.getLogger(__name__)

Send = Callable[[Reply], Awaitable[None]]

# What the Stronger / Weaker buttons change, per press. Documented in the README.
STRONGER_TEXT_STEP = 1.5
STRONGER_IMAGE_STEP = 0.25
# The /sweep grid around the current settings: rows vary text guidance, columns image guidance.
SWEEP_TEXT_STEP = 2.0
SWEEP_IMAGE_STEP = 0.3
MAX_VARIATIONS = 4
# The newest entries a /history contact sheet shows (the original photo always comes first).
SHEET_ENTRIES = 24

# Plain-language tuning: a message that is just one of these re-runs the last edit with more or less change.
MORE_CHANGE = frozenset({
    "stronger", "more", "more change", "more changes", "change it more", "even more", "not enough", "do it more",
    "bolder", "follow the instruction more", "more effect",
})
LESS_CHANGE = frozenset({
    "weaker", "less", "less change", "fewer changes", "change it less", "subtler", "more subtle", "too much",
    "softer", "gentler", "keep more of the photo", "keep more of the original", "closer to the original",
    "less effect",
})
_SOFTENERS = re.compile(r"^(?:please |a bit |a little |slightly |much |way |a lot )+|(?: please)$")

# Exact operations: done losslessly without the model, recorded as nodes like any edit.
TRANSPOSES = {
    "rotate 90": (Image.Transpose.ROTATE_270, "Rotated 90° clockwise"),
    "rotate 180": (Image.Transpose.ROTATE_180, "Rotated 180°"),
    "rotate 270": (Image.Transpose.ROTATE_90, "Rotated 270° clockwise"),
    "flip h": (Image.Transpose.FLIP_LEFT_RIGHT, "Flipped left to right"),
    "flip v": (Image.Transpose.FLIP_TOP_BOTTOM, "Flipped top to bottom"),
}
EXACT_CAPTIONS = {name: caption for name, (_, caption) in TRANSPOSES.items()} | {"crop square": "Cropped to a square"}


def tuning_direction(text: str) -> int:
    """+1 for "more change" phrases, -1 for "less change" ones, 0 for anything else (an instruction)."""
    phrase = _SOFTENERS.sub("", re.sub(r"[^\w\s]", "", text.lower()).strip()).strip()
    return 1 if phrase in MORE_CHANGE else -1 if phrase in LESS_CHANGE else 0


def is_model_edit(node: Node) -> bool:
    return node.params is not None


def is_exact_edit(node: Node) -> bool:
    return node.params is None and node.instruction is not None


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
        count_tokens: Callable[[str], int] = estimate_tokens,
        translator: Translator | None = None,
    ) -> None:
        """command_groups: more objects whose `@command` methods answer commands too (e.g. admin commands);
        their handlers take (conversation, args, send) like the engine's own. translator: turns instructions in
        other languages into English (None: they are held back, as /anyway explains)."""
        self._history = history
        self._images = images
        self._queue = queue
        self._intake_limits = intake_limits or {}
        self._defaults = defaults
        self._handlers = collect(self, *command_groups)
        self._understanding = Understanding(translator, count_tokens)
        # Per conversation, in memory: the candidates /pick N chooses from (their buttons outlive a restart),
        # and the instruction a hint held back, for /anyway.
        self._offers: dict[int, list[int]] = {}
        self._held_back: dict[int, tuple[int, str]] = {}
        self._deliveries: set[asyncio.Task] = set()  # re-attached jobs being delivered (see start)

    @property
    def commands(self) -> list[CommandInfo]:
        """The public commands, for /help and the platforms' menus (hidden ones answer but are not listed)."""
        return [info for info, _ in self._handlers.values() if not info.hidden]

    async def start(self, send_to: Callable[[ChatKey], Send] | None = None) -> None:
        """Start the queue. `send_to(key)` is how an adapter sends to a conversation without an incoming message
        (e.g. Telegram: send to the chat id): with it, edits a distributed queue re-attached after a restart
        (`queue.recovered()`) are delivered to their conversations when they finish."""
        await self._queue.start()
        if send_to is not None:
            for queued in self._queue.recovered():
                task = asyncio.create_task(self._deliver_recovered(queued, send_to))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)

    async def close(self) -> None:
        for task in list(self._deliveries):
            task.cancel()
        await self._queue.close()

    async def _deliver_recovered(self, queued: TrackedJob, send_to: Callable[[ChatKey], Send]) -> None:
        """Relay a re-attached job's progress and outcome to its conversation, as `_run` would have."""
        conversation = await self._db(self._history.conversation_by_id, queued.job.conversation_id)
        if conversation is None:
            return
        send = send_to(conversation.key)
        try:
            for node in await self._follow(queued, send):
                await send(await self._show(node, self._caption(node)))
        except UserError as error:
            await send(TextReply(str(error), error=True))
        except Exception:
            log.exception("failed to deliver re-attached job %s", queued.id)

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
                await self._text(incoming, send)
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
        if parsed := split_command(instruction):
            await self._command(incoming, *parsed, send)  # e.g. a photo captioned "/text 9": the new photo is head
        elif instruction:
            await self._instruct(conversation, root, instruction, send)
        else:
            await send(TextReply("Got your photo. What should I change? For example: “make it a watercolour”."))

    async def _text(self, incoming: Incoming, send: Send) -> None:
        """Plain text: "stronger"-style tuning of the last edit, else an instruction for the current image (or for
        the result the person replied to)."""
        conversation = await self._conversation(incoming)
        text = incoming.text.strip()
        if incoming.reply_to is not None:
            target = await self._own_node(conversation, incoming.reply_to)
        else:
            target = await self._head(conversation)
        direction = tuning_direction(text)
        if direction and is_model_edit(target):
            await self._tune(conversation, target, direction, send)
        else:
            await self._instruct(conversation, target, text, send)

    async def _instruct(self, conversation: Conversation, parent: Node, instruction: str, send: Send) -> None:
        """An instruction the person typed: made English (core/understanding.py) before it costs GPU time, or held
        back with a hint (for /anyway) when the model could not read it well."""
        try:
            understood = await asyncio.to_thread(self._understanding.understand, instruction)
        except HeldBack:
            self._held_back[conversation.id] = (parent.id, instruction)
            raise
        await self._edit(conversation, parent, understood.english, conversation.settings, send, understood.translation)

    async def _edit(self, conversation: Conversation, parent: Node, instruction: str, params: EditParams, send: Send,
                    translation: Translation | None = None) -> Node:
        """Edit `parent` with `instruction` (English, translated from `translation` when set); the result becomes
        a child of parent and the new head."""
        params = params.validated()
        if not instruction:
            raise BadParams("Tell me what to change, for example “make it night”.")
        job = EditJob(conversation.id, self._person(conversation), parent.id, parent.image_hash, instruction, params,
                      translation=translation)
        [node] = await self._run(job, send)
        await send(await self._show(node, self._caption(node)))
        return node

    async def _run(self, job: EditJob, send: Send) -> list[Node]:
        """Queue a job, relay its progress, and return the nodes it recorded."""
        return await self._follow(self._queue.submit(job), send)

    async def _follow(self, queued: TrackedJob, send: Send) -> list[Node]:
        """Relay a queued job's progress to `send`; then the nodes it recorded (or its error)."""
        async for update in queued.updates():
            await send(self._progress(queued.id, update))
        return await queued.result

    @staticmethod
    def _progress(job_id: int, update: Position | Step) -> ProgressReply:
        if isinstance(update, Step):
            return ProgressReply(job_id, f"Editing: step {update.done}/{update.total}", 0, update.done, update.total)
        if update.ahead:
            return ProgressReply(job_id, f"Queued: {update.ahead} ahead of you", update.ahead)
        return ProgressReply(job_id, "Starting the edit…")

    @staticmethod
    def _caption(node: Node) -> str:
        if node.instruction is None:
            return "Original photo"
        if node.params is None:
            return f"{EXACT_CAPTIONS.get(node.instruction, node.instruction)} (exact, no model)"
        seconds = f" · {node.seconds:.1f} s" if node.seconds is not None else ""
        source = f" (from {node.translation.language})" if node.translation else ""
        return f"“{node.instruction}”{source}\n{node.params.describe()}{seconds}"

    async def _show(self, node: Node, caption: str) -> ImageReply:
        """An image reply for a node, with the buttons that make sense on it."""
        data = await asyncio.to_thread(self._images.get, node.image_hash)
        labels = []
        if node.parent_id is not None:
            labels.append(("↶ Undo", "undo"))
        if await self._redo_target(node) is not None:
            labels.append(("↷ Redo", "redo"))
        if is_model_edit(node):
            labels += [("🎲 Retry", "retry"), ("➕ Stronger", "stronger"), ("➖ Weaker", "weaker")]
        if node.parent_id is not None:
            labels.append(("⇆ Compare", "compare"))
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
        """The child we most recently came back from. Unadopted candidates (visit 0) are not on the way."""
        children = [child for child in await self._db(self._history.children, node.id) if child.visit > 0]
        return max(children, key=lambda child: (child.visit, child.id), default=None)

    async def _rerun(self, conversation: Conversation, node: Node, params: EditParams, send: Send) -> None:
        """Edit node's parent again with node's instruction: a sibling of node."""
        if node.parent_id is None:
            raise UserError("That is the original photo: send an instruction to edit it.")
        if not is_model_edit(node):
            raise UserError("That was an exact edit, not the model's: send an instruction to edit the image.")
        parent = await self._db(self._history.node, node.parent_id)
        await self._edit(conversation, parent, node.instruction, params, send, node.translation)

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
        elif press.action == "compare":
            await self._compare(node, send)
        elif press.action == "pick":
            await self._pick(conversation, node, send)
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
        change = "More change" if direction > 0 else "Less change"
        await send(TextReply(f"{change}: now text guidance {tuned.text_guidance:g}, "
                             f"image guidance {tuned.image_guidance:g} (same seed)."))
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
        lines = ["Send a photo with an instruction, then keep refining with plain text."]
        if self._understanding.translator is not None:
            lines.append("Write in any language: I translate it to English and show what the model was given. "
                         "Translated wrongly? Send /meant and the English you meant; /asis runs your own words.")
        lines.append("")
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
            mark = "  ◀ you are here" if node.id == head_id else ""
            rows.append(f"{number}. {self._short(node)}{mark}")
        await send(TextReply("Your edits (use /goto N):\n" + "\n".join(rows)))
        sheet = await self._contact_sheet(line, head_id)
        await send(ImageReply(sheet, "Your history: the numbers are the ones /goto takes.", head_id, kind="history"))

    @staticmethod
    def _short(node: Node) -> str:
        if node.instruction is None:
            return "original photo"
        return f"“{node.instruction}”" if is_model_edit(node) else f"{node.instruction} (exact)"

    async def _contact_sheet(self, line: list[Node], head_id: int) -> bytes:
        numbered = list(enumerate(line))
        if len(numbered) > SHEET_ENTRIES:
            numbered = numbered[:1] + numbered[-(SHEET_ENTRIES - 1):]
        branches = {}
        for _, node in numbered:
            children = [child for child in await self._db(self._history.children, node.id) if child.visit > 0]
            branches[node.id] = max(len(children) - 1, 0)

        def draw() -> bytes:
            entries = [
                pictures.SheetEntry(number, self._image(node.image_hash), self._short(node).strip("“”"),
                                    node.id == head_id, branches[node.id])
                for number, node in numbered
            ]
            return encode_png(pictures.contact_sheet(entries))

        return await asyncio.to_thread(draw)

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

    # ------------------------------------------------------------------ pictures and guidance help

    @command("compare")
    async def compare_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Show the current image beside the one it was made from."""
        await self._compare(await self._head(conversation), send)

    async def _compare(self, node: Node, send: Send) -> None:
        if node.parent_id is None:
            raise UserError("This is the original photo: there is nothing to compare yet.")
        parent = await self._db(self._history.node, node.parent_id)

        def draw() -> bytes:
            before, after = self._image(parent.image_hash), self._image(node.image_hash)
            return encode_png(pictures.compare(before, after, caption=self._short(node)))

        await send(ImageReply(await asyncio.to_thread(draw), f"Before and after: {self._short(node)}", node.id,
                              kind="compare"))

    @command("sweep")
    async def sweep_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Re-render your last edit over a 3x3 grid of text and image guidance, to pick the look you like."""
        head = await self._last_edit(conversation, "/sweep")
        settings = conversation.settings
        texts = [_clamp(settings.text_guidance + step * SWEEP_TEXT_STEP, TEXT_GUIDANCE_RANGE) for step in (-1, 0, 1)]
        images = [_clamp(settings.image_guidance + step * SWEEP_IMAGE_STEP, IMAGE_GUIDANCE_RANGE)
                  for step in (-1, 0, 1)]
        variants = tuple(replace(settings, text_guidance=text, image_guidance=image, seed=head.params.seed)
                         for text in texts for image in images)
        await self._offer(conversation, head, variants, send, columns=3,
                          title=f"“{head.instruction}” · seed {head.params.seed}",
                          column_labels=[f"image {value:g}" for value in images],
                          row_labels=[f"text {value:g}" for value in texts])

    @command("variations", "[N]")
    async def variations_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Render your last edit with N new seeds (up to 4) at once, to pick the one you like."""
        count = parse_whole(args, "/variations", f"from 1 to {MAX_VARIATIONS}") if args.strip() else MAX_VARIATIONS
        if not 1 <= count <= MAX_VARIATIONS:
            raise BadParams(f"/variations needs a whole number: from 1 to {MAX_VARIATIONS}.")
        head = await self._last_edit(conversation, "/variations")
        seeds = random.sample(range(2**32), count)
        variants = tuple(replace(head.params, seed=seed) for seed in seeds)
        await self._offer(conversation, head, variants, send, columns=min(count, 2), title=f"“{head.instruction}”")

    async def _last_edit(self, conversation: Conversation, name: str) -> Node:
        head = await self._head(conversation)
        if not is_model_edit(head):
            raise UserError(f"{name} re-renders your last edit: send an instruction first.")
        return head

    async def _offer(self, conversation: Conversation, head: Node, variants: tuple[EditParams, ...], send: Send,
                     *, columns: int, title: str, column_labels=(), row_labels=()) -> None:
        """Render variants of head's edit in one batch, record them as candidates, and show them as a numbered grid
        with a button for each."""
        parent = await self._db(self._history.node, head.parent_id)
        job = EditJob(conversation.id, self._person(conversation), parent.id, parent.image_hash, head.instruction,
                      variants[0], variants, translation=head.translation)
        candidates = await self._run(job, send)
        self._offers[conversation.id] = [node.id for node in candidates]

        def draw() -> bytes:
            cells = [self._image(node.image_hash) for node in candidates]
            labels = [f"text {node.params.text_guidance:g} · image {node.params.image_guidance:g} · "
                      f"seed {node.params.seed}" for node in candidates]
            grid = pictures.labelled_grid(cells, columns=columns, cell_labels=labels, column_labels=column_labels,
                                          row_labels=row_labels, title=title)
            return encode_png(grid)

        buttons = tuple(Button(f"Pick {number}", Press("pick", node.id))
                        for number, node in enumerate(candidates, start=1))
        await send(ImageReply(await asyncio.to_thread(draw), f"{title}\nPick one with the buttons or /pick N.",
                              head.id, buttons, kind="grid"))

    @command("pick", "N")
    async def pick_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Adopt cell N of your last /sweep or /variations."""
        offer = self._offers.get(conversation.id)
        if not offer:
            raise UserError("Nothing to pick from: use /sweep or /variations first (or the buttons under a grid).")
        number = parse_whole(args, "/pick", f"from 1 to {len(offer)}")
        if not 1 <= number <= len(offer):
            raise BadParams(f"/pick needs a whole number: from 1 to {len(offer)}.")
        await self._pick(conversation, await self._db(self._history.node, offer[number - 1]), send)

    async def _pick(self, conversation: Conversation, node: Node, send: Send) -> None:
        """Make a candidate the current image; its guidance becomes the conversation's settings."""
        if not is_model_edit(node):
            raise UserError("That button is out of date.")
        settings = replace(conversation.settings, text_guidance=node.params.text_guidance,
                           image_guidance=node.params.image_guidance)
        await self._db(self._history.save_settings, conversation.id, settings)
        node = await self._move(conversation, node.id)
        await send(await self._show(node, f"Picked. {self._caption(node)}"))

    @command("squash")
    async def squash_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Redo your chain of edits as one edit of the original photo (repeated edits lose quality)."""
        head = await self._head(conversation)
        path = await self._db(self._history.path, head.id)
        edits = [node for node in path if is_model_edit(node)]
        if len(edits) < 2:
            raise UserError("Nothing to squash: /squash combines two or more edits into one.")
        instruction = " and ".join(node.instruction for node in edits)  # the English each edit was given
        try:
            await asyncio.to_thread(self._understanding.check_length, instruction)
        except HeldBack as problem:
            raise UserError(f"Combined, the instructions are too much for one edit: {problem}") from None
        squashed = await self._edit(conversation, path[0], instruction, conversation.settings, send)
        # Exact edits are lossless and cheap: apply them again, in order, on top of the squashed edit.
        for node in path:
            if is_exact_edit(node):
                squashed = await self._exact(conversation, squashed, node.instruction, send)

    @command("anyway")
    async def anyway_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Run the instruction I held back (not English, or too long) as it is."""
        held = self._held_back.pop(conversation.id, None)
        if held is None:
            raise UserError("There is no instruction waiting: just send one.")
        parent_id, instruction = held
        parent = await self._own_node(conversation, parent_id)
        await self._edit(conversation, parent, instruction, conversation.settings, send)

    @command("asis")
    async def asis_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Run your last instruction untranslated, as you typed it."""
        if conversation.id in self._held_back:
            await self.anyway_command(conversation, args, send)
            return
        head = await self._head(conversation)
        if head.translation is None or head.parent_id is None:
            raise UserError("Your last instruction was not translated: there is nothing to run as is.")
        parent = await self._db(self._history.node, head.parent_id)
        await self._edit(conversation, parent, head.translation.original, conversation.settings, send)

    @command("meant", "English")
    async def meant_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Correct my translation of your last instruction: /meant and the English you meant."""
        head = await self._head(conversation)
        if head.translation is None or head.parent_id is None:
            raise UserError("Your last instruction was not translated: just send the English as a new instruction.")
        english = args.strip()
        if not english:
            raise BadParams("/meant needs the English you meant, e.g. /meant make the photo snowy.")
        await asyncio.to_thread(self._understanding.check_length, english)
        parent = await self._db(self._history.node, head.parent_id)
        await self._edit(conversation, parent, english, conversation.settings, send, head.translation)

    @command("rotate", "90|180|270")
    async def rotate_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Rotate the image clockwise, exactly (no model)."""
        if args.strip() not in ("90", "180", "270"):
            raise BadParams("/rotate needs an angle: 90, 180 or 270 (clockwise).")
        await self._exact(conversation, await self._head(conversation), f"rotate {args.strip()}", send)

    @command("flip", "h|v")
    async def flip_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Mirror the image left to right (h) or top to bottom (v), exactly."""
        if args.strip().lower() not in ("h", "v"):
            raise BadParams("/flip needs h (left to right) or v (top to bottom).")
        await self._exact(conversation, await self._head(conversation), f"flip {args.strip().lower()}", send)

    @command("crop", "square")
    async def crop_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Crop the image to a centred square, exactly."""
        if args.strip().lower() != "square":
            raise BadParams("/crop takes: square.")
        await self._exact(conversation, await self._head(conversation), "crop square", send)

    async def _exact(self, conversation: Conversation, parent: Node, operation: str, send: Send) -> Node:
        """An exact operation on parent, recorded as a child (and the new head) like any edit."""

        def apply() -> str:
            image = self._image(parent.image_hash)
            if operation == "crop square":
                side = min(image.size)
                image = ImageOps.fit(image, (side, side), method=Image.Resampling.NEAREST)
            else:
                image = image.transpose(TRANSPOSES[operation][0])
            return self._images.put(encode_png(image))

        digest = await asyncio.to_thread(apply)
        node = await self._db(self._history.add_node, conversation.id, parent.id, digest, operation, None, None)
        await send(await self._show(node, self._caption(node)))
        return node

    async def _set(self, conversation: Conversation, send: Send, **change) -> None:
        settings = replace(conversation.settings, **change).validated()
        await self._db(self._history.save_settings, conversation.id, settings)
        await send(TextReply(f"Settings: {settings.describe()}."))

    # ------------------------------------------------------------------ helpers

    async def _conversation(self, incoming: Incoming) -> Conversation:
        return await self._db(self._history.conversation, incoming.key)

    async def _own_node(self, conversation: Conversation, node_id: int) -> Node:
        node = await self._db(self._history.node, node_id)
        if node is None or node.conversation_id != conversation.id:
            raise UserError("I can't find that image in your history any more.")
        return node

    def _image(self, digest: str) -> Image.Image:
        """Blocking: decode a stored image (call from a worker thread)."""
        return decode_png(self._images.get(digest))

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

