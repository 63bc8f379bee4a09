"""The v1 read cache: a bounded LRU of file chunks, exactly as long as the file holds them."""

from __future__ import annotations

from collections import OrderedDict


class ChunkCache:
    """Chunks of one file by index, least recently used evicted first.

    Each cached value is the chunk's content up to the file's size (so the last chunk is
    shorter than a full chunk). ``capacity`` 0 disables the cache.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 0:
            raise ValueError(f"cache capacity must be >= 0, got {capacity}")
        self.capacity = capacity
        self._chunks: OrderedDict[int, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._chunks)

    def __contains__(self, index: int) -> bool:
        return index in self._chunks

    def get(self, index: int) -> bytes | None:
        data = self._chunks.get(index)
        if data is not None:
            self._chunks.move_to_end(index)
        return data

    def peek(self, index: int) -> bytes | None:
        """The cached chunk without touching its recency."""
        return self._chunks.get(index)

    def put(self, index: int, data: bytes) -> None:
        if not self.capacity:
            return
        self._chunks[index] = data
        self._chunks.move_to_end(index)
        while len(self._chunks) > self.capacity:
            self._chunks.popitem(last=False)

    def drop_from(self, index: int) -> None:
        """Forget every chunk with an index ``>= index``."""
        for i in [i for i in self._chunks if i >= index]:
            del self._chunks[i]

    def clear(self) -> None:
        self._chunks.clear()

    def indexes(self) -> list[int]:
        return sorted(self._chunks)
