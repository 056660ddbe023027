"""The embedded mode stopped as an operator or a crash stops it, on a real `editbot chat` process: SIGTERM lets the
running edit finish and exits cleanly; after SIGKILL the next start offers the interrupted edit again."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cli import SAMPLE_PHOTO

ROOT = Path(__file__).parents[2]


def start_chat(tmp_path: Path, grace: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "EDITBOT_MODEL": "tiny", "EDITBOT_DATA_DIR": str(tmp_path / "data"),
           "EDITBOT_MAX_SIDE": "128", "EDITBOT_SHUTDOWN_GRACE_SECONDS": grace, "EDITBOT_WARMUP": "false"}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "chat", "--out", str(tmp_path / "out")], cwd=tmp_path,
                            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def say(chat: subprocess.Popen, *lines: str) -> None:
    chat.stdin.write("".join(line + "\n" for line in lines))
    chat.stdin.flush()


def wait_for_noted_edit(tmp_path: Path, chat: subprocess.Popen) -> None:
    """Until the database keeps an edit as waiting or running (the process noted it before queueing it)."""
    database = tmp_path / "data" / "editbot.sqlite3"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and chat.poll() is None:
        if database.exists():
            with sqlite3.connect(database) as connection:
                try:
                    if connection.execute("SELECT 1 FROM conversations WHERE pending_instruction IS NOT NULL").fetchone():
                        return
                except sqlite3.OperationalError:  # not migrated yet
                    pass
        time.sleep(0.05)
    raise AssertionError(f"no edit was noted; the chat said: {chat.communicate(timeout=60)}")


@pytest.mark.slow
def test_sigterm_finishes_the_edit_and_sigkill_is_offered_again_after_restart(tmp_path):
    first = start_chat(tmp_path, grace="240")
    say(first, f"/open {SAMPLE_PHOTO}", "/steps 20", "make it night", "add snow", "/history")
    wait_for_noted_edit(tmp_path, first)
    first.send_signal(signal.SIGTERM)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert "“make it night”" in out and "step-1" in out  # the running edit finished and was shown
    assert "add snow" not in out and "history" not in out  # lines piped in before the signal are not answered

    second = start_chat(tmp_path, grace="240")
    say(second, "make it winter")
    wait_for_noted_edit(tmp_path, second)
    second.send_signal(signal.SIGKILL)
    second.communicate(timeout=60)

    third = start_chat(tmp_path, grace="240")
    say(third, "/steps 2", "!anyway", "/quit")
    out, err = third.communicate(timeout=300)
    assert third.returncode == 0, err
    assert "interrupted your edit “make it winter”" in out and "Buttons: !anyway" in out
    assert "“make it winter”\n" in out  # the retry ran
