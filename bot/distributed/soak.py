"""`editbot bench-queue --soak MINUTES`: jobs flowing through the distributed queue for MINUTES while a random worker
is SIGKILLed (and replaced) every minute. Printed at the end:

- throughput (jobs/s), and lost (ended without an edit), duplicated (a photo edited more than once) and undelivered
  (a job row whose outcome never reached the front-end): all three must be 0;
- Redis memory (the server's used_memory, and the run's own keys' MEMORY USAGE, which other users of the same
  server do not disturb), the length of the job streams (every model's, added up) and their consumers, sampled
  every SAMPLE_EVERY_SECONDS and shown per minute (each minute's highest sample), with a verdict: see `flatness`.

Workers hold each job `--hold` seconds (bot.distributed.bench.HoldingEditor) and run with the default redelivery time
(DistributedSettings.redeliver_seconds, 120 s): a killed worker's job goes to another worker once the killed one's
lease lapses (bot.distributed.upkeep.WORKER_LEASE_SECONDS), as in production.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bot.distributed.bench import Bench
from core.benchstats import MachineLoad
from core.config import DistributedSettings

REDELIVER_SECONDS = DistributedSettings.model_fields["redeliver_seconds"].default

KILL_EVERY_SECONDS = 60.0
SAMPLE_EVERY_SECONDS = 5.0
WARM_UP_SECONDS = 60.0
FLAT_GROWTH = 0.25
"""A series is flat when no minute after the warm-up minute peaks more than this share (plus a little slack, given
per series) above the first minute after it (minute 2): what counts is growth, not the saw-tooth of kills and
redeliveries within every minute."""
DRAIN_SECONDS = 60.0
"""At the end, how long the jobs still in flight get to finish before they count as lost."""


async def soak(bench: Bench, minutes: float, workers: int, in_flight: int) -> dict:
    from redis.asyncio import Redis

    from bot.distributed.broker import make_broker
    from bot.distributed.frontend import DistributedQueue

    queue_name = f"soak-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(bench.redis_url)
    queue = DistributedQueue(make_broker(bench.redis_url, queue_name, redeliver_seconds=REDELIVER_SECONDS),
                             redis, bench.jobs, bench.history, frontend="soak", queue_name=queue_name,
                             max_waiting_per_person=1, max_waiting_total=in_flight + 1)
    await queue.start()
    processes = bench.start_workers(workers, queue_name)
    jobs, samples = [], []
    outcomes: dict[int, str] = {}  # job index: "done", or the error it ended with
    kills = 0
    try:
        while await redis.scard(f"{queue_name}:bench-ready") < workers:
            await asyncio.sleep(0.1)
        started = last_kill = last_sample = time.monotonic()
        samples.append(await _redis_figures(redis, queue_name, 0.0))
        end = started + minutes * 60
        flying: dict[asyncio.Future, int] = {}
        while time.monotonic() < end:
            while len(flying) < in_flight:
                [job] = bench.new_jobs(1, f"{queue_name}-{len(jobs)}")
                flying[asyncio.ensure_future(queue.submit(job).result)] = len(jobs)
                jobs.append(job)
            done, _ = await asyncio.wait(flying, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                outcomes[flying.pop(future)] = _outcome(future)
            now = time.monotonic()
            if now - last_kill >= KILL_EVERY_SECONDS:
                victim = random.randrange(len(processes))
                os.kill(processes[victim].pid, signal.SIGKILL)
                processes[victim].wait()
                processes[victim] = bench.start_workers(1, queue_name)[0]
                kills, last_kill = kills + 1, now
            if now - last_sample >= SAMPLE_EVERY_SECONDS:
                samples.append(await _redis_figures(redis, queue_name, now - started))
                last_sample = now
        wall = time.monotonic() - started
        if flying:
            await asyncio.wait(flying, timeout=DRAIN_SECONDS)
        for future, index in flying.items():
            outcomes[index] = _outcome(future) if future.done() else "unfinished"
        samples.append(await _redis_figures(redis, queue_name, time.monotonic() - started))
    finally:
        await queue.close()  # and its Redis client
        await bench.stop(processes, queue_name)
    edits = bench.edits_per_photo(jobs)
    return {
        "minutes": minutes, "workers": workers, "workers_killed": kills, "jobs": len(jobs),
        "jobs_per_s": round(sum(outcome == "done" for outcome in outcomes.values()) / wall, 2),
        "lost": sum(outcomes.get(index) != "done" or count == 0 for index, count in enumerate(edits)),
        "duplicated": sum(count - 1 for count in edits if count > 1),
        "undelivered": len(bench.jobs.undelivered("soak")),
        "per_minute": _per_minute(samples),
        "flat": flatness(samples, slack={"redis_memory_mb": 0.25, "own_keys_kb": 64, "stream_length": 2 * in_flight,
                                     "consumers": 1}),
    }


def _outcome(future: asyncio.Future) -> str:
    return "done" if future.exception() is None else type(future.exception()).__name__


async def _redis_figures(redis, queue_name: str, elapsed: float) -> dict:
    from bot.distributed.keys import Keys

    group = f"{queue_name}-workers"
    own_keys = [key async for key in redis.scan_iter(f"{queue_name}:*")]
    own_bytes = sum([await redis.memory_usage(key, samples=0) or 0 for key in own_keys])
    # Every model's job stream (the soak's workers serve the default model only, but count them all).
    streams = [key async for key in redis.scan_iter(Keys(queue_name).jobs("*"), _type="stream")]
    consumers = set()
    for stream in streams:
        if any(_text(info["name"]) == group for info in await redis.xinfo_groups(stream)):
            consumers |= {_text(info["name"]) for info in await redis.xinfo_consumers(stream, group)}
    return {
        "at_s": round(elapsed), "redis_memory_mb": round((await redis.info("memory"))["used_memory"] / 2**20, 2),
        "own_keys_kb": round(own_bytes / 1024, 1), "stream_length": sum([await redis.xlen(key) for key in streams]),
        "consumers": len(consumers),  # distinct workers: one serving two models reads two streams
    }


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


SERIES = ("redis_memory_mb", "own_keys_kb", "stream_length", "consumers")


def _per_minute(samples: list[dict]) -> list[dict]:
    """Rows "start", each minute's highest sample of every series ("1", "2"...), and "end" (after the drain)."""
    minutes: dict[int, list[dict]] = {}
    for sample in samples[1:-1]:
        minutes.setdefault(int(sample["at_s"] // 60) + 1, []).append(sample)
    rows = [("start", samples[0])] + [(str(minute), {name: max(sample[name] for sample in group) for name in SERIES})
                                      for minute, group in minutes.items()] + [("end", samples[-1])]
    return [{"minute": label, **{name: row[name] for name in SERIES}} for label, row in rows]


def flatness(samples: list[dict], slack: dict[str, float]) -> dict[str, bool] | None:
    """Per series: whether it stayed flat (see FLAT_GROWTH); None when the run is too short to tell (it needs a
    minute after the warm-up minute)."""
    running = samples[:-1]  # the last one comes after the drain
    baseline = [sample for sample in running if WARM_UP_SECONDS <= sample["at_s"] < 2 * WARM_UP_SECONDS]
    later = [sample for sample in running if sample["at_s"] >= WARM_UP_SECONDS]
    if not baseline or later[-1]["at_s"] < 2 * WARM_UP_SECONDS:
        return None
    return {name: max(sample[name] for sample in later)
            <= max(sample[name] for sample in baseline) * (1 + FLAT_GROWTH) + slack[name] for name in slack}


def run_soak(minutes: float, hold: float = 0.25, workers: int = 3, as_json: bool = False) -> dict:
    redis_url = os.environ.get("EDITBOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    with tempfile.TemporaryDirectory(prefix="editbot-soak-") as folder, MachineLoad() as load:
        database_url = os.environ.get("EDITBOT_DATABASE_URL") or f"sqlite:///{Path(folder) / 'soak.sqlite3'}"
        bench = Bench(database_url, Path(folder), redis_url, hold)
        result = asyncio.run(soak(bench, minutes, workers, in_flight=2 * workers))
        bench.db.dispose()
    result["machine"] = load.figures()
    if as_json:
        print(json.dumps(result))
    else:
        print(f"soak {minutes:g} min, {workers} workers, hold {hold:g} s, a worker killed every "
              f"{KILL_EVERY_SECONDS:g} s ({result['workers_killed']} killed), database {database_url.split(':')[0]}")
        print(f"throughput {result['jobs_per_s']} jobs/s over {result['jobs']} jobs; lost {result['lost']}, "
              f"duplicated {result['duplicated']}, undelivered {result['undelivered']}")
        print(f"sampled every {SAMPLE_EVERY_SECONDS:g} s; each minute's highest sample:")
        print(f"{'minute':>6} {'Redis MB':>9} {'own keys KB':>11} {'stream':>7} {'consumers':>9}")
        for row in result["per_minute"]:
            print(f"{row['minute']:>6} {row['redis_memory_mb']:>9} {row['own_keys_kb']:>11} {row['stream_length']:>7} "
                  f"{row['consumers']:>9}")
        print(_verdict(result["flat"]))
        if load.warning:
            print(load.warning, file=sys.stderr)
    return result


def _verdict(flat: dict[str, bool] | None) -> str:
    if flat is None:
        return "flat: too short to tell (it needs two minutes: one to warm up, one to compare with)"
    rule = f"no minute after the first peaks over {FLAT_GROWTH:.0%} (plus slack) above minute 2"
    if all(flat.values()):
        return f"flat: yes ({rule})"
    return f"flat: NO, growing: {', '.join(name for name, ok in flat.items() if not ok)} ({rule})"
