"""The terminal chat: a third adapter over the same engine, for local use, demos and scripts.

Each line read from standard input is a message: an instruction, a command such as /undo, `/open PATH [instruction]`
to send a photo, `/ref PATH` to add a reference picture to the next edit (a photo captioned /ref elsewhere), or
`!action` to press a button under the last result (e.g. `!stronger`, `!pick 3` under a grid).
Results are written as PNG files named after the labels /history and /goto use (`step-2b.png`; a picture that
would replace a different one gets `-2`, `-3`… instead), and their paths are printed. Input is read while an edit
runs, so `/cancel` works then; the first Ctrl+C cancels a running edit, the next one quits. History persists in the
same database as the chat bots'.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from bot.local_files import read_photo_file
from core.commands import split_command
from core.config import LimitSettings
from core.conversation.engine import ConversationEngine
from core.domain import ChatKey
from core.errors import UserError
from core.messages import ImageReply, Incoming, Press, ProgressReply, Reply, TextReply

SETTLE_SECONDS = 2.0
"""On quitting, how long an answer still being handled gets to print how its edit ends once the engine closed."""
HELP = ("Type an instruction, a /command (/help lists them), /open PATH [instruction], /ref PATH (a reference "
        "picture for the next edit), !button to press a button (!undo, !pick 3…), or /quit. /cancel or Ctrl+C "
        "stops a running edit; Ctrl+C again quits.")
TERMINAL_HELP = ("\nIn this terminal:\n"
                 "/open PATH [instruction] — Send the photo at PATH, edited by the instruction when you give one\n"
                 "/ref PATH — Give your next edit the picture at PATH as a reference picture\n"
                 "!button — Press a button under the last result (!undo, !stronger…), !pick N a cell of the last grid\n"
                 "/quit — Leave (so does /exit, or Ctrl+C while nothing runs)")
UPLOAD_LIMIT = LimitSettings.model_fields["max_upload_bytes"].default
"""The most a photo file may take unless told otherwise (EDITBOT_MAX_UPLOAD_BYTES, as for the chats' uploads)."""


class ConsoleChat:
    def __init__(self, engine: ConversationEngine, out_dir: Path, *, output: TextIO = sys.stdout,
                 key: ChatKey | None = None, upload_limit: int = UPLOAD_LIMIT) -> None:
        self.engine = engine
        self.upload_limit = upload_limit
        self.out_dir = out_dir
        self.output = output
        self.key = key or ChatKey("console", "terminal", getpass.getuser())
        self.last_result: ImageReply | None = None
        self.last_grid: ImageReply | None = None
        self.working = False  # an edit (or any answer) is under way
        self.answering: asyncio.Future | None = None  # the answer in hand, left to finish when the person quits

    async def say(self, line: str) -> None:
        """Turn one typed line into an engine call."""
        line = line.strip()
        if not line:
            return
        if line.startswith("!"):
            await self._press(line[1:].strip().lower())
        elif line.split(" ", 1)[0] == "/open":
            await self._open(line[len("/open"):].strip())
        elif line.split(" ", 1)[0] == "/ref" and line[len("/ref"):].strip() not in ("", "clear"):
            await self._reference(line[len("/ref"):].strip())
        else:
            await self.engine.handle(Incoming(self.key, text=line), self.render)
            if (split_command(line) or ("",))[0] == "help":  # the engine lists every platform's commands
                self._print(TERMINAL_HELP)

    async def open_photo(self, path: Path, instruction: str | None = None) -> None:
        await self._send_file(path, instruction)

    async def _open(self, rest: str) -> None:
        if not rest:
            self._print("! Usage: /open PATH [instruction]")
            return
        # The path may contain spaces: take the longest prefix that names something (a folder or a broken link
        # too, so that the line says what is wrong with it).
        words = rest.split(" ")
        for cut in range(len(words), 0, -1):
            candidate = Path(" ".join(words[:cut])).expanduser()
            if os.path.lexists(candidate):
                await self.open_photo(candidate, " ".join(words[cut:]) or None)
                return
        self._print(f"! No such file: {words[0]}")

    async def _reference(self, path: str) -> None:
        """`/ref PATH`: the terminal's photo captioned /ref, a reference picture for the next edit."""
        await self._send_file(Path(path).expanduser(), "/ref")

    async def _send_file(self, path: Path, text: str | None) -> None:
        """The file at `path` to the engine as a photo with `text`; a file that is not there, not a file, or over the
        upload limit is one line, and reading never waits on a pipe or runs on past the limit (/dev/zero)."""
        try:
            data = read_photo_file(path, self.upload_limit, files_only=True)
        except UserError as error:
            self._print(f"! {error}")
            return
        await self.engine.handle(Incoming(self.key, text=text, image=data), self.render)

    async def _press(self, typed: str) -> None:
        action, _, number = typed.partition(" ")
        if action == "pick":
            await self._pick(number.strip())
            return
        if self.last_result is None:
            self._print("! No result yet to press a button on.")
            return
        buttons = {button.press.action: button.press for button in self.last_result.buttons}
        if action not in buttons:
            self._print(f"! Buttons here: {', '.join('!' + name for name in buttons) or 'none'}.")
            return
        await self.engine.handle(Incoming(self.key, action=Press(action, buttons[action].node_id)), self.render)

    async def _pick(self, number: str) -> None:
        """`!pick N`: the N-th Pick button under the last grid."""
        cells = [button.press for button in self.last_grid.buttons] if self.last_grid else []
        if not cells:
            self._print("! No grid to pick from: use /sweep or /variations first.")
        elif not number.isascii() or not number.isdigit() or not 1 <= int(number) <= len(cells):
            self._print(f"! Pick a cell from 1 to {len(cells)}, like !pick 1.")
        else:
            await self.engine.handle(Incoming(self.key, action=cells[int(number) - 1]), self.render)

    async def render(self, reply: Reply) -> None:
        match reply:
            case TextReply(text=text, error=True):
                self._print(f"! {text}")
            case TextReply(text=text):
                self._print(text)
            case ProgressReply(text=text, notice=notice):
                if self.output.isatty():
                    self.output.write(f"\r{text:<40}")
                    self.output.flush()
                elif notice:  # a script or a log reads lines: counters would flood it, a hold-up must not be silent
                    self._print(text)
            case ImageReply():
                path = self._write(reply)
                if reply.kind == "node":
                    self.last_result = reply
                    buttons = " ".join(f"!{button.press.action}" for button in reply.buttons)
                elif reply.kind == "grid":
                    self.last_grid = reply
                    buttons = f"!pick 1 … !pick {len(reply.buttons)}"
                else:
                    buttons = ""
                self._print(f"{path}\n{reply.caption}" + (f"\nButtons: {buttons}" if buttons else ""))

    def _write(self, reply: ImageReply) -> Path:
        """Save a picture under the label people see (`step-2b.png`, `tree-2b.png`), never over a different one."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        name = reply.label or str(reply.node_id)
        stem = f"step-{name}" if reply.kind == "node" else f"{reply.kind}-{name}"
        path, copy = self.out_dir / f"{stem}.png", 1
        while path.exists() and path.read_bytes() != reply.image:
            copy += 1
            path = self.out_dir / f"{stem}-{copy}.png"
        path.write_bytes(reply.image)
        return path

    def _print(self, text: str) -> None:
        if self.output.isatty():
            self.output.write("\r")
        print(text, file=self.output, flush=True)


async def run_console(engine: ConversationEngine, out_dir: Path, *, image: Path | None = None,
                      instruction: str | None = None, input: TextIO = sys.stdin, output: TextIO = sys.stdout,
                      upload_limit: int = UPLOAD_LIMIT) -> None:
    """Read lines until end of input, /quit or a Ctrl+C while nothing runs. Works the same typed by a person or piped
    by a script: lines are answered in order, except /cancel, which is answered at once while an edit runs.

    SIGTERM stops the chat the way the bots stop: no new edit starts, the running one may finish within
    EDITBOT_SHUTDOWN_GRACE_SECONDS (the engine's close), and an edit it interrupts is offered again at the next
    start."""
    console = ConsoleChat(engine, out_dir, output=output, upload_limit=upload_limit)
    await engine.start(send_to=lambda key: console.render)  # one person: re-attached results are theirs
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()
    stop = asyncio.Event()
    interrupted = False

    def arrived(line: str | None) -> None:
        if console.working and line is not None and line.strip() == "/cancel":
            loop.create_task(console.say(line))
        else:
            lines.put_nowait(line)

    def interrupt() -> None:
        nonlocal interrupted
        if console.working and not interrupted:
            interrupted = True
            console._print("Cancelling the edit (Ctrl+C again quits).")
            loop.create_task(console.say("/cancel"))
        else:
            stop.set()

    closing: list[asyncio.Task] = []

    def terminate() -> None:
        if not closing:
            # Read nothing more, not even lines a script already piped in (they wait in `lines`); the answer in
            # hand goes on while the engine closes within its grace time, and prints how it ended.
            stop.set()
            closing.append(loop.create_task(engine.close()))

    loop.add_signal_handler(signal.SIGTERM, terminate)
    threading.Thread(target=_read_lines, args=(input, loop, arrived), daemon=True).start()
    handles_interrupt = _on_interrupt(loop, interrupt)
    try:
        interactive = input.isatty()
        if interactive:
            print(HELP, file=output)
        if image is not None:
            await _answer(console, console.open_photo(image, instruction), stop)
        while not stop.is_set():
            if interactive:
                output.write("> ")
                output.flush()
            line = await _first(lines.get(), stop)
            if line is None or line.strip() in ("/quit", "/exit"):
                break
            interrupted = False
            await _answer(console, console.say(line), stop)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        if handles_interrupt:
            loop.remove_signal_handler(signal.SIGINT)
        await (closing[0] if closing else engine.close())
        if console.answering is not None and not console.answering.done():  # quit mid-edit: it hears how its edit
            await asyncio.wait({console.answering}, timeout=SETTLE_SECONDS)  # ends (distributed: it will arrive
            console.answering.cancel()  # when I'm back) and prints that


async def _answer(console: ConsoleChat, answer, stop: asyncio.Event) -> None:
    """Answer a line; when the person quits meanwhile, the answer is left running (run_console lets it print how
    its edit ends once the engine has closed)."""
    console.working = True
    console.answering = asyncio.ensure_future(answer)
    try:
        await _first(console.answering, stop, cancel=False)
    finally:
        console.working = False


async def _first(work, stop: asyncio.Event, *, cancel: bool = True):
    """work's result, or None as soon as stop is set (work is then cancelled, unless cancel is False)."""
    task, stopped = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        if cancel:
            task.cancel()
        return None
    return task.result()


def _read_lines(input: TextIO, loop: asyncio.AbstractEventLoop, arrived) -> None:
    """The reading thread: every line to the loop as it is typed, then None at the end of input. A daemon, so a
    blocked read never keeps the program from quitting."""
    try:
        while line := input.readline():
            loop.call_soon_threadsafe(arrived, line)
        loop.call_soon_threadsafe(arrived, None)
    except (RuntimeError, ValueError, OSError):  # the loop closed (we quit) or the input went away
        return


def _on_interrupt(loop: asyncio.AbstractEventLoop, handler) -> bool:
    """Route Ctrl+C to handler where the platform lets us (the main thread of a Unix process)."""
    try:
        loop.add_signal_handler(signal.SIGINT, handler)
    except (NotImplementedError, RuntimeError, ValueError):
        return False
    return True
