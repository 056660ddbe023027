"""Front-ends of the distributed mode under the mistakes and interruptions people make: two started under one name,
Ctrl-C in the terminal chat during an edit, /pause while workers take jobs. Real Redis (a private redis-server), real
worker processes, a real `editbot chat` process for Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

redis_module = pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from redis.asyncio import Redis  # noqa: E402

from bot.distributed.identity import FrontendLease, default_frontend_id  # noqa: E402
from bot.distributed.keys import Keys  # noqa: E402
from core.errors import UserError  # noqa: E402
from tests.support.chat import Chat, images, photo_bytes  # noqa: E402
from tests.support.cluster import REDELIVER_SECONDS, person, until  # noqa: E402

pytestmark = pytest.mark.slow


def test_the_default_name_is_kept_per_data_folder_and_differs_between_folders(tmp_path):
    first = default_frontend_id("console", tmp_path / "a")
    assert first.startswith("console@") and default_frontend_id("console", tmp_path / "a") == first
    assert default_frontend_id("console", tmp_path / "b") != first


async def test_a_name_given_twice_is_refused_in_one_line_once_the_old_lease_ran_out(private_redis):
    redis = Redis.from_url(private_redis.url)
    try:
        keys = Keys("names")
        holder = FrontendLease(redis, keys, "telegram-1", exact=True, lease_seconds=1)
        assert await holder.take() == "telegram-1"

        async def live() -> None:  # the holder's process lives on, renewing as a front-end's listener does
            while True:
                await holder.renew()
                await asyncio.sleep(0.3)

        living = asyncio.create_task(live())
        with pytest.raises(UserError, match="Another front-end is running as telegram-1"):
            await FrontendLease(redis, keys, "telegram-1", exact=True, lease_seconds=1).take()
        living.cancel()
        await holder.release()
        assert await FrontendLease(redis, keys, "telegram-1", exact=True, lease_seconds=1).take() == "telegram-1"
    finally:
        await redis.aclose()


async def test_two_front_ends_left_at_one_default_name_never_see_each_others_results(private_cluster):
    cluster = private_cluster
    first = cluster.engine(frontend="console@host-1", exact_frontend=False)
    await first.start()
    second = None
    try:
        chat = Chat(first, person(1))
        assert not images(await chat.photo())
        edit = asyncio.create_task(chat("make it snow"))  # waits: no worker yet
        await until(lambda: len(cluster.job_rows()) == 1, what="the job queued")
        delivered_to_second: list = []

        async def send(reply) -> None:
            delivered_to_second.append(reply)

        second = cluster.engine(frontend="console@host-1", exact_frontend=False)
        await second.start(send_to=lambda key: send)
        assert (first.queue.frontend, second.queue.frontend) == ("console@host-1", "console@host-1-2")
        assert second.queue.recovered() == [], "the first one's job is not the second one's to deliver"
        cluster.start_worker(step_seconds=0.01)
        assert len(images(await asyncio.wait_for(edit, timeout=30))) == 1
        other = Chat(second, person(2))
        assert len(images(await asyncio.wait_for(other.photo("make it night"), timeout=30))) == 1
    finally:
        await first.close()
        if second is not None:
            await second.close()
    assert delivered_to_second == []
    assert sorted(frontend for frontend, in _frontends(cluster)) == ["console@host-1", "console@host-1-2"]


def _frontends(cluster) -> list[tuple[str]]:
    with cluster.db.connect() as connection:
        return connection.exec_driver_sql("SELECT frontend FROM jobs").all()


async def test_pause_is_in_force_when_it_returns_and_a_paused_queue_starts_nothing(private_cluster, private_redis):
    cluster = private_cluster
    cluster.start_worker(step_seconds=0.01)
    await until(lambda: cluster.ready_workers() == 1, what="the worker ready")
    engine = cluster.engine()
    await engine.start()
    flags = redis_module.Redis.from_url(private_redis.url)
    try:
        await engine.queue.pause()
        assert flags.exists(Keys(cluster.queue_name).paused), "in Redis before pause() returns"
        edit = asyncio.create_task(Chat(engine, person(1)).photo("make it snow"))
        await until(lambda: len(cluster.job_rows()) == 1, what="the job queued")
        await asyncio.sleep(REDELIVER_SECONDS * 2)
        assert [state for _, state, *_ in cluster.job_rows()] == ["queued"]
        await engine.queue.resume()
        assert not flags.exists(Keys(cluster.queue_name).paused)
        assert len(images(await asyncio.wait_for(edit, timeout=30))) == 1
    finally:
        flags.close()
        await engine.close()


def test_stopping_the_terminal_chat_during_an_edit_says_it_will_arrive(private_cluster, private_redis, tmp_path):
    cluster = private_cluster
    cluster.start_worker(step_seconds=0.2)  # 4 s per edit
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(photo_bytes())
    env = {**os.environ, "EDITBOT_MODE": "distributed", "EDITBOT_REDIS_URL": private_redis.url,
           "EDITBOT_QUEUE_NAME": cluster.queue_name, "EDITBOT_DATABASE_URL": cluster.database_url,
           "EDITBOT_DATA_DIR": str(tmp_path), "EDITBOT_FRONTEND_ID": "terminal"}
    chat = subprocess.Popen([str(Path(sys.executable).with_name("editbot")), "chat", "--out", str(tmp_path / "out")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        chat.stdin.write(f"/open {photo} make it snow\n")
        chat.stdin.flush()
        deadline = time.monotonic() + 30
        while not any(state == "running" for _, state, *_ in cluster.job_rows()):
            assert time.monotonic() < deadline and chat.poll() is None, "the edit never started"
            time.sleep(0.05)
        # A restart stops the front-end with SIGTERM (Ctrl+C cancels the edit instead: tests/adapters/test_console.py).
        chat.send_signal(signal.SIGTERM)
        output, errors = chat.communicate(timeout=20)
    finally:
        if chat.poll() is None:
            chat.kill()
    assert "! I'm restarting: your edit will arrive when I'm back." in output, (output, errors)
    assert "never retrieved" not in errors and "Traceback" not in errors, errors
