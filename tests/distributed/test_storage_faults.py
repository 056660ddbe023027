"""The distributed mode while its storage fails: a private PostgreSQL stopped for a few seconds, and the S3 emulator
cut off for a few seconds, while edits run and new ones arrive. No edit is lost or doubled, the people waiting are
told, and the work resumes by itself."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from core.conversation.edits import DELAYED_LINE  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from tests.support.chat import Chat, images, progress, texts  # noqa: E402
from tests.support.cluster import Cluster, person, until  # noqa: E402
from tests.support.services import Outlet, PrivatePostgres, PrivateS3  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture
def private_postgres():
    server = PrivatePostgres()
    try:
        server.init()
        server.start()
    except (FileNotFoundError, OSError) as error:
        server.remove()
        pytest.skip(f"cannot run a private PostgreSQL here: {error}")
    yield server
    server.remove()


def _told_and_delivered(replies: list) -> None:
    assert len(images(replies)) == 1, texts(replies)


async def test_a_postgres_outage_loses_and_doubles_no_edit(private_postgres, private_redis, tmp_path):
    upgrade(private_postgres.url)
    cluster = Cluster(private_postgres.url, tmp_path, "pg-faults", redis_url=private_redis.url)
    try:
        log = tmp_path / "worker.log"
        cluster.start_worker(step_seconds=0.1, log=log)  # 2 s per edit
        await until(lambda: cluster.ready_workers() == 1, what="the worker ready")
        engine = cluster.engine()
        await engine.start()
        try:
            running_chat, new_chat = Chat(engine, person(1)), Chat(engine, person(2))
            assert not images(await new_chat.photo())
            running = asyncio.create_task(running_chat.photo("make it snow"))
            await until(lambda: any(state == "running" for _, state, *_ in cluster.job_rows()), what="running")
            private_postgres.stop()
            # Sent while the database is out: the engine cannot even read the conversation; one line, nothing kept.
            refused = await asyncio.wait_for(new_chat("make it night"), timeout=30)
            await asyncio.sleep(2.0)
            private_postgres.start()
            finished = await asyncio.wait_for(running, timeout=60)
            again = await asyncio.wait_for(new_chat("make it night"), timeout=60)
        finally:
            await engine.close()
        assert not images(refused) and len([reply for reply in texts(refused) if reply.error]) == 1, refused
        _told_and_delivered(finished)
        _told_and_delivered(again)
        replies = [finished]
        assert DELAYED_LINE in [update.text for update in progress(replies[0])], "the person waiting was told"
        assert cluster.children_of_roots() == [1, 1]
        assert {(state, attempts, delivered) for _, state, _, attempts, delivered in cluster.job_rows()} == {
            ("done", 1, True)}
        time.sleep(0.5)
        logged = log.read_text()
        assert logged.count("lost the database") == 1 and logged.count("the database back after") == 1, logged
    finally:
        cluster.stop()


async def test_an_s3_outage_loses_and_doubles_no_edit(private_cluster, tmp_path):
    boto3 = pytest.importorskip("boto3")
    from storage.s3 import S3ImageStore

    cluster = private_cluster
    emulator = PrivateS3()
    emulator.start()
    outlet = Outlet(emulator.port)  # the workers and the front-end reach the emulator through it
    outlet.restore()
    try:
        client = boto3.client("s3", endpoint_url=outlet.url, region_name="us-east-1", aws_access_key_id="test",
                              aws_secret_access_key="test")
        cluster.images = S3ImageStore(client, "faults")
        cluster.images.ensure_bucket()
        log = tmp_path / "worker.log"
        cluster.start_worker(step_seconds=0.2, log=log, extra_env={  # 4 s per edit: cut long before it stores
            "EDITBOT_IMAGE_STORE": "s3", "EDITBOT_S3_ENDPOINT_URL": outlet.url, "EDITBOT_S3_BUCKET": "faults",
            "EDITBOT_S3_REGION": "us-east-1", "EDITBOT_S3_ACCESS_KEY": "test", "EDITBOT_S3_SECRET_KEY": "test"})
        await until(lambda: cluster.ready_workers() == 1, what="the worker ready")
        engine = cluster.engine()
        await engine.start()
        try:
            chat = Chat(engine, person(1))
            edit = asyncio.create_task(chat.photo("make it snow"))
            await until(lambda: any(state == "running" for _, state, *_ in cluster.job_rows()), what="running")
            outlet.cut()  # the result cannot be stored when the edit ends
            with pytest.raises(ConnectionRefusedError):  # not even by the first connection after the cut
                socket.create_connection(("127.0.0.1", outlet.port), timeout=5).close()
            assert [state for _, state, *_ in cluster.job_rows()] == ["running"], "cut before the result was stored"
            await asyncio.sleep(10.0)  # longer than boto3's own retries last
            outlet.restore()
            replies = await asyncio.wait_for(edit, timeout=60)
        finally:
            await engine.close()
        _told_and_delivered(replies)
        assert DELAYED_LINE in [update.text for update in progress(replies)], "the person waiting was told"
        assert cluster.children_of_roots() == [1]
        [(_, state, _, attempts, delivered)] = cluster.job_rows()
        assert (state, attempts, delivered) == ("done", 1, True)
        time.sleep(0.5)
        logged = log.read_text()
        # One line each way at most (boto3's own retries may hide all but one failure, which alone is not logged).
        assert logged.count("lost the image store") == logged.count("the image store back after") <= 1, logged
        assert "Traceback" not in logged, logged
    finally:
        outlet.cut()
        emulator.stop()
