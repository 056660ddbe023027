"""`editbot bench-queue --soak MINUTES`: jobs flowing through the distributed queue for MINUTES while a random worker
is SIGKILLed (and replaced) every minute. Printed at the end:

- throughput (jobs/s), and lost (ended without an edit), duplicated (a photo edited more than once) and undelivered
  (a job row whose outcome never reached the front-end): all three must be 0;
- Redis memory (used_memory) and the job stream's length once a minute: both should stay flat, the stream trimmed
  by the workers (bot.distributed.upkeep) and dead workers' consumers removed.

Workers hold each job `--hold` seconds (bot.distributed.bench.HoldingEditor); a killed worker's job comes back after
SOAK_REDELIVER_SECONDS.
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

SOAK_REDELIVER_SECONDS = 5.0
KILL_EVERY_SECONDS = 60.0
DRAIN_SECONDS = 60.0
"""At the end, how long the jobs still in flight get to finish before they count as lost."""


async def soak(bench: Bench, minutes: float, workers: int, in_flight: int) -> dict:
    from redis.asyncio import Redis

    from bot.distributed.broker import make_broker
    from bot.distributed.frontend import DistributedQueue
    from bot.distributed.keys import Keys
    from bot.distributed.serving import DEFAULT_MODEL

    queue_name = f"soak-{uuid.uuid4().hex[:8]}"
    redis = Redis.from_url(bench.redis_url)
    queue = DistributedQueue(make_broker(bench.redis_url, queue_name, redeliver_seconds=SOAK_REDELIVER_SECONDS),
                             redis, bench.jobs, bench.history, frontend="soak", queue_name=queue_name,
                             max_waiting_per_person=1, max_waiting_total=in_flight + 1)
    await queue.start()
    extra = {"EDITBOT_REDELIVER_SECONDS": str(SOAK_REDELIVER_SECONDS)}
    processes = bench.start_workers(workers, queue_name, extra)
    jobs, samples = [], []
    outcomes: dict[int, str] = {}  # job index: "done", or the error it ended with
    kills = 0
    try:
        while await redis.scard(f"{queue_name}:bench-ready") < workers:
            await asyncio.sleep(0.1)
        started = last_kill = last_sample = time.monotonic()
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
                processes[victim] = bench.start_workers(1, queue_name, extra)[0]
                kills, last_kill = kills + 1, now
            if now - last_sample >= 60.0 or not samples:
                samples.append(await _redis_figures(redis, Keys(queue_name).jobs(DEFAULT_MODEL)))
                last_sample = now
        wall = time.monotonic() - started
        if flying:
            await asyncio.wait(flying, timeout=DRAIN_SECONDS)
        for future, index in flying.items():
            outcomes[index] = _outcome(future) if future.done() else "unfinished"
        samples.append(await _redis_figures(redis, Keys(queue_name).jobs(DEFAULT_MODEL)))
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
        "redis_memory_mb": [round(memory / 2**20, 2) for memory, _ in samples],
        "stream_length": [length for _, length in samples],
    }


def _outcome(future: asyncio.Future) -> str:
    return "done" if future.exception() is None else type(future.exception()).__name__


async def _redis_figures(redis, stream: str) -> tuple[int, int]:
    memory = (await redis.info("memory"))["used_memory"]
    return memory, await redis.xlen(stream)


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
        print(f"Redis memory MB, once a minute: {' '.join(map(str, result['redis_memory_mb']))}")
        print(f"job stream length, once a minute: {' '.join(map(str, result['stream_length']))}")
        if load.warning:
            print(load.warning, file=sys.stderr)
    return result
