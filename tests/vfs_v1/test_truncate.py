"""v1 files on the store: truncate, write, read and delete, through the VFS file object.

After every change, reads through the cache and the bytes straight in the store agree,
no chunk key is left past the end, and the cache never holds a chunk past the end or a
stale longer copy of the last chunk.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from sqlkv.store import Store
from sqlkv.vfs.v1.check import check, inspect
from sqlkv.vfs.v1.file import V1File
from sqlkv.vfs.v1.keys import CHUNK_SIZE, chunk_count
from sqlkv.vfs.v1.vfs import get_vfs

FileOpener = Callable[..., V1File]
C = CHUNK_SIZE
ORIGINAL = 10 * C + 123
BODY = random.Random(7).randbytes(ORIGINAL)
SIZES = {
    "zero": 0,
    "one_chunk": C,
    "exact_multiple": 3 * C,
    "inside_a_chunk": 2 * C + 777,
    "inside_the_first_chunk": 100,
    "inside_the_last_chunk": 10 * C + 5,
}


def _file_with_body(store: Store, open_file: FileOpener, *, warm: bool) -> V1File:
    f = open_file(store)
    f.xWrite(BODY, 0)
    if warm:
        assert f.xRead(ORIGINAL, 0) == BODY
    else:
        f.file.cache.clear()
    return f


def _assert_store_and_cache_hold(store: Store, f: V1File, content: bytes) -> None:
    size = len(content)
    assert f.xFileSize() == size
    assert f.xRead(size + 2 * C, 0) == content  # through the cache; short past the end
    report = inspect(store, "t")["db"]
    assert report.size == size
    assert report.content() == content
    assert report.orphans == []
    assert sorted(report.chunks) == list(range(chunk_count(size)))
    if size % C:
        assert len(report.chunks[size // C]) == size % C
    assert check(store, "t") == []
    count = chunk_count(size)
    assert all(i < count for i in f.file.cache.indexes())
    for i in f.file.cache.indexes():
        assert f.file.cache.peek(i) == content[i * C : (i + 1) * C]


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_truncate_leaves_store_and_cache_with_the_same_shorter_file(
    store: Store, open_file: FileOpener, size: int, warm: bool
) -> None:
    f = _file_with_body(store, open_file, warm=warm)
    f.xTruncate(size)
    _assert_store_and_cache_hold(store, f, BODY[:size])
    f.file.invalidate()  # cold reads straight from the store agree too
    _assert_store_and_cache_hold(store, f, BODY[:size])


@pytest.mark.parametrize("size", list(SIZES.values()), ids=list(SIZES))
def test_cache_holds_the_shortened_last_chunk_never_its_stale_copy(
    store: Store, open_file: FileOpener, size: int
) -> None:
    f = _file_with_body(store, open_file, warm=True)
    assert len(f.file.cache) == chunk_count(ORIGINAL)
    f.xTruncate(size)
    assert f.file.cache.indexes() == list(range(chunk_count(size)))
    if size % C:
        assert f.file.cache.peek(size // C) == BODY[size // C * C : size]


@pytest.mark.parametrize("size", [2 * C + 777, 3 * C, 0])
def test_growing_again_after_truncate_reads_zeros_not_old_bytes(
    store: Store, open_file: FileOpener, size: int
) -> None:
    f = _file_with_body(store, open_file, warm=True)
    f.xTruncate(size)
    f.xWrite(b"tail", ORIGINAL + 50)
    expected = BODY[:size] + bytes(ORIGINAL + 50 - size) + b"tail"
    _assert_store_and_cache_hold(store, f, expected)
    f.file.invalidate()
    _assert_store_and_cache_hold(store, f, expected)


def test_truncate_to_a_larger_size_zero_fills(store: Store, open_file: FileOpener) -> None:
    f = _file_with_body(store, open_file, warm=True)
    f.xTruncate(ORIGINAL + 3 * C)
    _assert_store_and_cache_hold(store, f, BODY + bytes(3 * C))


@pytest.mark.parametrize(
    ("size", "warm", "reads", "commits"),
    [
        (2 * C + 777, True, 0, 3),  # size, range delete, shortened last chunk
        (2 * C + 777, False, 1, 3),  # the last chunk is fetched in its transaction
        (3 * C, False, 0, 2),  # no partial last chunk to rewrite
    ],
)
def test_truncate_costs_one_transaction_per_step(
    store: Store, open_file: FileOpener, size: int, warm: bool, reads: int, commits: int
) -> None:
    f = _file_with_body(store, open_file, warm=warm)
    before = f.mount.stats.snapshot()
    f.xTruncate(size)
    spent = f.mount.stats - before
    assert (spent.store_reads, spent.store_commits) == (reads, commits)


def test_write_is_one_transaction_and_fetches_only_uncached_partial_chunks(
    store: Store, open_file: FileOpener
) -> None:
    f = _file_with_body(store, open_file, warm=False)
    stats = f.mount.stats
    before = stats.snapshot()
    f.xWrite(b"\xaa" * C, 2 * C)  # whole chunk: no fetch
    f.xWrite(b"\xbb" * 10, 5 * C + 7)  # part of an uncached chunk: one fetch
    f.xWrite(b"\xcc" * 10, 5 * C + 70)  # now cached: no fetch
    spent = stats - before
    assert (spent.store_reads, spent.store_commits) == (1, 3)
    expected = bytearray(BODY)
    expected[2 * C : 3 * C] = b"\xaa" * C
    expected[5 * C + 7 : 5 * C + 17] = b"\xbb" * 10
    expected[5 * C + 70 : 5 * C + 80] = b"\xcc" * 10
    _assert_store_and_cache_hold(store, f, bytes(expected))


def test_write_across_chunks_and_past_the_end(store: Store, open_file: FileOpener) -> None:
    f = _file_with_body(store, open_file, warm=False)
    f.xWrite(b"\x11" * (3 * C), ORIGINAL - C)  # straddles the old last chunk and grows
    _assert_store_and_cache_hold(store, f, BODY[: ORIGINAL - C] + b"\x11" * (3 * C))


def test_cache_is_bounded(store: Store, open_file: FileOpener) -> None:
    f = open_file(store, cache_chunks=4)
    f.xWrite(BODY, 0)
    assert f.xRead(ORIGINAL, 0) == BODY
    assert len(f.file.cache) == 4


def test_delete_removes_metadata_and_every_chunk(store: Store, open_file: FileOpener) -> None:
    f = _file_with_body(store, open_file, warm=True)
    vfs = get_vfs()
    assert vfs.xAccess(f.mount.path, 0)
    before = f.mount.stats.snapshot()
    vfs.xDelete(f.mount.path, False)
    assert (f.mount.stats - before).store_commits == 2
    assert not vfs.xAccess(f.mount.path, 0)
    assert f.xFileSize() == 0 and f.xRead(100, 0) == b""
    assert inspect(store, "t") == {}


def test_a_new_file_exists_once_written(store: Store, open_file: FileOpener) -> None:
    f = open_file(store, role="journal")
    path = f.mount.path + "-journal"
    assert not get_vfs().xAccess(path, 0)
    f.xWrite(b"header", 0)
    assert get_vfs().xAccess(path, 0)
    assert inspect(store, "t")["journal"].content() == b"header"
