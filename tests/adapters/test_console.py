"""The terminal chat: lines in, printed text and result files out, over the same engine."""

from __future__ import annotations

import io

from bot.console_adapter import ConsoleChat, run_console
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
