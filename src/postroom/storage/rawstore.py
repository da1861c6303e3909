"""Raw messages exactly as received, as content-addressed files under `<var_dir>/mail`.

A message is written to a temporary file in the target directory, flushed to disk, and renamed to
`<sha256[:2]>/<sha256[2:4]>/<sha256>.eml`. The rename is atomic (POSIX), so a reader never sees a
half-written file and a crash leaves at most an orphaned temporary file, never a torn message.
Identical bytes share one file, which makes re-fetching after a crash free.

Writing takes the message as bytes or as an iterable of chunks and hashes while writing; it never
joins or copies the message, so a 25 MB message costs one buffer, not several.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from postroom.errors import NotFound

_CHUNK = 1024 * 1024
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class RawRef:
    """Where a raw message lives: its SHA-256 (hex) and size in bytes."""

    sha256: str
    size: int


class RawStore:
    """Content-addressed file store for raw messages. Safe to share between threads and processes.

    `durable=True` fsyncs each file before renaming, so a row that points at a file survives a
    power cut; tests and benchmarks of other parts may turn it off.
    """

    def __init__(self, root: Path, *, durable: bool = True) -> None:
        self.root = root
        self.durable = durable

    def path(self, sha256: str) -> Path:
        """The file for `sha256` (whether or not it exists). Refuses anything but 64 hex digits."""
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise NotFound("no such raw message")
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.eml"

    def put(self, data: bytes | Iterable[bytes]) -> RawRef:
        """Store `data` (bytes, or chunks of bytes) and return its reference."""
        chunks: Iterable[bytes | memoryview]
        if isinstance(data, bytes | bytearray):
            view = memoryview(data)
            chunks = (view[i : i + _CHUNK] for i in range(0, len(view), _CHUNK))
        else:
            chunks = data
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(prefix=".incoming-", dir=self.root)
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    digest.update(chunk)
                    tmp.write(chunk)
                    size += len(chunk)
                tmp.flush()
                if self.durable:
                    os.fsync(tmp.fileno())
            target = self.path(digest.hexdigest())
            if target.exists():
                os.unlink(tmp_name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_name, target)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return RawRef(digest.hexdigest(), size)

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def open(self, sha256: str) -> BinaryIO:
        """The stored message for reading; NotFound when it is missing."""
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise NotFound("the raw message file is missing") from None

    def read(self, sha256: str) -> bytes:
        with self.open(sha256) as f:
            return f.read()

    def iter_chunks(self, sha256: str, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
        """The stored message in chunks (for streaming downloads); NotFound is raised here, at
        the call, not on first iteration."""
        return _chunks(self.open(sha256), chunk_size)


def _chunks(f: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    with f:
        while chunk := f.read(chunk_size):
            yield chunk
