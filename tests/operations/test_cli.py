"""`editbot` as a person or a script uses it: results on success; exit status 2 and one line on bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import SAMPLE_PHOTO, main


def run_editbot(*args: str, stdin: str = "", env: dict | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin, capture_output=True, text=True, timeout=300, cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), **(env or {})},
    )


@pytest.mark.slow
def test_edit_writes_the_result_and_reports_the_seed(tmp_path):
    output = tmp_path / "night.png"
    done = run_editbot("edit", str(SAMPLE_PHOTO), "make it night", "-o", str(output),
                       "--model", "tiny", "--steps", "2", "--seed", "7", "--max-side", "256")
    assert done.returncode == 0, done.stderr
    assert Image.open(output).size == (512, 384)  # edited at 256x192, delivered at the photo's own size
    assert "seed 7" in done.stdout and "2 steps" in done.stdout


@pytest.mark.slow
def test_edit_with_working_output_writes_the_working_size(tmp_path):
    output = tmp_path / "night.png"
    done = run_editbot("edit", str(SAMPLE_PHOTO), "make it night", "-o", str(output), "--model", "tiny",
                       "--steps", "2", "--seed", "7", "--max-side", "256", env={"EDITBOT_OUTPUT": "working"})
    assert done.returncode == 0, done.stderr
    assert Image.open(output).size == (256, 192)  # 512x384 sample, longest side capped, aspect kept


@pytest.mark.parametrize(
    "args, expected",
    [
        (["edit", "/no/such.jpg", "x", "-o", "out.png"], "Cannot read /no/such.jpg"),
        (["edit", str(SAMPLE_PHOTO), "x", "-o", "out.png", "--steps", "0"], "Steps must be a whole number"),
        (["edit", str(SAMPLE_PHOTO), "x", "-o", "out.png", "--image-guidance", "9"], "Image guidance must be"),
        (["edit", str(SAMPLE_PHOTO), "x", "-o", "out.png", "--model", "/no/such/model"], "/no/such/model"),
        (["edit", str(SAMPLE_PHOTO)], "required"),
        (["edit", str(SAMPLE_PHOTO), "x", "-o", "o.png", "--steps", "many"], "invalid int value"),
        (["chat", "/no/such.jpg"], "No such file"),
        (["chat", "/"], "/ is a folder; give the path of a photo file."),
        (["chat", "/dev/null"], "/dev/null is not a regular file (a device or a pipe)"),
        (["frobnicate"], "invalid choice"),
        (["bench", "--threads", "0"], "--threads: must be a whole number of threads, 1 or more (got '0')"),
    ],
)
def test_bad_input_is_one_line_and_status_2(args, expected, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert exit_status(args) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and expected in error, error
    assert "Traceback" not in error


def exit_status(args: list[str]) -> int:
    """main()'s status, whether it returns it or argparse exits with it."""
    try:
        return main(args)
    except SystemExit as exit:
        return exit.code


def test_a_broken_image_file_is_refused_in_one_line(tmp_path, capsys):
    broken = tmp_path / "photo.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 cut short")
    assert main(["edit", str(broken), "x", "-o", str(tmp_path / "o.png"), "--model", "tiny"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert "incomplete" in error or "damaged" in error


@pytest.mark.slow
def test_chat_is_scriptable_and_its_history_survives_a_restart(tmp_path):
    env = {"EDITBOT_MODEL": "tiny", "EDITBOT_DATA_DIR": str(tmp_path / "data"), "EDITBOT_MAX_SIDE": "128"}
    first = run_editbot("chat", "--out", str(tmp_path / "out"), env=env, cwd=tmp_path,
                        stdin=f"/steps 2\n/open {SAMPLE_PHOTO} make it night\nadd snow\n/undo\n")
    assert first.returncode == 0, first.stderr
    assert "“make it night”" in first.stdout and "Undone" in first.stdout
    assert len(list((tmp_path / "out").glob("step-*.png"))) == 2

    second = run_editbot("chat", env=env, cwd=tmp_path, stdin="/history\n")
    assert second.returncode == 0, second.stderr
    assert "1. “make it night”  ◀ you are here" in second.stdout
    assert "2. “add snow”" in second.stdout
