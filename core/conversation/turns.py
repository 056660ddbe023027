"""One conversation's messages are answered in the order they came, as a person reads their own chat.

Front-ends hand the engine each message as its own task (an edit's answer ends only when the edit does), so without
turns "/model qwen" followed at once by "/negative blurry" could be applied in either order, and "make it night"
sent just after a photo could edit the picture before it. A message takes its turn when it arrives and holds it
until it is answered, or until the edit it asked for is in the queue (`EditCore.follow` lets go then): the next
message need not wait minutes for the model, and an edit's /cancel comes through while it runs. /cancel itself
never waits for a turn.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

from core.domain import ChatKey


class Turn:
    """One message's place in its conversation's order."""

    def __init__(self, turns: Turns, key: ChatKey, previous: asyncio.Future | None) -> None:
        self._turns = turns
        self._key = key
        self._previous = previous
        self._done = asyncio.get_running_loop().create_future()

    async def wait(self) -> None:
        """Return once every earlier message of the conversation has been answered or has queued its edit."""
        if self._previous is not None:
            await asyncio.wait({self._previous})  # never cancels the earlier message's future, unlike awaiting it

    def release(self) -> None:
        """Let the next message of the conversation go on (again: nothing)."""
        if not self._done.done():
            self._done.set_result(None)
        self._turns.forget(self._key, self._done)


class Turns:
    """The order of every conversation's messages. Turns are taken synchronously, so tasks started in the order
    their messages came take them in that order."""

    def __init__(self) -> None:
        self._last: dict[ChatKey, asyncio.Future] = {}  # per conversation, the done-future of its latest message

    def take(self, key: ChatKey) -> Turn:
        turn = Turn(self, key, self._last.get(key))
        self._last[key] = turn._done
        return turn

    def forget(self, key: ChatKey, done: asyncio.Future) -> None:
        """Drop a conversation's entry once its latest message is answered (nothing is kept per idle chat)."""
        if self._last.get(key) is done:
            del self._last[key]


current_turn: ContextVar[Turn | None] = ContextVar("current_turn", default=None)
"""The turn of the message the running task answers (None outside an answer, e.g. re-attached deliveries)."""


async def wait_for_turn() -> None:
    if (turn := current_turn.get()) is not None:
        await turn.wait()


def let_next_message_go() -> None:
    """The running answer no longer changes its conversation before its edit is done: later messages may start."""
    if (turn := current_turn.get()) is not None:
        turn.release()
