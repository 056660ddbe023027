"""Reading a photo from a path a person typed (`editbot edit`, the terminal chat's PHOTO, /open and /ref), with the
upload limit the chats apply: a huge file, or one that never ends (/dev/zero), is refused after reading at most the
limit, and every failure is one line (UserError)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from core.errors import UserError


def read_photo_file(path: Path, limit: int, *, files_only: bool) -> bytes:
    """The bytes at `path`, refused past `limit` without reading further.

    files_only: accept only a regular file, for the terminal chat, whose reading would block it (and its /quit,
    Ctrl+C and SIGTERM) on a pipe nobody writes to; `editbot edit` reads pipes too (`editbot edit <(…)`).
    """
    try:
        # Without O_NONBLOCK, opening a pipe waits for a writer: a chat must see the pipe first and refuse it.
        descriptor = os.open(path, os.O_RDONLY | (os.O_NONBLOCK if files_only else 0))
    except OSError as error:
        raise UserError(f"Cannot read {path}: {error.strerror or error}.") from None
    except ValueError:  # a NUL byte, which a piped script or a terminal can type but no path holds
        raise UserError("Cannot read that path: it contains a NUL character.") from None
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise UserError(f"{path} is a folder; give the path of a photo file.")
        if files_only and not stat.S_ISREG(mode):
            raise UserError(f"{path} is not a regular file (a device or a pipe); give the path of a photo file.")
        with open(descriptor, "rb", closefd=False) as file:
            data = file.read(limit + 1)
    except OSError as error:
        raise UserError(f"Cannot read {path}: {error.strerror or error}.") from None
    finally:
        os.close(descriptor)
    if len(data) > limit:
        raise UserError(f"{path} is over {limit / 1024 / 1024:g} MB, the most I accept (EDITBOT_MAX_UPLOAD_BYTES).")
    return data
