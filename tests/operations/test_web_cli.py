"""Which front-end the command line starts: with no bot token, `editbot` serves the web chat."""

from __future__ import annotations

import pytest

from bot import cli


@pytest.fixture
def started(monkeypatch) -> list:
    """What bots_command was asked to serve, instead of serving it."""
    calls = []

    def record(settings, args) -> int:
        calls.append((settings.web.web, settings.telegram.bot_token, settings.discord.bot_token))
        return 0

    monkeypatch.setattr(cli, "bots_command", record)
    for variable in ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "EDITBOT_WEB"):
        monkeypatch.delenv(variable, raising=False)
    return calls


def test_with_no_token_editbot_serves_the_web_chat(started):
    assert cli.main([]) == 0
    assert started == [(True, None, None)]


def test_with_a_token_editbot_runs_the_bots_and_the_web_chat_only_when_asked(started, monkeypatch):
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    assert cli.main([]) == 0
    monkeypatch.setenv("EDITBOT_WEB", "true")
    assert cli.main([]) == 0
    assert started == [(False, "123:abc", None), (True, "123:abc", None)]


def test_editbot_web_serves_the_page_alone(started, monkeypatch):
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "secret")
    assert cli.main(["web"]) == 0
    assert started == [(True, None, None)]


def test_editbot_bots_with_nothing_to_serve_says_what_to_set(monkeypatch, capsys):
    for variable in ("TELEGRAM_BOT_TOKEN", "DISCORD_BOT_TOKEN", "EDITBOT_WEB"):
        monkeypatch.delenv(variable, raising=False)
    assert cli.main(["bots"]) == 2
    assert capsys.readouterr().err == ("editbot: Set TELEGRAM_BOT_TOKEN and/or DISCORD_BOT_TOKEN (or EDITBOT_WEB=true) "
                                       "to run the bots.\n")
