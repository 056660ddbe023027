"""Admin commands: queue status, usage, pause and resume, for the people listed in EDITBOT_ADMIN_IDS.

A command group for ConversationEngine(command_groups=[AdminCommands(...)]). The commands are hidden: they are not in
/help or the platforms' menus, and anyone else who sends one gets exactly the answer to an unknown command, so the
bot does not reveal that they exist.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from core.commands import Arg, command
from core.conversation.edits import CommandGroup
from core.domain import Conversation
from core.messages import Send, TextReply
from core.offload import in_thread
from core.ports import HistoryRepository, JobQueue

USAGE_DAYS = 7
USAGE_TOP = 10
USAGE_TOP_MAX = 100


class AdminCommands(CommandGroup, register=False):
    """/queue, /usage, /pause and /resume. admin_ids: entries like "telegram:12345" (ChatKey platform:user_id)."""

    def __init__(self, queue: JobQueue, history: HistoryRepository, admin_ids: Iterable[str]) -> None:
        self._queue = queue
        self._history = history
        self._admins = frozenset(admin_ids)

    def admits(self, conversation: Conversation) -> bool:
        return conversation.key.person in self._admins

    @command("queue", hidden=True)
    async def queue_command(self, conversation: Conversation, send: Send) -> None:
        """Admin: show whether an edit runs, how many wait, and whether the queue is paused."""
        status = self._queue.status
        state = "paused (/resume to start edits again)" if status.paused else "taking edits"
        await send(TextReply(
            f"Queue: {state}.\nRunning: {'1 edit' if status.running else 'nothing'}.\nWaiting: {status.waiting}."
        ))

    @command("usage", Arg.whole("n", 1, USAGE_TOP_MAX, f"How many people to list (default {USAGE_TOP})",
                                default=USAGE_TOP), hidden=True)
    async def usage_command(self, conversation: Conversation, send: Send, n: int) -> None:
        """Admin: the N people with the most edits over the last 7 days (default 10)."""
        since = datetime.now(UTC) - timedelta(days=USAGE_DAYS)
        counts = await in_thread(self._history.edit_counts, since, n)
        if not counts:
            await send(TextReply(f"No edits in the last {USAGE_DAYS} days."))
            return
        rows = [f"{rank}. {person}: {edits}" for rank, (person, edits) in enumerate(counts, start=1)]
        await send(TextReply(f"Edits in the last {USAGE_DAYS} days:\n" + "\n".join(rows)))

    @command("pause", hidden=True)
    async def pause_command(self, conversation: Conversation, send: Send) -> None:
        """Admin: start no new edits; the running one finishes and waiting ones keep their places."""
        await self._queue.pause()
        await send(TextReply("Paused: no new edits start until /resume. Waiting edits keep their places."))

    @command("resume", hidden=True)
    async def resume_command(self, conversation: Conversation, send: Send) -> None:
        """Admin: start edits again after /pause."""
        await self._queue.resume()
        await send(TextReply("Resumed: edits run again."))
