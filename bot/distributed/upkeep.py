"""Keeping the job streams small and their consumers few, without losing a pending job. A worker reads one stream
per model it serves (bot.distributed.serving); all of the below applies to each of them.

- Every acknowledgement deletes its entry and trims in the same atomic script (`ACK_AND_TRIM`), on the stream the
  delivery came from: the stream keeps only the entries some worker still holds (delivered, not acknowledged) and
  those nobody read yet. Trimming only now and then (it was every 30 s) let the stream refill by 30 s worth of jobs
  in between: a saw-tooth of 0 to ~300 entries at 10 jobs/s, which a soak sampled at whatever phase its samples
  fell on.
- Every live worker holds one lease (P:worker:NAME, `WORKER_LEASE_SECONDS`, renewed each `TIDY_EVERY_SECONDS`),
  whatever the streams it reads. Its tidying pass (`tidy_stream`, run on each stream it reads) hands the deliveries
  of consumers whose lease is gone (a killed worker) to the next reader at once, rather than after
  `redeliver_seconds` (they hold trimming back meanwhile), and removes those consumers once they hold nothing (each
  worker restart leaves one behind, named host:random:pid). A consumer is only removed with no pending delivery: removing
  it would drop its deliveries from the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from bot.distributed.keys import Keys
from bot.distributed.outage import REDIS, Outages

log = logging.getLogger(__name__)

TIDY_EVERY_SECONDS = 2.0
"""How often a worker renews its lease and tidies."""
WORKER_LEASE_SECONDS = 10.0
"""A worker whose lease has not been renewed this long is gone: its deliveries go to other workers at once, and a
job row it was running may be taken over without waiting for the row's heartbeat to go stale."""

_FIELDS = """
local function fields(flat)
    local named = {}
    for i = 1, #flat, 2 do named[flat[i]] = flat[i + 1] end
    return named
end
"""

_TRIM_DONE = _FIELDS + """
local function older(a, b)
    local a_ms, a_seq = string.match(a, '^(%d+)-(%d+)$')
    local b_ms, b_seq = string.match(b, '^(%d+)-(%d+)$')
    a_ms, b_ms = tonumber(a_ms), tonumber(b_ms)
    return a_ms < b_ms or (a_ms == b_ms and tonumber(a_seq) < tonumber(b_seq))
end

-- The oldest entry any group still needs: its oldest pending delivery, else the one after its last delivery.
local function trim_done(stream)
    local keep = nil
    for _, flat in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
        local group = fields(flat)
        local ms, seq = string.match(group['last-delivered-id'], '^(%d+)-(%d+)$')
        local needed = ms .. '-' .. (tonumber(seq) + 1)
        local pending = redis.call('XPENDING', stream, group['name'])
        if pending[1] > 0 then needed = pending[2] end
        if keep == nil or older(needed, keep) then keep = needed end
    end
    if keep == nil then return 0 end
    return redis.call('XTRIM', stream, 'MINID', keep)
end
"""

ACK_AND_TRIM = _TRIM_DONE + """
local acknowledged = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return acknowledged end  -- Redis lost it (restarted without its data)
if #redis.call('XINFO', 'GROUPS', KEYS[1]) == 1 then
    redis.call('XDEL', KEYS[1], ARGV[2])
end
trim_done(KEYS[1])
return acknowledged
"""
"""KEYS: the stream; ARGV: the group, the entry id. Acknowledge the entry and, the group being the stream's only one,
delete it (trimming alone keeps everything after a delivery still pending); then trim what no group needs."""

_TIDY = _TRIM_DONE + """
local released, removed = 0, 0
for _, flat in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local consumer = fields(flat)
    local name = consumer['name']
    if name ~= ARGV[4] and redis.call('EXISTS', ARGV[2] .. name) == 0 then
        if consumer['pending'] > 0 then
            -- Back-date the deliveries, so the next reader's XAUTOCLAIM takes them now.
            for _, entry in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', consumer['pending'], name)) do
                redis.call('XCLAIM', KEYS[1], ARGV[1], name, 0, entry[1], 'IDLE', ARGV[3], 'JUSTID')
                released = released + 1
            end
        else
            redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], name)
            removed = removed + 1
        end
    end
end
return {trim_done(KEYS[1]), released, removed}
"""


async def tidy_stream(redis: Redis, queue_name: str, stream: str, group: str, *, redeliver_ms: int,
                      keep_consumer: str = "") -> tuple[int, int, int]:
    """One tidying pass over one job stream of the deployment `queue_name` (whose worker leases it checks): (entries
    trimmed, deliveries of gone workers released to other workers, consumers of gone workers removed).
    keep_consumer: the caller's own consumer, never touched."""
    if not await redis.exists(stream):
        return 0, 0, 0
    try:
        trimmed, released, removed = await redis.eval(
            _TIDY, 1, stream, group, Keys(queue_name).worker(""), redeliver_ms, keep_consumer)
    except ResponseError as error:
        if str(error).startswith("NOGROUP"):  # Redis lost it (restarted without its data): the reader makes it again
            return 0, 0, 0
        raise
    return trimmed, released, removed


async def renew_lease(redis: Redis, queue_name: str, worker: str) -> None:
    await redis.set(Keys(queue_name).worker(worker), 1, ex=int(WORKER_LEASE_SECONDS))


async def keep_tidy(redis: Redis, queue_name: str, streams: Sequence[str], group: str, worker: str,
                    redeliver_ms: int, outages: Outages, every: float = TIDY_EVERY_SECONDS) -> None:
    """Renew the worker's lease and tidy each of its streams every `every` seconds until cancelled (a worker's
    background task); the lease is given up on the way out, so what the worker still held goes to others at once."""
    try:
        while True:
            await asyncio.sleep(every)
            try:
                await renew_lease(redis, queue_name, worker)
                for stream in streams:
                    trimmed, released, removed = await tidy_stream(redis, queue_name, stream, group,
                                                                   redeliver_ms=redeliver_ms, keep_consumer=worker)
                    if released or removed:
                        log.info("%s: workers gone: %d deliveries handed on, %d consumers removed; %d entries "
                                 "trimmed", stream, released, removed, trimmed)
            except Exception as error:
                if outages.failed(error) is None:
                    log.exception("tidying the job streams failed")
                continue
            outages.fine(REDIS)
    finally:
        with contextlib.suppress(RedisError):  # Redis out: the lease lapses by itself
            await redis.delete(Keys(queue_name).worker(worker))
