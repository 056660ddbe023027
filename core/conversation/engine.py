"""The conversation engine: the one call every chat adapter makes.

    await engine.handle(Incoming(key, text, image), send)

answers a message by awaiting `send(reply)` for each Reply (core/messages.py). The engine only routes: a photo starts
a new tree, plain text edits the current image (or tunes the last edit), a command goes to the handler its group
declared (with typed arguments, parsed once here), a button press to the handler its group marked with `@button`.
The groups live beside this file, one file each, over the shared core in edits.py.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import pkgutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace

from core import conversation as groups_package
from core.commands import (
    NO_COMMAND,
    CommandInfo,
    collect,
    split_command,
    unknown_command,
)
from core.conversation.captions import caption, quoted
from core.conversation.edits import (
    GROUPS,
    CommandGroup,
    EditCore,
    is_model_edit,
)
from core.conversation.language import Language
from core.conversation.models import Models, is_reference
from core.conversation.tuning import Tuning, tuning_direction
from core.conversation.turns import Turns, current_turn, wait_for_turn
from core.domain import DEFAULT_MODEL, ChatKey, Conversation, EditParams, NewNode, Node
from core.editing.registry import ModelRegistry, ModelSpec
from core.errors import SOMETHING_WENT_WRONG, PictureGone, QueueFull, UserError
from core.hints import estimate_tokens
from core.images import load_untrusted
from core.messages import Button, ImageReply, Incoming, Press, Send, TextReply
from core.metrics import log_conversation
from core.offload import in_image_thread, in_thread, together
from core.ports import HistoryRepository, ImageStore, JobQueue, Segmenter, TrackedJob, Translator
from core.stored_images import stored_as_png
from core.understanding import Understanding

log = logging.getLogger(__name__)


def _import_groups() -> None:
    """Import every module of this package, so each CommandGroup subclass registers itself."""
    for module in pkgutil.iter_modules(groups_package.__path__):
        importlib.import_module(f"{groups_package.__name__}.{module.name}")


class ConversationEngine:
    """Answers every message of every conversation, whichever platform it came from."""

    def __init__(
        self,
        history: HistoryRepository,
        images: ImageStore,
        queue: JobQueue,
        *,
        intake_limits: dict | None = None,
        defaults: EditParams = EditParams(),
        command_groups: Iterable[CommandGroup] = (),
        count_tokens: Callable[[str], int] = estimate_tokens,
        model: str = "",
        translator: Translator | None = None,
        max_waiting_per_person: int = 1,
        max_stored_bytes_per_person: int | None = None,
        segmenter: Segmenter | None = None,
        models: ModelRegistry | None = None,
        jpeg_previews: bool = False,
    ) -> None:
        """command_groups: more groups, made by the caller, whose commands answer too (e.g. admin commands, which
        need the admins' ids); the groups of this package are found and made here. model: the editor's model name,
        as /info reports it. translator: turns instructions in other languages into English (None: they are held
        back, as /anyway explains). max_waiting_per_person: photos one person may have in intake at once (decoding
        is the costly part of a photo; the queue applies the same limit to edits). max_stored_bytes_per_person: what
        one person's pictures may take in the image store before new photos and edits are refused (None: no limit).
        segmenter: finds regions named in words (/only, /mask); without one those commands say they are not
        available. models: the enabled models people choose from with /model (default: one, `model`).
        jpeg_previews: results are shown as full-size JPEGs (chats that recompress photos or cap uploads; /file
        sends the lossless PNG), not as PNGs."""
        if models is None:
            models = ModelRegistry([ModelSpec("default", "pix2pix", model or DEFAULT_MODEL)], load=None)
        self._core = EditCore(history, images, queue, intake_limits=intake_limits or {}, defaults=defaults,
                              understanding=Understanding(translator, count_tokens), model=model, models=models,
                              max_stored_bytes_per_person=max_stored_bytes_per_person, segmenter=segmenter,
                              jpeg_previews=jpeg_previews)
        _import_groups()
        groups = [group(self._core) for group in sorted(GROUPS, key=lambda group: group.position)]
        self._tuning = next(group for group in groups if isinstance(group, Tuning))
        self._models = next(group for group in groups if isinstance(group, Models))
        self._language = next(group for group in groups if isinstance(group, Language))
        self._handlers, self._buttons = collect(*groups, *command_groups)
        self._core.commands = self.commands
        self._core.buttons = {action: info for action, (info, _) in self._buttons.items()}
        self._deliveries: set[asyncio.Task] = set()  # re-attached jobs being delivered (see start)
        self._max_intakes = max_waiting_per_person
        self._intakes: Counter[str] = Counter()  # photos being decoded and stored, per person
        self._turns = Turns()

    @property
    def commands(self) -> list[CommandInfo]:
        """The public commands, for /help and the platforms' menus (hidden ones answer but are not listed)."""
        return [info for info, _ in self._handlers.values() if not info.hidden]

    def settings_of(self, conversation: Conversation) -> EditParams:
        """The settings the conversation's next edit runs with, as /settings shows them (a model the operator has
        since disabled gives way to the default one)."""
        return self._core.effective(conversation).settings

    @property
    def queue(self) -> JobQueue:
        """The edit queue the engine submits to (its depth and status are what operators watch)."""
        return self._core.queue

    async def start(self, send_to: Callable[[ChatKey], Send] | None = None) -> None:
        """Start the queue. `send_to(key)` is how an adapter sends to a conversation without an incoming message
        (e.g. Telegram: send to the chat id): with it, edits a distributed queue re-attached after a restart
        (`queue.recovered()`) are delivered to their conversations when they finish."""
        await self._core.queue.start()
        if send_to is not None and self._core.queue.forgets_jobs_on_exit:
            for conversation, parent_id, instruction in await in_thread(self._core.history.take_interrupted_edits):
                await self._offer_interrupted(conversation, parent_id, instruction, send_to(conversation.key))
        if send_to is not None:
            for queued in self._core.queue.recovered():
                self._deliver_later(queued, send_to)
            self._core.queue.deliver_reattached(lambda queued: self._deliver_later(queued, send_to))

    def _deliver_later(self, queued: TrackedJob, send_to: Callable[[ChatKey], Send]) -> None:
        task = asyncio.create_task(self._deliver_recovered(queued, send_to))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def close(self) -> None:
        for task in list(self._deliveries):
            task.cancel()
        await self._core.queue.close()

    async def _offer_interrupted(self, conversation: Conversation, parent_id: int, instruction: str,
                                 send: Send) -> None:
        """Tell the person their edit was interrupted by a restart, with a button (and /anyway) to run it again."""
        core = self._core
        await in_thread(core.history.hold_back, conversation.id, parent_id, instruction)
        text = (f"My restart interrupted your edit {quoted(instruction)}, so nothing was changed. Press Try again (or "
                "send /anyway) to run it now.")
        try:
            parent = await in_thread(core.history.node, parent_id)
            data = await in_image_thread(core.stored, parent.image_hash)
            button = Button(core.buttons["anyway"].label, Press("anyway", parent_id))
            await send(ImageReply(data, text, parent_id, (button,)))
        except PictureGone:
            await send(TextReply(f"My restart interrupted your edit {quoted(instruction)}, and its picture is no "
                                 "longer stored: send the photo again to start over.", error=True))
        except Exception:
            log.exception("failed to offer interrupted edit of conversation %s", conversation.id)

    async def _deliver_recovered(self, queued: TrackedJob, send_to: Callable[[ChatKey], Send]) -> None:
        """Relay a re-attached job's progress and outcome to its conversation, as an edit would have."""
        conversation = await in_thread(self._core.history.conversation_by_id, queued.job.conversation_id)
        if conversation is None:
            return
        send = send_to(conversation.key)
        try:
            for node in await self._core.follow(queued, send):
                await send(await self._core.show(node, caption(node), waiting=send))
        except UserError as error:
            await send(TextReply(str(error), error=True))
        except Exception:
            log.exception("failed to deliver re-attached job %s", queued.id)

    # ------------------------------------------------------------------ entry point

    async def full_size(self, node_id: int) -> bytes:
        """The node's stored picture as a lossless PNG, as /file sends it: for a front-end that answers a file with
        a file (node_id comes from the engine's own reply). PictureGone when its file is missing."""
        node = await in_thread(self._core.history.node, node_id)
        return await in_image_thread(lambda: stored_as_png(self._core.stored(node.image_hash)))

    async def handle(self, incoming: Incoming, send: Send) -> None:
        """Answer one message. Never raises for the person's mistakes: they become one-line TextReplies."""
        label = log_conversation.set(str(incoming.key))  # every log line of this answer names the conversation
        send = self._labelling(send)
        turn = None if _answered_at_once(incoming) else self._turns.take(incoming.key)
        taken = current_turn.set(turn)
        try:
            if not _new_photo(incoming):  # a new photo is read beside earlier messages, then waits (_photo)
                await wait_for_turn()
            if incoming.action is not None:
                await self._press(incoming, send)
            elif incoming.image is not None and is_reference(incoming.text):
                await self._models.add_reference(await self._conversation(incoming), incoming.image, send)
            elif _new_photo(incoming):
                await self._photo(incoming, send)
            elif incoming.corrects is not None:
                conversation = await self._conversation(incoming)
                node = await self._pressed_node(conversation, incoming.corrects)  # its box came from a button
                if not (incoming.text or "").strip():
                    raise UserError("The box was empty, so nothing changed: type the English you meant in it.")
                await self._language.correct(conversation, node, incoming.text, send)
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
            await send(TextReply(SOMETHING_WENT_WRONG, error=True))
        finally:
            if turn is not None:
                turn.release()
            current_turn.reset(taken)
            log_conversation.reset(label)

    def _labelling(self, send: Send) -> Send:
        """send, giving every picture about a node (its /history sheet, grid, mask...) the node's label, as /goto
        takes it, so front-ends name files after what people see rather than a database id."""
        async def labelled(reply) -> None:
            if isinstance(reply, ImageReply) and not reply.label:
                reply = replace(reply, label=await self._core.label(reply.node_id))
            await send(reply)

        return labelled

    async def _photo(self, incoming: Incoming, send: Send) -> None:
        core = self._core
        person = incoming.key.person
        if self._intakes[person] >= self._max_intakes:
            raise QueueFull("I'm still reading your last photo: send this one again once it is in.")
        self._intakes[person] += 1
        try:
            # Database reads beside the image work: the room left with the decoding, the conversation with storing
            # (once the messages before this photo are answered: core.conversation.turns).
            _, intake = await together(core.require_room(person),
                                       in_image_thread(load_untrusted, incoming.image, **core.intake_limits))
            (digest, size), conversation = await together(in_image_thread(core.store_upload, incoming.image, intake),
                                                          self._conversation_in_turn(incoming))
            core.queue.prepare(digest)  # its first edit's shrink, done while the edit is checked and queued
        finally:
            self._intakes[person] -= 1
            if not self._intakes[person]:
                del self._intakes[person]
        root = await in_thread(core.history.add_node, NewNode(conversation.id, None, digest, stored_bytes=size))
        if intake.notice:
            await send(TextReply(intake.notice))
        instruction = (incoming.text or "").strip()
        if parsed := split_command(instruction):
            await send(TextReply(f"Got your photo; now {instruction.split()[0]} on it."))
            await self._command(incoming, *parsed, send)  # e.g. a photo captioned "/text 9": the new photo is head
        elif instruction:
            await core.instruct(conversation, root, instruction, send)
        else:
            await send(TextReply("Got your photo. What should I change? For example: “make it a watercolour”."))

    async def _text(self, incoming: Incoming, send: Send) -> None:
        """Plain text: "stronger"-style tuning of the last edit, else an instruction for the current image (or for
        the result the person replied to, unless it corrects that result's translation)."""
        conversation = await self._conversation(incoming)
        text = incoming.text.strip()
        if incoming.reply_to is not None:
            target = await self._core.own_node(conversation, incoming.reply_to)
        else:
            target = await self._core.head(conversation)
        direction = tuning_direction(text)
        if direction and not is_model_edit(target):
            raise UserError(f"There is no edit to tune yet: “{text}” makes a model edit stronger or weaker. "
                            "Send an instruction first, like “make it night”.")
        if direction:
            await self._tuning.tune(conversation, target, direction, send)
        elif incoming.reply_to is not None and await self._language.corrects(target, text):
            await self._language.correct(conversation, target, text, send, replied=True)
        else:
            await self._core.instruct(conversation, target, text, send)

    async def _command(self, incoming: Incoming, name: str, args: str, send: Send) -> None:
        if not name:
            raise UserError(NO_COMMAND)
        entry = self._handlers.get(name)
        if entry is None:
            raise unknown_command(name)
        info, handler = entry
        conversation = await self._conversation(incoming)
        group = handler.__self__
        if not group.admits(conversation):  # the same answer as an unknown command, before any parsing
            raise unknown_command(name)
        info = await info.narrowed(group, conversation)
        arguments = info.parse_args(args)
        if info.on_image:  # e.g. /file sent as a reply to an older result: that result's file
            arguments["node"] = (await self._core.head(conversation) if incoming.reply_to is None
                                 else await self._core.own_node(conversation, incoming.reply_to))
        await handler(conversation, send, **arguments)

    async def _press(self, incoming: Incoming, send: Send) -> None:
        press = incoming.action
        conversation = await self._conversation(incoming)
        node = await self._pressed_node(conversation, press.node_id)
        entry = self._buttons.get(press.action)
        if entry is None:
            raise UserError("That button is out of date.")
        _, handler = entry
        await in_thread(self._core.history.touch, node.id)  # a press is a use: retention keeps the tree
        await handler(conversation, node, send)

    async def _pressed_node(self, conversation: Conversation, node_id: int) -> Node:
        """The node a button was under, if it is still there and in this person's conversation."""
        node = await in_thread(self._core.history.node, node_id)
        if node is None:
            raise UserError("That button is out of date.")
        if node.conversation_id != conversation.id:
            raise UserError("That button belongs to someone else's edits; send your own photo to start.")
        return node

    async def _conversation_in_turn(self, incoming: Incoming) -> Conversation:
        await wait_for_turn()
        return await self._conversation(incoming)

    async def _conversation(self, incoming: Incoming) -> Conversation:
        """The person's conversation, its settings those its model runs (EditCore.effective)."""
        return self._core.effective(await in_thread(self._core.history.conversation, incoming.key))


def _new_photo(incoming: Incoming) -> bool:
    return incoming.action is None and incoming.image is not None and not is_reference(incoming.text)


def _answered_at_once(incoming: Incoming) -> bool:
    """/cancel stops the edit on the way: it never waits behind the messages before it (core.conversation.turns)."""
    parsed = incoming.action is None and incoming.image is None and split_command((incoming.text or "").strip())
    return bool(parsed) and parsed[0] == "cancel"
