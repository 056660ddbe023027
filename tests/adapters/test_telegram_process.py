"""The real `editbot telegram` process (webhook mode, the tiny model, SQLite) against the Bot API emulator, stopped the
way an operator stops it: SIGTERM (docker stop, systemd) lets the running edit finish and reach the person, then the
process exits cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.telegram_adapter import webhook_secret
from tests.support.chat import photo_bytes
from tests.support.telegram_harness import free_port
from tests.support.telegram_session import EmulatorSession, Person

ROOT = Path(__file__).parents[2]
START_SECONDS = 300  # importing torch and building the tiny model on a busy machine


def start_bot(emulator, tmp_path: Path, token: str, port: int) -> subprocess.Popen:
    env = {
        **os.environ, "PYTHONPATH": str(ROOT), "EDITBOT_MODEL": "tiny", "EDITBOT_DATA_DIR": str(tmp_path / "data"),
        "EDITBOT_MAX_SIDE": "128", "EDITBOT_WARMUP": "false", "EDITBOT_HTTP_PORT": "0",
        "EDITBOT_SHUTDOWN_GRACE_SECONDS": "240", "EDITBOT_SEGMENTATION_MODEL": "tiny",
        "EDITBOT_TRANSLATION_MODEL": "none", "TELEGRAM_BOT_TOKEN": token,
        "TELEGRAM_BASE_URL": f"{emulator.url}/bot", "TELEGRAM_BASE_FILE_URL": f"{emulator.url}/file/bot",
        "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/updates", "TELEGRAM_WEBHOOK_LISTEN": "127.0.0.1",
        "TELEGRAM_WEBHOOK_PORT": str(port),
    }
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "telegram"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def listening(bot: subprocess.Popen, port: int) -> None:
    for _ in range(START_SECONDS * 10):
        assert bot.poll() is None, f"the bot exited: {bot.communicate()}"
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.1)
        else:
            writer.close()
            return
    raise AssertionError("the bot never listened for updates")


@pytest.mark.slow
async def test_sigterm_lets_the_running_edit_reach_the_person_then_exits_cleanly(emulator, tmp_path):
    token, port = f"{EmulatorSession.new_id()}:AAE-process", free_port()
    bot = start_bot(emulator, tmp_path, token, port)
    session = emulator.session(token, webhook_secret(token), port)
    try:
        await listening(bot, port)
        alice = Person(session)
        await alice.say("/steps 40")
        await session.expect("sendMessage")
        await alice.send_photo([(photo_bytes((96, 64)), 96, 64)], caption="make it night")
        await session.expect("sendMessage", lambda record: record["text"] == "Starting the edit…")
        bot.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(bot.communicate, timeout=START_SECONDS)
        result = await session.expect("sendPhoto")
    finally:
        if bot.poll() is None:
            bot.kill()
        await session.close()
    assert result["caption"].startswith("“make it night”")
    assert bot.returncode == 0, err
