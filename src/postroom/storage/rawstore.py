"""Raw messages exactly as received, as content-addressed files under `<var_dir>/mail`.

A message is written to a temporary file in the target directory, flushed to disk, and renamed to
`<sha256[:2]>/<sha256[2:4]>/<sha256>.eml`. The rename is atomic (POSIX), so a reader never sees a
half-written file and a crash leaves at most an orphaned temporary file, never a torn message.
Identical bytes share one file, which makes re-fetching after a crash free.

Writing takes the message as bytes or as an iterable of chunks and hashes while writing; it never
joins or copies the message, so a 25 MB message costs one buffer, not several. A batch can defer
the flush to disk and make all its files durable with one `sync()` before its rows are committed.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import secrets
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, cast

from postroom.errors import NotFound

_CHUNK = 1024 * 1024


def _load_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return cast(Callable[[int], int], libc.syncfs)
    except (OSError, AttributeError):
        return None


_syncfs = _load_syncfs()
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
        self._root_ready = False
        self._dirs: set[Path] = set()

    def path(self, sha256: str) -> Path:
        """The file for `sha256` (whether or not it exists). Refuses anything but 64 hex digits."""
        if len(sha256) != 64 or not set(sha256) <= _HEX:
            raise NotFound("no such raw message")
        return self.root / sha256[:2] / sha256[2:4] / f"{sha256}.eml"

    def put(self, data: bytes | Iterable[bytes], *, deferred: bool = False) -> RawRef:
        """Store `data` (bytes, or chunks of bytes) and return its reference.

        `deferred=True` skips the per-file fsync: the caller then calls `sync()` once for a
        whole batch before recording it (one flush instead of one per message).
        """
        if isinstance(data, bytes | bytearray):
            # Already in memory: hash first, so a message stored before costs no write at all.
            ref = RawRef(hashlib.sha256(data).hexdigest(), len(data))
            if self.path(ref.sha256).exists():
                return ref
            view = memoryview(data)
            chunks: Iterable[bytes | memoryview] = (
                view[i : i + _CHUNK] for i in range(0, len(view), _CHUNK)
            )
        else:
            chunks = data
        if not self._root_ready:
            self.root.mkdir(parents=True, exist_ok=True)
            self._root_ready = True
        digest = hashlib.sha256()
        size = 0
        tmp_name = str(self.root / f".incoming-{secrets.token_hex(8)}")
        try:
            with open(tmp_name, "xb") as tmp:
                for chunk in chunks:
                    digest.update(chunk)
                    tmp.write(chunk)
                    size += len(chunk)
                tmp.flush()
                if self.durable and not deferred:
                    os.fsync(tmp.fileno())
            target = self.path(digest.hexdigest())
            if target.exists():
                os.unlink(tmp_name)
            else:
                if target.parent not in self._dirs:  # at most 65,536 of them: cache them
                    target.parent.mkdir(parents=True, exist_ok=True)
                    self._dirs.add(target.parent)
                os.replace(tmp_name, target)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise
        return RawRef(digest.hexdigest(), size)

    def sync(self, refs: Iterable[RawRef]) -> None:
        """Make the files of `refs` and their directory entries durable.

        On Linux one syncfs(2) flushes the whole file system the store lives on, which costs
        about what a single fsync does; elsewhere each file and directory is fsynced.
        """
        refs = list(refs)
        if not self.durable or not refs:
            return
        if _syncfs is not None:
            fd = os.open(self.root, os.O_RDONLY)
            try:
                if _syncfs(fd) == 0:
                    return
            finally:
                os.close(fd)
        for ref in refs:
            for target in (self.path(ref.sha256), self.path(ref.sha256).parent):
                fd = os.open(target, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)

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
