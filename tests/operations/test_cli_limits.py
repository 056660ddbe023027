"""`editbot edit` reads its input with the same byte limit as chat uploads: a huge file, or one that never ends,
is refused in one line after reading at most the limit."""

from __future__ import annotations

import os

import pytest

from bot.cli import main

LIMIT = 1024 * 1024


@pytest.fixture(autouse=True)
def small_upload_limit(monkeypatch, tmp_path):
    monkeypatch.setenv("EDITBOT_MAX_UPLOAD_BYTES", str(LIMIT))
    monkeypatch.chdir(tmp_path)


def test_a_file_over_the_upload_limit_is_refused_in_one_line(tmp_path, capsys):
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as file:
        file.write(b"\xff\xd8\xff\xe0")
        file.truncate(LIMIT + 1)  # sparse: costs no disk

    assert main(["edit", str(huge), "make it night", "-o", "out.png", "--model", "tiny"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "over 1 MB" in error, error


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_an_endless_input_stops_at_the_limit(capsys):
    assert main(["edit", "/dev/zero", "make it night", "-o", "out.png", "--model", "tiny"]) == 2
    assert "over 1 MB" in capsys.readouterr().err
