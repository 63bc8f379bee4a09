"""Parsed LTX page indexes, remembered by blob content (process-wide, bounded).

Reading a page from a DELTA part or a shard means joining its chunks, parsing its page index
(``ltx.read_page_index``: ~100 µs of Python for a 64-page shard) and decompressing one
frame. A cold open and the point queries after it read the same few blobs again and again
(shard 0, the shards of the B-tree's upper levels) and every ``sqlkv.connect`` builds a new
``Engine``, so the parse was a third of a cold open + point query's CPU.

The key is the checks of every chunk of the blob (each is ``xxh3_128`` of the chunk's key
and bytes, already verified by ``seal.chunk_payloads``) and the blob's length: the same key
means the same bytes, so the index parsed from them is the same — exact under the same
collision assumption that the seal itself makes. A blob rewritten under the same key (a
shard refolded) has new checks, hence a new entry; old ones age out (LRU of
``MAX_ENTRIES``, ~10 KiB each for a 64-page shard: small, so that a scan's memory stays
bounded by the page cache, ``tests/vfs_v2/test_cache_bound.py``).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlkv.engine.seal import TAG_SIZE
from sqlkv.ltx import read_page_index
from sqlkv.ltx.decoder import FileLike, PageIndex

MAX_ENTRIES = 32

_lock = threading.Lock()
_indexes: OrderedDict[tuple[bytes, int], PageIndex] = OrderedDict()


def page_index(rows: list[tuple[bytes, bytes]], blob: FileLike) -> PageIndex:
    """``read_page_index(blob)`` for the blob made of ``rows`` (checked chunks)."""
    key = (b"".join(value[-TAG_SIZE:] for _, value in rows), len(blob))
    with _lock:
        index = _indexes.get(key)
        if index is not None:
            _indexes.move_to_end(key)
            return index
    index = read_page_index(blob)  # raises LtxError for a malformed one: never cached
    with _lock:
        _indexes[key] = index
        if len(_indexes) > MAX_ENTRIES:
            _indexes.popitem(last=False)
    return index
