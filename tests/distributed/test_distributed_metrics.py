"""/metrics in distributed mode: a front-end wired by bootstrap counts edits, failures and edit time from the
outcomes of the jobs it follows, as the in-process queue does for the edits it runs. Real Redis and `editbot worker`
subprocesses, as in tests/distributed/test_distributed.py (skipped when Redis is not reachable)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("taskiq_redis")

from bot.bootstrap import build_engine  # noqa: E402
from bot.ops_http import EditMetrics  # noqa: E402
from core.config import Settings  # noqa: E402
from tests.support.chat import Chat, images, texts  # noqa: E402
from tests.support.cluster import REDELIVER_SECONDS, REDIS_URL, person, until  # noqa: E402
from tests.support.metrics import samples  # noqa: E402


@pytest.fixture
def distributed_settings(cluster, monkeypatch) -> Settings:
    for name, value in {
        "EDITBOT_MODE": "distributed",
        "EDITBOT_REDIS_URL": REDIS_URL,
        "EDITBOT_QUEUE_NAME": cluster.queue_name,
        "EDITBOT_REDELIVER_SECONDS": str(REDELIVER_SECONDS),
        "EDITBOT_DATABASE_URL": cluster.database_url,
        "EDITBOT_DATA_DIR": str(cluster.data_dir),
    }.items():
        monkeypatch.setenv(name, value)
    return Settings()


async def test_metrics_count_the_jobs_workers_ran(cluster, distributed_settings):
    metrics, queues = EditMetrics(), []

    def watch(queue) -> None:
        metrics.watch_queue(queue)
        queues.append(queue)

    engine = build_engine(distributed_settings, storage=(cluster.history, cluster.images), observer=metrics,
                          on_queue=watch)
    [queue] = queues
    cluster.start_worker(step_seconds=0.05)  # 20 steps: 1 s per edit
    await engine.start()
    try:
        done = Chat(engine, person(1))
        assert images(await done.photo("make it snow"))

        cancelled_running = Chat(engine, person(2))
        running = asyncio.create_task(cancelled_running.photo("make it night"))
        await until(lambda: any(state == "running" for _, state, *_ in cluster.job_rows()), what="a running job")
        await cancelled_running("/cancel")
        assert texts(await running)[-1].text == "Edit cancelled."

        await queue.pause()  # no worker takes the next job: cancelled while waiting, it is not an edit that ran
        cancelled_waiting = Chat(engine, person(3))
        waiting = asyncio.create_task(cancelled_waiting.photo("make it rain"))
        await until(lambda: len(cluster.job_rows()) == 3, what="the third job queued")
        await cancelled_waiting("/cancel")
        assert texts(await waiting)[-1].text == "Edit cancelled."
        await queue.resume()
    finally:
        await engine.close()

    after = samples(metrics.exposition().decode())
    assert after[("editbot_edits_total", ())] == 1
    assert after[("editbot_edit_failures_total", (("kind", "EditCancelled"),))] == 1
    assert after[("editbot_edit_seconds_count", ())] == 1
    assert after[("editbot_edit_seconds_sum", ())] > 0
    assert after[("editbot_queue_depth", ())] == 0
