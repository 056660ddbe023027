"""A start that cannot succeed ends in one redacted line and a non-zero exit status, never a traceback: the Bot API
refusing the token (or a proxy answering 404 instead of it), a malformed or unreachable database URL."""

from __future__ import annotations

import contextlib
import http.server
import threading

import pytest

from bot.cli import main
from bot.startup_failures import mask_database_url

TOKEN = "123456:AAE-very-secret-token-value"
PASSWORD = "hunter2-secret"


@pytest.fixture(autouse=True)
def quiet_start(monkeypatch, tmp_path):
    """A bot that would start at once: the tiny model, its own data folder, ops on a free port, no other token."""
    monkeypatch.chdir(tmp_path)
    for name, value in {"EDITBOT_MODEL": "tiny", "EDITBOT_DATA_DIR": str(tmp_path / "data"),
                        "EDITBOT_HTTP_PORT": "0", "EDITBOT_WARMUP": "false"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DISCORD_BOT_TOKEN", raising=False)
    monkeypatch.delenv("EDITBOT_DATABASE_URL", raising=False)


@contextlib.contextmanager
def answering_404() -> str:
    """An HTTP server that answers every request 404, as a misconfigured proxy in front of the Bot API does."""

    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"ok": false, "error_code": 404, "description": "Not Found"}')

        do_GET = do_POST

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        thread.join()


def run(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exit:
        return exit.code


def assert_one_clean_line(error: str, *secrets: str) -> None:
    """One line of ours (the bots' own INFO log of their start may precede it), no traceback, no secret."""
    assert len([line for line in error.splitlines() if line.startswith("editbot:")]) == 1, error
    assert error.splitlines()[-1].startswith("editbot:")
    assert "Traceback" not in error
    for secret in secrets:
        assert secret not in error


def test_a_token_the_bot_api_refuses_is_one_line_without_the_token(monkeypatch, capsys):
    with answering_404() as url:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TELEGRAM_BASE_URL", f"{url}/bot")
        monkeypatch.setenv("TELEGRAM_BASE_FILE_URL", f"{url}/file/bot")
        status = run(["telegram"])
    error = capsys.readouterr().err
    assert status == 2
    assert_one_clean_line(error, TOKEN, "AAE-very-secret")
    assert "TELEGRAM_BOT_TOKEN" in error


@pytest.mark.parametrize("command", [["db", "upgrade"], ["telegram"]])
def test_an_unreachable_database_is_one_line_with_the_password_masked(monkeypatch, capsys, command):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("EDITBOT_DATABASE_URL", f"postgresql+psycopg://editbot:{PASSWORD}@127.0.0.1:1/editbot")
    assert run(command) == 2
    error = capsys.readouterr().err
    assert_one_clean_line(error, PASSWORD, TOKEN)
    assert "editbot:***@127.0.0.1:1" in error


def test_a_malformed_database_url_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("EDITBOT_DATABASE_URL", "this is not a url")
    assert run(["db", "upgrade"]) == 2
    error = capsys.readouterr().err
    assert_one_clean_line(error)
    assert "EDITBOT_DATABASE_URL" in error


def test_database_urls_are_shown_with_the_password_masked():
    assert mask_database_url(f"postgresql+psycopg://bob:{PASSWORD}@db:5432/x") == "postgresql+psycopg://bob:***@db:5432/x"
    assert mask_database_url(f"weird//bob:{PASSWORD}@db/x") == "weird//bob:***@db/x"
    assert mask_database_url("sqlite:////data/editbot.sqlite3") == "sqlite:////data/editbot.sqlite3"


def test_db_upgrade_never_prints_the_password(monkeypatch, capsys, tmp_path):
    import bot.bootstrap

    monkeypatch.setattr(bot.bootstrap, "build_storage", lambda settings: (None, None))
    monkeypatch.setenv("EDITBOT_DATABASE_URL", f"postgresql+psycopg://bob:{PASSWORD}@db/x")
    assert run(["db", "upgrade"]) == 0
    output = capsys.readouterr().out
    assert PASSWORD not in output and "bob:***@db/x" in output
