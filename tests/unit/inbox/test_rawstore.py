"""The content-addressed raw store: exact bytes, atomic, deduplicated, streamed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from postroom.errors import NotFound
from postroom.storage.rawstore import RawStore


def test_put_read_and_chunks(tmp_path: Path) -> None:
    store = RawStore(tmp_path / "mail")
    data = b"Subject: x\r\n\r\n" + bytes(range(256)) * 5000
    ref = store.put(data)
    assert ref.sha256 == hashlib.sha256(data).hexdigest()
    assert ref.size == len(data)
    assert store.read(ref.sha256) == data
    assert b"".join(store.iter_chunks(ref.sha256, 1000)) == data
    path = store.path(ref.sha256)
    assert path.parent.parent.name == ref.sha256[:2]
    assert path.parent.name == ref.sha256[2:4]


def test_same_bytes_share_one_file_and_chunks_equal_bytes(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    first = store.put(b"abc")
    again = store.put(iter([b"a", b"bc"]))
    assert first == again
    assert [p.name for p in tmp_path.rglob("*.eml")] == [f"{first.sha256}.eml"]
    assert not list(tmp_path.glob(".incoming-*"))  # no temporary file left behind


def test_deferred_then_sync(tmp_path: Path) -> None:
    store = RawStore(tmp_path)
    refs = [store.put(f"m{i}".encode(), deferred=True) for i in range(3)]
    store.sync(refs)
    assert [store.read(r.sha256) for r in refs] == [b"m0", b"m1", b"m2"]


def test_failed_stream_leaves_nothing(tmp_path: Path) -> None:
    store = RawStore(tmp_path)

    def broken():  # type: ignore[no-untyped-def]
        yield b"partial"
        raise OSError("connection lost")

    with pytest.raises(OSError, match="connection lost"):
        store.put(broken())
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("bad", ["../../etc/passwd", "A" * 64, "ab", ""])
def test_refuses_anything_but_a_hash(tmp_path: Path, bad: str) -> None:
    with pytest.raises(NotFound):
        RawStore(tmp_path).open(bad)


def test_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="missing"):
        RawStore(tmp_path).iter_chunks("0" * 64)
