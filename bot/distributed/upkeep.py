"""Keeping the job streams small: every worker now and then trims, in each stream it reads (one per model it
serves), the entries all workers are done with and removes the consumers of workers that are gone (each worker
restart leaves one behind, named host:pid).

Nothing pending is lost: entries are trimmed only below the oldest one delivered and not yet acknowledged (and
never past the group's last delivery, so jobs nobody read yet stay), and a consumer is removed only when it holds
no pending delivery and has not read for `gone_after` seconds, checked and removed in one atomic script (a live
worker idle that long loses nothing either: its next read makes its consumer again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from redis.asyncio import Redis

from bot.distributed.outage import REDIS, Outages

log = logging.getLogger(__name__)

TIDY_EVERY_SECONDS = 30.0
GONE_AFTER_SECONDS = 120.0
"""A consumer that has read nothing this long and holds no delivery is removed (a worker busy with a long edit holds
that edit's delivery, so it is never removed mid-edit)."""

_REMOVE_GONE = """
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local fields = {}
    for i = 1, #consumer, 2 do fields[consumer[i]] = consumer[i + 1] end
    if fields['pending'] == 0 and fields['idle'] >= tonumber(ARGV[2]) and fields['name'] ~= ARGV[3] then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], fields['name'])
        removed = removed + 1
    end
end
return removed
"""


def _next_id(entry_id: str) -> str:
    milliseconds, sequence = entry_id.split("-")
    return f"{milliseconds}-{int(sequence) + 1}"


async def tidy_stream(redis: Redis, stream: str, group: str, *, gone_after: float = GONE_AFTER_SECONDS,
                      keep_consumer: str = "") -> tuple[int, int]:
    """Trim what every worker is done with and remove consumers gone: (entries trimmed, consumers removed)."""
    groups = [info for info in await redis.xinfo_groups(stream) if _text(info["name"]) == group]
    if not groups:
        return 0, 0
    # Read the last delivery before the pending ones: whatever is delivered in between is newer, so kept.
    keep_from = _next_id(_text(groups[0]["last-delivered-id"]))
    pending = await redis.xpending(stream, group)
    if pending["pending"]:
        keep_from = min(keep_from, _text(pending["min"]), key=lambda entry: tuple(map(int, entry.split("-"))))
    trimmed = await redis.xtrim(stream, minid=keep_from, approximate=False)
    removed = await redis.eval(_REMOVE_GONE, 1, stream, group, int(gone_after * 1000), keep_consumer)
    return trimmed, removed


async def keep_tidy(redis: Redis, streams: Sequence[str], group: str, consumer: str, outages: Outages,
                    every: float = TIDY_EVERY_SECONDS) -> None:
    """Tidy each of the streams every `every` seconds until cancelled (a worker's background task)."""
    while True:
        await asyncio.sleep(every)
        for stream in streams:
            try:
                trimmed, removed = await tidy_stream(redis, stream, group, keep_consumer=consumer)
            except Exception as error:
                if outages.failed(error) is None:
                    log.exception("tidying the job stream %s failed", stream)
                continue
            outages.fine(REDIS)
            if removed:
                log.info("%s: removed %d consumers of workers gone; trimmed %d entries", stream, removed, trimmed)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value
