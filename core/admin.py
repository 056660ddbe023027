"""Admin commands: queue status, usage, pause and resume, for the people listed in EDITBOT_ADMIN_IDS.

A command group for ConversationEngine(command_groups=[AdminCommands(...)]). The commands are hidden: they are not in
/help or the platforms' menus, and anyone else who sends one gets exactly the answer to an unknown command, so the
bot does not reveal that they exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

from core.commands import command, parse_whole, unknown_command
from core.domain import Conversation
from core.errors import BadParams
from core.messages import Reply, TextReply
from core.ports import HistoryRepository, JobQueue

Send = Callable[[Reply], Awaitable[None]]

USAGE_DAYS = 7
USAGE_TOP = 10
USAGE_TOP_MAX = 100


class AdminCommands:
    """/queue, /usage, /pause and /resume. admin_ids: entries like "telegram:12345" (ChatKey platform:user_id)."""

    def __init__(self, queue: JobQueue, history: HistoryRepository, admin_ids: Iterable[str]) -> None:
        self._queue = queue
        self._history = history
        self._admins = frozenset(admin_ids)

    def is_admin(self, conversation: Conversation) -> bool:
        return f"{conversation.key.platform}:{conversation.key.user_id}" in self._admins

    def _require_admin(self, conversation: Conversation, name: str) -> None:
        if not self.is_admin(conversation):
            raise unknown_command(name)

    @command("queue", hidden=True)
    async def queue_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Admin: show whether an edit runs, how many wait, and whether the queue is paused."""
        self._require_admin(conversation, "queue")
        status = self._queue.status
        state = "paused (/resume to start edits again)" if status.paused else "taking edits"
        await send(TextReply(
            f"Queue: {state}.\nRunning: {'1 edit' if status.running else 'nothing'}.\nWaiting: {status.waiting}."
        ))

    @command("usage", "[N]", hidden=True)
    async def usage_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Admin: the N people with the most edits over the last 7 days (default 10)."""
        self._require_admin(conversation, "usage")
        top = USAGE_TOP
        if args.strip():
            allowed = f"how many people to list, 1 to {USAGE_TOP_MAX}, e.g. /usage 20"
            top = parse_whole(args, "/usage", allowed)
            if not 1 <= top <= USAGE_TOP_MAX:
                raise BadParams(f"/usage needs {allowed}.")
        since = datetime.now(UTC) - timedelta(days=USAGE_DAYS)
        counts = await asyncio.to_thread(self._history.edit_counts, since, top)
        if not counts:
            await send(TextReply(f"No edits in the last {USAGE_DAYS} days."))
            return
        rows = [f"{rank}. {person}: {edits}" for rank, (person, edits) in enumerate(counts, start=1)]
        await send(TextReply(f"Edits in the last {USAGE_DAYS} days:\n" + "\n".join(rows)))

    @command("pause", hidden=True)
    async def pause_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Admin: start no new edits; the running one finishes and waiting ones keep their places."""
        self._require_admin(conversation, "pause")
        self._queue.pause()
        await send(TextReply("Paused: no new edits start until /resume. Waiting edits keep their places."))

    @command("resume", hidden=True)
    async def resume_command(self, conversation: Conversation, args: str, send: Send) -> None:
        """Admin: start edits again after /pause."""
        self._require_admin(conversation, "resume")
        self._queue.resume()
        await send(TextReply("Resumed: edits run again."))
