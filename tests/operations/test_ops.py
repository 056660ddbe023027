"""Operations: /healthz and /metrics, the background service, retention and backup, warm-up, logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sqlite3
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.bootstrap import bot_service, warm_up
from bot.cli import main
from bot.logging_setup import REDACTED, configure_logging
from bot.ops import OpsService, PurgeResult, backup_sqlite, purge_history
from bot.ops_http import EditMetrics, Health, make_app
from core.config import OpsSettings, Settings
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey, NewNode
from core.errors import UserError
from core.metrics import log_conversation
from core.queue import EditQueue
from core.runner import EditRunner
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.support.chat import Chat, images, texts
from tests.support.fakes import FakeEditor
from tests.support.metrics import samples

TOKEN = "123456:AAE-secret-token-value"


@pytest.fixture(autouse=True)
def root_logging_restored():
    """main() and configure_logging set up the root logger; leave it as the next test expects it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
async def watched():
    """An engine whose queue reports to metrics, the health state and a test client for the ops app."""
    history, store, metrics, health = InMemoryHistoryRepository(), InMemoryImageStore(), EditMetrics(), Health()
    gate = threading.Event()
    editor = FakeEditor(gate=gate)
    queue = EditQueue(EditRunner(editor, history, store), observer=metrics)
    metrics.watch_queue(queue)
    engine = ConversationEngine(history, store, queue)
    await engine.start()
    client = TestClient(TestServer(make_app(health, metrics)))
    await client.start_server()
    yield engine, health, history, queue, client, editor, gate
    await client.close()
    await engine.close()


async def test_metrics_count_edits_failures_latency_and_queue_depth(watched):
    engine, health, _, _, client, editor, gate = watched
    chat = Chat(engine, ChatKey("test", "c", "alice"))
    await chat.photo()
    running = asyncio.create_task(chat("make it night"))
    await asyncio.to_thread(editor.started.wait, 5)
    response = await client.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
    during = samples(await response.text())
    assert during[("editbot_queue_depth", ())] == 1
    assert during[("editbot_model_ready", ())] == 0

    await chat("/cancel")
    assert texts(await running)[-1].text == "Edit cancelled."
    gate.set()
    assert images(await chat("add snow"))
    health.mark_model_ready()

    after = samples(await (await client.get("/metrics")).text())
    assert after[("editbot_edits_total", ())] == 1
    assert after[("editbot_edit_failures_total", (("kind", "EditCancelled"),))] == 1
    assert after[("editbot_edit_seconds_count", ())] == 1
    assert after[("editbot_edit_seconds_sum", ())] > 0
    assert after[("editbot_queue_depth", ())] == 0
    assert after[("editbot_queue_paused", ())] == 0
    assert after[("editbot_model_ready", ())] == 1


async def test_an_internal_failure_is_counted_as_internal():
    metrics = EditMetrics()

    class BrokenEditor(FakeEditor):
        def edit(self, *args, **kwargs):
            raise RuntimeError("CUDA error: out of memory")

    history, store = InMemoryHistoryRepository(), InMemoryImageStore()
    engine = ConversationEngine(history, store, EditQueue(EditRunner(BrokenEditor(), history, store), observer=metrics))
    await engine.start()
    try:
        replies = await Chat(engine, ChatKey("test", "c", "bob")).photo("make it night")
    finally:
        await engine.close()
    assert "on my side" in texts(replies)[-1].text
    assert samples(metrics.exposition().decode())[("editbot_edit_failures_total", (("kind", "internal"),))] == 1


async def test_healthz_is_503_until_the_model_is_ready_then_200(watched):
    _, health, history, queue, client, _, _ = watched
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json()) == {"status": "unavailable", "model_loaded": False, "database": False,
                                       "queue_depth": None, "queue_paused": None}
    health.history, health.queue = history, queue
    health.mark_model_ready()
    await queue.pause()
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json()) == {"status": "ok", "model_loaded": True, "database": True,
                                       "queue_depth": 0, "queue_paused": True}


async def test_healthz_is_503_when_the_database_fails(watched):
    _, health, _, queue, client, _, _ = watched

    class Unreachable(InMemoryHistoryRepository):
        def conversation_by_id(self, conversation_id):
            raise OSError("connection refused")

    health.history, health.queue = Unreachable(), queue
    health.mark_model_ready()
    response = await client.get("/healthz")
    assert response.status == 503 and (await response.json())["database"] is False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_service_answers_over_http_in_its_own_thread_and_runs_retention():
    health = Health()
    purged = threading.Event()

    def purge() -> PurgeResult:
        purged.set()
        return PurgeResult(0, 0)

    service = OpsService(OpsSettings(http_port=free_port()), health, EditMetrics(), purge=purge)
    service.start()
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"http://127.0.0.1:{service.port}/healthz", timeout=5)
        assert refused.value.code == 503 and json.load(refused.value)["model_loaded"] is False
        with urllib.request.urlopen(f"http://127.0.0.1:{service.port}/metrics", timeout=5) as response:
            assert b"editbot_queue_depth" in response.read()
        assert purged.wait(5)
    finally:
        service.stop()


def test_a_taken_port_fails_at_start_and_port_0_serves_nothing():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        service = OpsService(OpsSettings(http_port=taken.getsockname()[1]), Health(), EditMetrics())
        with pytest.raises(OSError):
            service.start()
    quiet = OpsService(OpsSettings(http_port=0), Health(), EditMetrics())
    quiet.start()
    assert quiet.port is None
    quiet.stop()


def test_bot_service_reports_ready_with_admin_commands_wired(tmp_path, monkeypatch):
    monkeypatch.setenv("EDITBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EDITBOT_HTTP_PORT", str(free_port()))
    monkeypatch.setenv("EDITBOT_ADMIN_IDS", '["test:root"]')
    settings = Settings()
    with bot_service(settings, editor=FakeEditor()) as engine:
        port = settings.ops.http_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            assert json.load(response)["status"] == "ok"

        async def ask_queue() -> str:
            await engine.start()
            try:
                [reply] = await Chat(engine, ChatKey("test", "dm", "root"))("/queue")
                return reply.text
            finally:
                await engine.close()

        assert "Waiting: 0" in asyncio.run(ask_queue())
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5)


def test_warm_up_runs_one_tiny_edit_and_survives_a_refusal():
    editor = FakeEditor()
    warm_up(editor)
    [(instruction, params)] = editor.calls
    assert params.steps <= 2

    class Refusing(FakeEditor):
        def edit(self, *args, **kwargs):
            raise UserError("flagged")

    warm_up(Refusing())  # logged, not raised: the model is loaded all the same


def test_purge_history_deletes_old_trees_and_their_images():
    history, store = InMemoryHistoryRepository(), InMemoryImageStore(grace_seconds=0)
    conversation = history.conversation(ChatKey("test", "c", "alice"))
    root = history.add_node(NewNode(conversation.id, None, store.put(b"photo"), None, None, None))
    assert purge_history(history, store, 30) == PurgeResult(0, 0)
    later = datetime.now(UTC) + timedelta(days=31)
    assert purge_history(history, store, 30, now=later) == PurgeResult(1, 1)
    assert history.node(root.id) is None and not store.exists(root.image_hash)


def test_db_purge_and_backup_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDITBOT_DATA_DIR", str(tmp_path / "data"))
    assert main(["db", "purge", "--older-than", "30"]) == 0
    assert "Deleted 0 history node(s)" in capsys.readouterr().out
    copy = tmp_path / "backups" / "editbot.sqlite3"
    assert main(["db", "backup", str(copy)]) == 0
    with sqlite3.connect(copy) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"conversations", "nodes"} <= tables
    capsys.readouterr()
    assert main(["db", "backup", str(copy)]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("args", [["db", "purge", "--older-than", "0"], ["db", "purge", "--older-than", "soon"]])
def test_db_purge_refuses_a_bad_age_in_one_line(args, capsys):
    with pytest.raises(SystemExit) as exit:
        main(args)
    assert exit.value.code == 2 and capsys.readouterr().err.count("\n") == 1


def test_backup_refuses_postgresql(tmp_path):
    with pytest.raises(UserError, match="pg_dump"):
        backup_sqlite("postgresql+psycopg://postgres@127.0.0.1/test", tmp_path / "copy")


def test_a_bad_setting_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("EDITBOT_HTTP_PORT", "eighty")
    assert main(["db", "upgrade"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "EDITBOT_HTTP_PORT must be a whole number from 0 to 65535" in error


def test_logs_never_carry_tokens_or_bytes_and_json_lines_name_the_conversation():
    stream = io.StringIO()
    handler = configure_logging("json", logging.INFO, secrets=[TOKEN, None], stream=stream)
    log = logging.getLogger("editbot.test")
    try:
        label = log_conversation.set("telegram:100:1")
        try:
            log.info("POST https://api.example/bot%s/getUpdates with %s", TOKEN, b"\x89PNG" * 1000)
            try:
                raise RuntimeError(f"bad token {TOKEN}")
            except RuntimeError:
                log.exception("request failed")
        finally:
            log_conversation.reset(label)
        log.warning("outside any conversation")
    finally:
        logging.getLogger().removeHandler(handler)

    output = stream.getvalue()
    assert TOKEN not in output and "PNG" not in output
    first, second, third = (json.loads(line) for line in output.splitlines() if line.startswith("{"))
    assert first["message"] == f"POST https://api.example/bot{REDACTED}/getUpdates with <4000 bytes>"
    assert first["conversation"] == "telegram:100:1" and first["level"] == "INFO"
    assert REDACTED in second["error"] and "RuntimeError" in second["error"]
    assert third["conversation"] is None


def test_plain_text_logs_put_the_conversation_in_brackets():
    stream = io.StringIO()
    handler = configure_logging("text", logging.INFO, secrets=[TOKEN], stream=stream)
    try:
        label = log_conversation.set("discord:5:6")
        logging.getLogger("editbot.test").info("token is %s", TOKEN)
        log_conversation.reset(label)
    finally:
        logging.getLogger().removeHandler(handler)
    line = stream.getvalue()
    assert "[discord:5:6]" in line and TOKEN not in line and REDACTED in line
