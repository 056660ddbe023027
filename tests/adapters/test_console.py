"""The terminal chat: lines in, printed text and result files out, over the same engine."""

from __future__ import annotations

import io
from pathlib import Path

from bot.console_adapter import ConsoleChat, run_console
from core.conversation.edits import DELAYED_LINE, progress
from core.ports import Delayed, Position, Step
from core.domain import ChatKey
from tests.support.chat import photo_bytes


def console(engine, tmp_path):
    output = io.StringIO()
    return ConsoleChat(engine, tmp_path / "out", output=output, key=ChatKey("console", "t", "me")), output


async def test_open_edit_undo_and_press_buttons(engine, history, tmp_path):
    photo = tmp_path / "my photo.jpg"
    photo.write_bytes(photo_bytes())
    chat, output = console(engine, tmp_path)

    await chat.say(f"/open {photo} make it night")
    first = chat.last_result
    assert (tmp_path / "out" / "step-1.png").read_bytes() == first.image
    assert "step-1.png" in output.getvalue() and "“make it night”" in output.getvalue()

    await chat.say("add stars")
    second = chat.last_result
    assert history.node(second.node_id).parent_id == first.node_id

    await chat.say("!undo")
    assert chat.last_result.node_id == first.node_id
    assert history.conversation(chat.key).head_id == first.node_id


async def test_help_lists_the_terminal_s_own_commands_too(engine, tmp_path):
    chat, output = console(engine, tmp_path)
    await chat.say("/help")
    shown = output.getvalue()
    assert "/undo — " in shown  # the engine's commands
    for usage in ("/open PATH [instruction] — ", "/ref PATH — ", "!button — ", "!pick N", "/quit — "):
        assert usage in shown
    assert shown.index("/undo — ") < shown.index("/open PATH")


async def test_mistakes_get_one_line(engine, tmp_path):
    chat, output = console(engine, tmp_path)
    await chat.say("!undo")
    await chat.say("/open /no/such/file.jpg")
    await chat.say("/open")
    await chat.say("make it night")
    lines = output.getvalue().splitlines()
    assert lines == [
        "! No result yet to press a button on.",
        "! No such file: /no/such/file.jpg",
        "! Usage: /open PATH [instruction]",
        "! Send me a photo first.",
    ]


async def test_written_to_a_file_it_shows_why_an_edit_is_held_up_but_no_counters(engine, tmp_path):
    chat, output = console(engine, tmp_path)
    no_worker = "No worker is running right now; your edit will run when one starts."  # distributed mode's
    for update in [Position(2), Delayed(no_worker), Step(3, 20), Position(0), Delayed()]:
        await chat.render(progress("job-1", update))
    assert output.getvalue().splitlines() == [no_worker, DELAYED_LINE]


async def test_a_script_drives_it_through_standard_input(engine, history, tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(photo_bytes(fmt="PNG"))
    script = io.StringIO("add snow\n/undo\n/history\n/quit\nnever read\n")
    output = io.StringIO()
    await run_console(engine, tmp_path / "out", image=photo, instruction="make it night", input=script, output=output)
    text = output.getvalue()
    assert "“make it night”" in text and "“add snow”" in text and "Undone" in text
    assert "1. “make it night”  ◀ you are here" in text
    assert len(list((tmp_path / "out").glob("step-*.png"))) == 2  # two edits; undo shows the first again


def editing_process(tmp_path):
    """A terminal chat in its own process, with an edit of a photo running (held by a slow editor)."""
    import subprocess
    import sys

    photo = tmp_path / "p.png"
    photo.write_bytes(photo_bytes(fmt="PNG"))
    process = subprocess.Popen([sys.executable, "-m", "tests.support.console_process", str(tmp_path / "out")],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[2])
    process.stdin.write(f"/open {photo} make it night\n")
    process.stdin.flush()
    wait_for_edit(process)
    return process


def wait_for_edit(process) -> None:
    while True:
        line = process.stderr.readline()
        assert line, "the chat ended before the edit started"
        if "[edit started]" in line:
            return


def test_cancel_typed_while_an_edit_runs_stops_it_in_a_real_process(tmp_path):
    process = editing_process(tmp_path)
    try:
        process.stdin.write("/cancel\n/history\n")
        process.stdin.close()
        output = process.stdout.read()
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert "Cancelling your edit." in output and "! Edit cancelled." in output
    assert "0. original photo  ◀ you are here" in output  # nothing recorded; the history answered after
    assert not list((tmp_path / "out").glob("step-1*.png"))


def test_first_ctrl_c_cancels_the_edit_and_the_second_quits(tmp_path):
    import signal

    process = editing_process(tmp_path)
    try:
        process.send_signal(signal.SIGINT)
        cancelled = [process.stdout.readline() for _ in range(3)]
        assert any("Cancelling the edit (Ctrl+C again quits)." in line for line in cancelled)
        assert any("Edit cancelled." in line for line in cancelled)
        assert process.poll() is None  # still there, waiting for the next line
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()


async def test_pick_buttons_can_be_pressed_and_pictures_never_overwrite_each_other(engine, history, tmp_path):
    photo = tmp_path / "p.png"
    photo.write_bytes(photo_bytes(fmt="PNG"))
    chat, output = console(engine, tmp_path)
    await chat.say(f"/open {photo} make it night")
    await chat.say("!pick 1")
    assert "! No grid to pick from" in output.getvalue()
    await chat.say("/sweep")
    await chat.say("/variations 2")
    assert "Buttons: !pick 1 … !pick 2" in output.getvalue()
    await chat.say("!pick 9")
    assert "! Pick a cell from 1 to 2, like !pick 1." in output.getvalue()
    await chat.say("!pick 2")
    assert "Picked." in output.getvalue() and chat.last_result.label == "1b"
    assert (tmp_path / "out" / "step-1b.png").read_bytes() == chat.last_result.image

    await chat.say("/history")
    await chat.say("add stars")
    await chat.say("/undo")
    await chat.say("/history")
    files = sorted(path.name for path in (tmp_path / "out").iterdir())
    grids = [name for name in files if name.startswith("grid-")]
    sheets = [name for name in files if name.startswith("history-")]
    assert len(grids) == 2 and len(sheets) == 2  # the sweep and the variations; two different contact sheets
    # Named by the labels /history shows: both grids were of step 1, both sheets made at step 1b.
    assert grids == ["grid-1-2.png", "grid-1.png"] and sheets == ["history-1b-2.png", "history-1b.png"]


def test_paths_that_are_no_photo_file_get_one_line_each_and_the_chat_goes_on(tmp_path):
    """In a real process: a pipe nobody writes to, an endless device, a folder, a symbolic link loop, a file over
    the upload limit (20 MB) and a path with a NUL byte (which ended the chat with a traceback) are each refused in
    one line, without waiting on the pipe (which froze the chat, deaf to /quit, Ctrl+C and SIGTERM) or reading on
    (/dev/zero took all memory, then the chat died); a photo after them is taken. The address space is capped so
    that a chat that reads on fails here instead of exhausting the machine."""
    import os
    import resource
    import subprocess
    import sys

    pipe, folder, loop, huge, photo = (tmp_path / name for name in ("pipe.jpg", "folder", "loop.jpg", "huge.jpg",
                                                                     "photo.png"))
    os.mkfifo(pipe)
    folder.mkdir()
    loop.symlink_to(loop)
    with huge.open("wb") as file:
        file.truncate(21 * 1024 * 1024)  # sparse: costs no disk
    photo.write_bytes(photo_bytes(fmt="PNG"))
    paths = [pipe, Path("/dev/zero"), folder, loop, huge]
    script = "".join(f"/ref {path}\n/open {path} make it night\n" for path in paths) + f"/ref {tmp_path}/a\0b.jpg\n" \
        + f"/open {photo}\n/history\n"

    def cap_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))

    done = subprocess.run([sys.executable, "-m", "tests.support.console_process", str(tmp_path / "out")],
                          input=script, capture_output=True, text=True, timeout=120, preexec_fn=cap_memory, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    refused = [line for line in done.stdout.splitlines() if line.startswith("! ")]
    assert refused == 2 * [f"! {pipe} is not a regular file (a device or a pipe); give the path of a photo file."] \
        + 2 * ["! /dev/zero is not a regular file (a device or a pipe); give the path of a photo file."] \
        + 2 * [f"! {folder} is a folder; give the path of a photo file."] \
        + 2 * [f"! Cannot read {loop}: Too many levels of symbolic links."] \
        + 2 * [f"! {huge} is over 20 MB, the most I accept (EDITBOT_MAX_UPLOAD_BYTES)."] \
        + ["! Cannot read that path: it contains a NUL character."]
    assert "Got your photo." in done.stdout and "0. original photo  ◀ you are here" in done.stdout
