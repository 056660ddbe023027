"""A terminal chat in its own process, over in-memory storage and a slow fake editor, for tests that need real
standard input and real signals: `python -m tests.support.console_process OUT_DIR`.

Prints "[edit started]" on standard error when an edit starts, so a test knows when to cancel it.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

from bot.console_adapter import run_console
from core.conversation.engine import ConversationEngine
from core.queue import EditQueue
from core.runner import EditRunner
from storage.memory import InMemoryHistoryRepository, InMemoryImageStore
from tests.support.fakes import FakeEditor


def main() -> None:
    editor = FakeEditor(step_seconds=0.25)  # 20 steps: five seconds, plenty of time to cancel
    history, images = InMemoryHistoryRepository(), InMemoryImageStore()
    engine = ConversationEngine(history, images, EditQueue(EditRunner(editor, history, images)))

    def announce() -> None:
        while True:
            editor.started.wait()
            editor.started.clear()
            print("[edit started]", file=sys.stderr, flush=True)

    threading.Thread(target=announce, daemon=True).start()
    asyncio.run(run_console(engine, Path(sys.argv[1])))


if __name__ == "__main__":
    main()
