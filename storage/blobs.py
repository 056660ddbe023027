"""ImageStore on the file system: content-addressed image files (lossless JPEG XL, uploads' own JPEGs without
metadata, WebP and PNG for older nodes; every file keeps the .png suffix it always had, so existing stores need no
renaming), durable before put() returns.

A digest abcdef... lives at ROOT/ab/cd/abcdef....png, so no folder grows beyond a few thousand entries. put() writes a
temporary file in the target folder, fsyncs it, renames it into place (atomic) and fsyncs the folder, so after a crash
a name either holds its complete bytes or does not exist.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
from pathlib import Path

_DIGEST = re.compile(r"[0-9a-f]{64}")
_SUFFIX = ".png"
_TEMP_PREFIX = ".tmp-"


class FileImageStore:
    """Images under `root`. sweep() spares anything younger than grace_seconds, so an image put just before its
    node is committed is never taken for garbage."""

    def __init__(self, root: Path, grace_seconds: float = 3600.0) -> None:
        self.root = Path(root)
        self.grace_seconds = grace_seconds
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, digest: str) -> Path:
        """Where the file for a digest lives (whether or not it exists); KeyError for anything not a SHA-256 hex
        digest, so no caller-supplied string can reach outside the store."""
        if not _DIGEST.fullmatch(digest):
            raise KeyError(digest)
        return self.root / digest[:2] / digest[2:4] / f"{digest}{_SUFFIX}"

    def put(self, data: bytes) -> str:
        """Store the bytes durably and return their SHA-256 hex digest. Storing existing content writes nothing
        but refreshes the file's time, so a sweep does not remove an image that is about to be referenced again."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path_for(digest)
        if target.exists():
            os.utime(target)
            return digest
        self._make_folders(target.parent)
        descriptor, temp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, dir=target.parent)
        try:
            with os.fdopen(descriptor, "wb") as temp:
                temp.write(data)
                temp.flush()
                os.fsync(temp.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_folder(target.parent)
        return digest

    def get(self, digest: str) -> bytes:
        """The bytes for a digest; KeyError if unknown. The content is trusted, not re-hashed."""
        try:
            return self.path_for(digest).read_bytes()
        except FileNotFoundError:
            raise KeyError(digest) from None

    def exists(self, digest: str) -> bool:
        try:
            return self.path_for(digest).is_file()
        except KeyError:
            return False

    def sweep(self, keep: set[str]) -> int:
        """Delete images whose digest is not in keep, and leftover temporary files from interrupted puts, when
        older than the grace period. Returns how many files were removed."""
        cutoff = time.time() - self.grace_seconds
        removed = 0
        for path in self.root.glob("??/??/*"):
            is_temp = path.name.startswith(_TEMP_PREFIX)
            is_unreferenced = path.suffix == _SUFFIX and path.stem not in keep
            if not (is_temp or is_unreferenced):
                continue
            try:
                if path.stat().st_mtime > cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue  # removed by a concurrent sweep
            removed += 1
        return removed

    def _make_folders(self, folder: Path) -> None:
        """Create the fan-out folders, fsyncing each new entry's parent so the folders survive a crash too."""
        missing = []
        while not folder.exists():
            missing.append(folder)
            folder = folder.parent
        for new_folder in reversed(missing):
            new_folder.mkdir(exist_ok=True)
            _fsync_folder(new_folder.parent)


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
