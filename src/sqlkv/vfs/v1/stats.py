"""Client-side counters of the v1 VFS: store round trips, chunks and bytes, cache hits."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass
class V1Stats:
    """What one connection's files asked of the store.

    ``store_reads`` counts read round trips (one ``get_many`` per cache miss batch, one
    ``get`` per metadata load), ``store_commits`` write transactions sent. Attempts
    retried by ``Store.transact`` count again, as they cost a round trip again.
    """

    store_reads: int = 0
    store_commits: int = 0
    chunks_read: int = 0
    chunks_written: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    cache_hits: int = 0
    cache_misses: int = 0

    @property
    def round_trips(self) -> int:
        return self.store_reads + self.store_commits

    def snapshot(self) -> V1Stats:
        return V1Stats(**{f.name: getattr(self, f.name) for f in fields(self)})

    def __sub__(self, other: V1Stats) -> V1Stats:
        return V1Stats(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )
