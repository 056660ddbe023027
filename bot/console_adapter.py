"""The terminal chat: a third adapter over the same engine, for local use, demos and scripts.

Each line read from standard input is a message: an instruction, a command such as /undo, `/open PATH [instruction]`
to send a photo, or `!action` to press a button under the last result (e.g. `!stronger`). Results are written as PNG
files whose paths are printed. History persists in the same database as the chat bots'.
"""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from core.domain import ChatKey
from core.conversation.engine import ConversationEngine
from core.messages import ImageReply, Incoming, Press, ProgressReply, Reply, TextReply

SETTLE_SECONDS = 2.0
"""At Ctrl-C, how long the line being handled gets to print how its edit ends once the engine closed."""
HELP = "Type an instruction, a /command (/help lists them), /open PATH [instruction], !action for a button, or /quit."


class ConsoleChat:
    def __init__(self, engine: ConversationEngine, out_dir: Path, *, output: TextIO = sys.stdout,
                 key: ChatKey | None = None) -> None:
        self.engine = engine
        self.out_dir = out_dir
        self.output = output
        self.key = key or ChatKey("console", "terminal", getpass.getuser())
        self.last_result: ImageReply | None = None

    async def say(self, line: str) -> None:
        """Turn one typed line into an engine call."""
        line = line.strip()
        if not line:
            return
        if line.startswith("!"):
            await self._press(line[1:].strip().lower())
        elif line.split(" ", 1)[0] == "/open":
            await self._open(line[len("/open"):].strip())
        else:
            await self.engine.handle(Incoming(self.key, text=line), self.render)

    async def open_photo(self, path: Path, instruction: str | None = None) -> None:
        try:
            data = path.read_bytes()
        except OSError as error:
            self._print(f"! Cannot read {path}: {error.strerror}.")
            return
        await self.engine.handle(Incoming(self.key, text=instruction, image=data), self.render)

    async def _open(self, rest: str) -> None:
        if not rest:
            self._print("! Usage: /open PATH [instruction]")
            return
        # The path may contain spaces: take the longest prefix that names a file.
        words = rest.split(" ")
        for cut in range(len(words), 0, -1):
            candidate = Path(" ".join(words[:cut])).expanduser()
            if candidate.is_file():
                await self.open_photo(candidate, " ".join(words[cut:]) or None)
                return
        self._print(f"! No such file: {words[0]}")

    async def _press(self, action: str) -> None:
        if self.last_result is None:
            self._print("! No result yet to press a button on.")
            return
        buttons = {button.press.action: button.press for button in self.last_result.buttons}
        if action not in buttons:
            self._print(f"! Buttons here: {', '.join('!' + name for name in buttons) or 'none'}.")
            return
        await self.engine.handle(Incoming(self.key, action=Press(action, buttons[action].node_id)), self.render)

    async def render(self, reply: Reply) -> None:
        match reply:
            case TextReply(text=text, error=True):
                self._print(f"! {text}")
            case TextReply(text=text):
                self._print(text)
            case ProgressReply(text=text):
                if self.output.isatty():
                    self.output.write(f"\r{text:<40}")
                    self.output.flush()
            case ImageReply():
                self.out_dir.mkdir(parents=True, exist_ok=True)
                path = self.out_dir / f"{reply.kind}-{reply.node_id}.png"
                path.write_bytes(reply.image)
                if reply.kind == "node":
                    self.last_result = reply
                buttons = " ".join(f"!{button.press.action}" for button in reply.buttons if reply.kind == "node")
                self._print(f"{path}\n{reply.caption}" + (f"\nButtons: {buttons}" if buttons else ""))

    def _print(self, text: str) -> None:
        if self.output.isatty():
            self.output.write("\r")
        print(text, file=self.output, flush=True)


async def run_console(engine: ConversationEngine, out_dir: Path, *, image: Path | None = None,
                      instruction: str | None = None, input: TextIO = sys.stdin, output: TextIO = sys.stdout) -> None:
    """Read lines until end of input or /quit. Works the same typed by a person or piped by a script.

    SIGTERM stops the chat the way the bots stop: no new edit starts, the running one may finish within
    EDITBOT_SHUTDOWN_GRACE_SECONDS, and an edit it interrupts is offered again at the next start."""
    console = ConsoleChat(engine, out_dir, output=output)
    await engine.start(send_to=lambda key: console.render)  # one person: re-attached results are theirs
    saying: asyncio.Task | None = None
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    closing = asyncio.create_task(_close_when(stopping, engine))
    lines = _read_lines(input, loop)
    try:
        interactive = input.isatty()
        if interactive:
            print(HELP, file=output)
        if image is not None:
            await console.open_photo(image, instruction)
        while not stopping.is_set():
            if interactive:
                output.write("> ")
                output.flush()
            next_line = asyncio.ensure_future(lines.get())
            await asyncio.wait([next_line, closing], return_when=asyncio.FIRST_COMPLETED)
            if not next_line.done():
                next_line.cancel()
                break
            line = next_line.result()
            if not line or line.strip() in ("/quit", "/exit"):
                break
            # Its own task, so Ctrl-C (which cancels this one) lets it hear how its edit ends when the engine closes.
            saying = asyncio.create_task(console.say(line))
            await asyncio.shield(saying)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        stopping.set()
        await closing
        if saying is not None and not saying.done():  # an edit in flight hears how it ends (distributed: it
            await asyncio.wait({saying}, timeout=SETTLE_SECONDS)  # will arrive when I'm back) and prints that
            saying.cancel()


async def _close_when(stopping: asyncio.Event, engine: ConversationEngine) -> None:
    await stopping.wait()
    await engine.close()


def _read_lines(input: TextIO, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str]:
    """Lines of input as they come ("" at the end), read by a daemon thread: a process stopping never waits for
    a line that may never be typed."""
    lines: asyncio.Queue[str] = asyncio.Queue()

    def read() -> None:
        while True:
            line = input.readline()
            try:
                loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the chat has ended
                return
            if not line:
                return

    threading.Thread(target=read, name="console-input", daemon=True).start()
    return lines
