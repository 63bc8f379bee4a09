"""One file kept as a metadata key plus 4 KiB chunk keys, written straight to the store.

Every mutation is ordered so that a crash between two store transactions leaves the
invariant of ``keys.py`` intact (no metadata pointing at a missing chunk):

- **write**: one transaction sets every touched chunk and, when it changed, the size. A
  write past the end also rewrites the gap (zero-filled), so a file never has holes in
  the store and stale chunks past an old end are never read back as data.
- **truncate** (shrink), three transactions: the new size; one range delete of every
  chunk past the end; the shortened last chunk (skipped when the size is a multiple of
  the chunk size). A crash after the first leaves chunks past the end (never read) and
  a last chunk longer than needed (read only up to the size).
- **delete**, two transactions: the metadata key, then the chunk range. A crash between
  leaves orphaned chunks (wasted space, removed by the file's next delete).

The process owns the database (v1), so the size and the read cache are trusted between
calls. Any failure of a store call forgets both, and they are reloaded from the store.
Reads past the end return fewer bytes (SQLite's short read, which it requires); a chunk
missing below the size means the store was damaged and raises SQLITE_CORRUPT.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from sqlkv.store import Store, Transaction
from sqlkv.vfs.v1.cache import ChunkCache
from sqlkv.vfs.v1.codes import corrupt
from sqlkv.vfs.v1.keys import CHUNK_SIZE, FileKeys, chunk_count, decode_size, encode_size
from sqlkv.vfs.v1.stats import V1Stats

C = CHUNK_SIZE
T = TypeVar("T")


class ChunkedFile:
    """One SQLite file (``keys.role``) of one database. Thread-safe."""

    def __init__(self, store: Store, keys: FileKeys, cache_chunks: int) -> None:
        self.store = store
        self.keys = keys
        self.cache = ChunkCache(cache_chunks)
        self._size: int | None = None  # None until loaded from the store
        self._exists = False
        self._mutex = threading.RLock()

    # ------------------------------------------------------------------ state

    def exists(self, stats: V1Stats) -> bool:
        """Whether the metadata key exists."""
        with self._mutex:
            self._load(stats)
            return self._exists

    def size(self, stats: V1Stats) -> int:
        with self._mutex:
            return self._load(stats)

    def invalidate(self) -> None:
        """Forget the size and every cached chunk; the next call reloads from the store."""
        with self._mutex:
            self._size = None
            self.cache.clear()

    def _load(self, stats: V1Stats) -> int:
        if self._size is None:

            def fetch(tr: Transaction) -> bytes | None:
                stats.store_reads += 1
                return tr.get(self.keys.meta, snapshot=True, point="read_meta")

            value = self._transact(fetch, "v1.load")
            if value is None:
                self._exists, self._size = False, 0
            else:
                try:
                    self._size = decode_size(value)
                except ValueError as exc:
                    raise corrupt(f"v1 file {self._where()}: {exc}") from exc
                self._exists = True
        return self._size

    # ------------------------------------------------------------------ read

    def read(self, amount: int, offset: int, stats: V1Stats) -> bytes:
        """``amount`` bytes at ``offset``, fewer only past the end of the file."""
        with self._mutex:
            size = self._load(stats)
            end = min(offset + amount, size)
            if end <= offset:
                return b""
            first, last = offset // C, (end - 1) // C
            parts: dict[int, bytes] = {}
            missing: list[int] = []
            for i in range(first, last + 1):
                data = self.cache.get(i)
                if data is None:
                    missing.append(i)
                else:
                    parts[i] = data
            stats.cache_hits += len(parts)
            stats.cache_misses += len(missing)
            if missing:
                parts.update(self._fetch(missing, size, stats))
            if first == last and offset == first * C and end - offset == len(parts[first]):
                return parts[first]
            blob = b"".join(parts[i] for i in range(first, last + 1))
            return blob[offset - first * C : end - first * C]

    def _fetch(self, indexes: list[int], size: int, stats: V1Stats) -> dict[int, bytes]:
        """Read chunks from the store in one round trip and cache them."""

        def get(tr: Transaction) -> list[bytes | None]:
            stats.store_reads += 1
            return tr.get_many(
                [self.keys.chunk(i) for i in indexes], snapshot=True, point="read_chunks"
            )

        out = {}
        for i, value in zip(indexes, self._transact(get, "v1.read"), strict=True):
            data = self._content(i, value, size)
            stats.chunks_read += 1
            stats.bytes_read += len(data)
            self.cache.put(i, data)
            out[i] = data
        return out

    def _content(self, index: int, value: bytes | None, size: int) -> bytes:
        """The bytes of chunk ``index`` of a file of ``size`` bytes, from its stored value."""
        need = min(C, size - index * C)
        if value is None or len(value) < need:
            got = "missing" if value is None else f"{len(value)} bytes"
            raise corrupt(
                f"v1 file {self._where()}: chunk {index} is {got}, the file's size "
                f"({size}) needs {need}; the store lost data this file wrote"
            )
        return value if len(value) == need else value[:need]

    # ------------------------------------------------------------------ write

    def write(self, data: bytes, offset: int, stats: V1Stats) -> None:
        """Write ``data`` at ``offset`` in one store transaction (growing the file if needed)."""
        with self._mutex:
            old = self._load(stats)
            end = offset + len(data)
            new = max(old, end)
            start = min(offset, old)  # a write past the end also rewrites the gap
            indexes = range(start // C, (end - 1) // C + 1) if end > start else range(0)

            def covered(i: int) -> bool:
                return offset <= i * C and end >= min(i * C + C, new)

            need = [
                i for i in indexes if i * C < old and not covered(i) and self.cache.get(i) is None
            ]
            write_meta = new != old or not self._exists
            if not indexes and not write_meta:
                return

            def apply(tr: Transaction) -> dict[int, bytes]:
                fetched: dict[int, bytes] = {}
                if need:
                    stats.store_reads += 1
                    values = tr.get_many([self.keys.chunk(i) for i in need], point="read_chunks")
                    fetched = {
                        i: self._content(i, v, old) for i, v in zip(need, values, strict=True)
                    }
                out = {}
                for i in indexes:
                    cs = i * C
                    buf = bytearray(min(C, new - cs))
                    if cs < old and not covered(i):
                        base = fetched[i] if i in fetched else self.cache.peek(i)
                        assert base is not None
                        buf[: len(base)] = base
                    lo, hi = max(offset, cs), min(end, cs + len(buf))
                    if hi > lo:
                        buf[lo - cs : hi - cs] = data[lo - offset : hi - offset]
                    out[i] = bytes(buf)
                    tr.set(self.keys.chunk(i), out[i])
                if write_meta:
                    tr.set(self.keys.meta, encode_size(new))
                stats.store_commits += 1
                return out

            written = self._transact(apply, "v1.write")
            self._size, self._exists = new, True
            for i, value in written.items():
                stats.chunks_written += 1
                stats.bytes_written += len(value)
                self.cache.put(i, value)

    def truncate(self, size: int, stats: V1Stats) -> None:
        """Set the file's size: shrink in three store transactions, or grow with zeros.

        Truncating to the current size runs the shrink steps too, which removes what an
        interrupted truncate or delete left past the end (SQLite itself never asks).
        """
        with self._mutex:
            old = self._load(stats)
            if size > old or not self._exists:
                self.write(b"", size, stats)
                return
            count = chunk_count(size)
            tail = size - (count - 1) * C if size % C else 0

            def set_size(tr: Transaction) -> None:
                tr.set(self.keys.meta, encode_size(size))
                stats.store_commits += 1

            self._transact(set_size, "v1.truncate_size")
            self._size = size
            self.cache.drop_from(count)
            cached = self.cache.peek(count - 1) if tail else None
            if cached is not None:
                self.cache.put(count - 1, cached[:tail])
                cached = cached[:tail]

            def clear_past_end(tr: Transaction) -> None:
                tr.clear_range(*self.keys.chunks_from(count))
                stats.store_commits += 1

            self._transact(clear_past_end, "v1.truncate_clear")
            if not tail:
                return
            key = self.keys.chunk(count - 1)

            def shorten_last(tr: Transaction) -> bytes:
                base = cached
                if base is None:
                    stats.store_reads += 1
                    base = self._content(count - 1, tr.get(key, point="read_chunk"), size)
                tr.set(key, base)
                stats.store_commits += 1
                return base

            self.cache.put(count - 1, self._transact(shorten_last, "v1.truncate_last"))

    def delete(self, stats: V1Stats) -> None:
        """Remove the file: its metadata key, then (second transaction) its chunks."""
        with self._mutex:
            if not self.exists(stats):
                return

            def clear_meta(tr: Transaction) -> None:
                tr.clear(self.keys.meta)
                stats.store_commits += 1

            def clear_chunks(tr: Transaction) -> None:
                tr.clear_range(*self.keys.chunks_from(0))
                stats.store_commits += 1

            self._transact(clear_meta, "v1.delete_meta")
            self._size, self._exists = 0, False
            self.cache.clear()
            self._transact(clear_chunks, "v1.delete_chunks")

    # ------------------------------------------------------------------ helpers

    def _transact(self, fn: Callable[[Transaction], T], name: str) -> T:
        """``fn`` in one store transaction named ``name`` (its fault points)."""
        try:
            return self.store.transact(fn, name=name)
        except BaseException:
            self.invalidate()
            raise

    def _where(self) -> str:
        return f"{self.keys.name!r}/{self.keys.role}"
