"""Telegram and Discord as front-ends of the distributed mode, end to end: the real adapters (Telegram through the
Bot API emulator, Discord through SimCord) over a distributed engine, two `editbot worker` processes, and the worker
that runs the edit SIGKILLed mid-edit: the person gets the result once, the edit is recorded once."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

pytest.importorskip("redis")
pytest.importorskip("taskiq_redis")

from core.config import DiscordSettings, LimitSettings, Settings  # noqa: E402
from tests.support.chat import photo_bytes  # noqa: E402
from tests.support.cluster import Cluster, until  # noqa: E402

pytestmark = pytest.mark.slow


async def _kill_the_worker_running_the_edit(cluster: Cluster) -> int:
    """SIGKILL the worker that claimed the (only) job, a few steps in; its process id."""
    await until(lambda: any(state == "running" for _, state, *_ in cluster.job_rows()), what="the edit running")
    [(_, _, worker, _, _)] = cluster.job_rows()
    [victim] = [process for process in cluster.workers if worker.endswith(f":{process.pid}")]
    await asyncio.sleep(0.3)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    return victim.pid


def _recorded_once_by_the_survivor(cluster: Cluster, killed: int) -> None:
    [(_, state, worker, attempts, delivered)] = cluster.job_rows()
    assert (state, attempts, delivered) == ("done", 2, True)
    assert not worker.endswith(f":{killed}")
    assert cluster.children_of_roots() == [1]


async def _two_workers(cluster: Cluster) -> None:
    for _ in range(2):
        cluster.start_worker(step_seconds=0.1)  # 2 s per edit
    await until(lambda: cluster.ready_workers() == 2, what="two workers ready")


async def test_telegram_in_distributed_mode_survives_a_worker_killed_mid_edit(private_cluster, private_redis):
    pytest.importorskip("telemelya", reason="the Telemelya Bot API emulator is not installed")
    pytest.importorskip("moto.server", reason="moto's S3 server (moto[server]) is not installed")
    from bot.telegram_adapter import webhook_secret
    from tests.support.telegram_harness import (
        TelegramEmulator,
        make_settings,
        running_bot,
    )
    from tests.support.telegram_session import Person

    cluster = private_cluster
    await _two_workers(cluster)
    with TelegramEmulator.start(private_redis.url.rsplit("/", 1)[0] + "/1") as emulator:
        settings = make_settings(emulator)
        token = settings.telegram.bot_token
        session = emulator.session(token, webhook_secret(token), settings.telegram.webhook_port)
        try:
            async with running_bot(settings, cluster.engine(frontend="telegram")):
                await Person(session).send_photo([(photo_bytes((96, 64)), 96, 64)], caption="make it snow")
                killed = await _kill_the_worker_running_the_edit(cluster)
                result = await session.expect("sendPhoto")
                assert result["caption"].startswith("“make it snow”")
                assert not [record for record in await session.settle() if record["method"] == "sendPhoto"]
        finally:
            await session.close()
    _recorded_once_by_the_survivor(cluster, killed)


@pytest.fixture
async def distributed_engine(private_cluster):
    engine = private_cluster.engine(frontend="discord")
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture
def simcord_bot(distributed_engine):
    """The real discord.py client SimCord drives, over the distributed engine."""
    from bot.discord_adapter import build_client

    settings = Settings()
    settings.discord = DiscordSettings(bot_token=None, allowed_ids=set())
    settings.limits = LimitSettings(max_upload_bytes=64 * 1024 * 1024)
    return build_client(settings, distributed_engine)


async def test_discord_in_distributed_mode_survives_a_worker_killed_mid_edit(private_cluster, simcord_env):
    cluster = private_cluster
    await _two_workers(cluster)
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("art")
    alice = guild.add_member(simcord_env.create_user("alice"))
    edit = asyncio.create_task(alice.slash(channel, "edit", image=("photo.jpg", photo_bytes()),
                                           instruction="make it snow"))
    killed = await _kill_the_worker_running_the_edit(cluster)
    result = await asyncio.wait_for(edit, timeout=40)
    assert result.response.content == "✅ Done."
    assert len(result.followups) == 1 and result.followups[0].attachments
    _recorded_once_by_the_survivor(cluster, killed)
