"""Benchmark of the distributed queue: throughput with 1, 2 and 4 workers, lost and duplicated edits, queue overhead.

    python -m bot.distributed.bench [--jobs 32] [--hold 0.25] [--workers 1 2 4] [--json]
    editbot bench-queue [same options] [--repeats 3]

The workers run `editbot worker`'s wiring with an editor stand-in that holds each job for `--hold` seconds (sleeping,
so two CPU cores do not cap the figures) and returns the photo. Everything else is real: Taskiq's Redis stream broker,
the job table, the image store, progress over pub/sub. Redis comes from EDITBOT_REDIS_URL, the database from
EDITBOT_DATABASE_URL (default: SQLite in a temporary folder). Figures printed:

- throughput (jobs/s) and speed-up over one worker: medians over `--repeats` rounds, the speed-up paired round by
  round, with its interquartile range; and the share of the CPU other processes took meanwhile;
- lost (jobs not done) and duplicated (photos edited more than once) edits: both must be 0;
- overhead per job: worker time not spent holding, per job, (workers x wall - jobs x hold) / jobs, in ms;
- round trip: one job on idle workers, submit to result, minus the hold, in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from PIL import Image

from core.benchstats import MachineLoad, paired_summary, round_order
from core.domain import ChatKey, EditJob, EditParams, NewNode
from core.ports import EditResult

STEPS = 4


class HoldingEditor:
    """An Editor stand-in: holds each job for `hold` seconds in STEPS steps, honouring cancel, and returns the photo."""

    def __init__(self, hold: float) -> None:
        self.hold = hold

    def edit(self, image, instruction, params, *, on_step=None, cancel=None) -> EditResult:
        params = params if params.seed is not None else params.with_seed(0)
        start = time.perf_counter()
        for step in range(1, params.steps + 1):
            time.sleep(self.hold / params.steps)
            if on_step is not None:
                on_step(step, params.steps)
        return EditResult(image.copy(), params, time.perf_counter() - start)

    def edit_batch(self, image, instruction, variants, *, on_step=None, cancel=None) -> list[EditResult]:
        return [self.edit(image, instruction, params, on_step=on_step, cancel=cancel) for params in variants]

    def working_size(self, size: tuple[int, int]) -> tuple[int, int]:
        return size


def _worker_main(hold: float) -> None:
    import redis

    from bot.distributed.worker import run_worker
    from core.config import Settings

    settings = Settings()

    def ready() -> None:  # the benchmark starts the clock once every worker listens
        with redis.Redis.from_url(settings.distributed.redis_url) as client:
            client.sadd(f"{settings.distributed.queue_name}:bench-ready", os.getpid())

    run_worker(settings, editor=HoldingEditor(hold), on_ready=ready)


class Bench:
    def __init__(self, database_url: str, data_dir: Path, redis_url: str, hold: float) -> None:
        from bot.distributed.jobs import SqlJobRepository
        from storage.blobs import FileImageStore
        from storage.database import make_engine
        from storage.migrate import upgrade
        from storage.repository import SqlHistoryRepository

        upgrade(database_url)
        self.database_url, self.data_dir, self.redis_url, self.hold = database_url, data_dir, redis_url, hold
        self.db = make_engine(database_url)
        self.history = SqlHistoryRepository(self.db)
        self.images = FileImageStore(data_dir / "images")
        self.jobs = SqlJobRepository(self.db)
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64), (40, 90, 160)).save(buffer, "PNG")
        self.photo = self.images.put(buffer.getvalue())

    def start_workers(self, count: int, queue_name: str,
                      extra_env: dict[str, str] | None = None) -> list[subprocess.Popen]:
        env = {**os.environ, "EDITBOT_DATA_DIR": str(self.data_dir), "EDITBOT_DATABASE_URL": self.database_url,
               "EDITBOT_REDIS_URL": self.redis_url, "EDITBOT_QUEUE_NAME": queue_name, "EDITBOT_IMAGE_STORE": "local",
               **(extra_env or {})}
        command = [sys.executable, "-m", "bot.distributed.bench", "--serve-worker", str(self.hold)]
        return [subprocess.Popen(command, env=env) for _ in range(count)]

    async def stop(self, processes: list[subprocess.Popen], queue_name: str) -> None:
        """Stop the workers and remove the run's Redis keys."""
        from redis.asyncio import Redis

        for process in processes:
            process.terminate()
        for process in processes:
            process.wait()
        async with Redis.from_url(self.redis_url) as redis:
            leftovers = [key async for key in redis.scan_iter(f"{queue_name}:*")]
            if leftovers:
                await redis.delete(*leftovers)

    def new_jobs(self, count: int, run: str) -> list[EditJob]:
        """One fresh photo (a root node) per job, so a duplicated edit shows as a second child."""
        jobs = []
        for number in range(count):
            conversation = self.history.conversation(ChatKey("bench", run, str(number)))
            root = self.history.add_node(NewNode(conversation.id, None, self.photo, None, None, None))
            jobs.append(EditJob(conversation.id, f"bench:{run}:{number}", root.id, self.photo, "hold",
                                EditParams(steps=STEPS, seed=1)))
        return jobs

    def edits_per_photo(self, jobs: list[EditJob]) -> list[int]:
        return [len(self.history.children(job.parent_id)) for job in jobs]

    async def run(self, workers: int, job_count: int) -> dict:
        from redis.asyncio import Redis

        from bot.distributed.broker import make_broker
        from bot.distributed.frontend import DistributedQueue

        queue_name = f"bench-{uuid.uuid4().hex[:8]}"
        redis = Redis.from_url(self.redis_url)
        queue = DistributedQueue(make_broker(self.redis_url, queue_name, redeliver_seconds=120), redis, self.jobs,
                                 self.history, frontend="bench", queue_name=queue_name,
                                 max_waiting_per_person=1, max_waiting_total=job_count + 1)
        await queue.start()
        processes = self.start_workers(workers, queue_name)
        try:
            while await redis.scard(f"{queue_name}:bench-ready") < workers:
                await asyncio.sleep(0.1)
            single = self.new_jobs(1, f"{queue_name}-single")
            started = time.perf_counter()
            await queue.submit(single[0]).result
            round_trip = time.perf_counter() - started - self.hold

            jobs = self.new_jobs(job_count, queue_name)
            started = time.perf_counter()
            handles = [queue.submit(job) for job in jobs]
            outcomes = await asyncio.gather(*(handle.result for handle in handles), return_exceptions=True)
            wall = time.perf_counter() - started
        finally:
            await queue.close()
            await self.stop(processes, queue_name)
        edits = self.edits_per_photo(jobs)
        return {
            "workers": workers,
            "jobs": job_count,
            "wall_s": round(wall, 3),
            "jobs_per_s": round(job_count / wall, 2),
            "lost": sum(isinstance(outcome, BaseException) for outcome in outcomes) + edits.count(0),
            "duplicated": sum(count - 1 for count in edits if count > 1),
            "overhead_ms_per_job": round((workers * wall - job_count * self.hold) / job_count * 1000, 1),
            "round_trip_overhead_ms": round(round_trip * 1000, 1),
        }


def run_benchmark(jobs: int = 32, hold: float = 0.25, workers: tuple[int, ...] = (1, 2, 4),
                  as_json: bool = False, repeats: int = 3) -> list[dict]:
    """Run `repeats` rounds over the worker counts (order reversed every other round) and print, per count, the
    median figures and the median of the per-round throughput ratios to the first count, with their spread."""
    redis_url = os.environ.get("EDITBOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    rounds: dict[int, list[dict]] = {count: [] for count in workers}
    with tempfile.TemporaryDirectory(prefix="editbot-bench-") as folder, MachineLoad() as load:
        database_url = os.environ.get("EDITBOT_DATABASE_URL") or f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        bench = Bench(database_url, Path(folder), redis_url, hold)
        for round_index in range(max(1, repeats)):
            for count in round_order(workers, round_index):
                rounds[count].append(asyncio.run(bench.run(count, jobs)))
        bench.db.dispose()
    results = [_summarise(rounds[count], rounds[workers[0]]) for count in workers]
    if as_json:
        print(json.dumps({"hold_s": hold, "database": database_url.split(":")[0], "repeats": max(1, repeats),
                          "machine": load.figures(), "results": results}))
    else:
        print(f"hold {hold:g} s per job, {jobs} jobs, database {database_url.split(':')[0]}, "
              f"{max(1, repeats)} rounds (medians)")
        print(f"{'workers':>7} {'jobs/s':>8} {'speed-up':>8} {'IQR %':>6} {'lost':>5} {'dup':>4} "
              f"{'overhead ms/job':>16} {'round trip ms':>14}")
        for r in results:
            print(f"{r['workers']:>7} {r['jobs_per_s']:>8} {r['speedup']:>8} {r['speedup_iqr_pct']:>6} {r['lost']:>5} "
                  f"{r['duplicated']:>4} {r['overhead_ms_per_job']:>16} {r['round_trip_overhead_ms']:>14}")
        if load.warning:
            print(load.warning, file=sys.stderr)
    return results


def _summarise(runs: list[dict], baseline_runs: list[dict]) -> dict:
    """One worker count's rounds: medians, lost and duplicated summed (both must be 0), and the throughput gain
    over the baseline count, paired round by round."""
    def median(field: str) -> float:
        return round(statistics.median(run[field] for run in runs), 2)

    gain = paired_summary([run["jobs_per_s"] for run in baseline_runs], [run["jobs_per_s"] for run in runs],
                          higher_is_better=True)
    return {
        "workers": runs[0]["workers"], "jobs": runs[0]["jobs"], "rounds": runs,
        "jobs_per_s": median("jobs_per_s"), "wall_s": median("wall_s"),
        "speedup": round(gain["ratio"]["median"], 2), "speedup_iqr_pct": gain["ratio"]["iqr_pct"],
        "lost": sum(run["lost"] for run in runs), "duplicated": sum(run["duplicated"] for run in runs),
        "overhead_ms_per_job": median("overhead_ms_per_job"),
        "round_trip_overhead_ms": median("round_trip_overhead_ms"),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="editbot bench-queue", description=__doc__.split("\n\n")[0])
    add_options(parser)
    parser.add_argument("--serve-worker", type=float, metavar="HOLD", help=argparse.SUPPRESS)
    return parser


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--jobs", type=int, default=32, help="jobs per worker count (default 32)")
    parser.add_argument("--hold", type=float, default=0.25, help="seconds each job holds a worker (default 0.25)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts (default 1 2 4)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the worker counts (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--soak", type=float, metavar="MINUTES",
                        help="instead: keep jobs flowing for MINUTES with the largest --workers count, a random worker "
                             "killed every minute; print lost, duplicated, undelivered, Redis memory, stream length")


if __name__ == "__main__":
    arguments = build_parser().parse_args()
    if arguments.serve_worker is not None:
        _worker_main(arguments.serve_worker)
    elif arguments.soak is not None:
        from bot.distributed.soak import run_soak

        run_soak(arguments.soak, arguments.hold, max(arguments.workers), arguments.json)
    else:
        run_benchmark(arguments.jobs, arguments.hold, tuple(arguments.workers), arguments.json, arguments.repeats)
