"""Client counters: what one connection asked of its caches and of the engine.

Every engine call is one ``round_trip`` (retries included), whatever the call. Byte counts
are page payload: page bodies sent in commits and stages, page bodies received from
``open`` and ``get_pages`` (the network client adds its own framing on top).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace


@dataclass
class ClientCounters:
    round_trips: int = 0  # every engine call: open, get_pages, commit, stage, finalize, head
    retries: int = 0  # engine calls repeated after a retryable error or a lost answer
    get_pages_calls: int = 0  # get_pages (read_at on a read-only connection)
    pages_fetched: int = 0  # pages received from get_pages (missed page plus read-ahead)
    readahead_pages: int = 0  # of those, pages asked for ahead of a miss
    pages_preloaded: int = 0  # pages received from open
    cache_hits: int = 0  # page reads answered by the page cache
    cache_misses: int = 0  # page reads that needed get_pages
    buffer_hits: int = 0  # page reads answered by the write buffer
    zero_reads: int = 0  # page reads at or past the local end, served as zeros locally
    commits: int = 0  # SQLite transactions committed (either path)
    staged_commits: int = 0  # of those, sent through commit_stage/commit_finalize
    commit_calls: int = 0
    stage_calls: int = 0
    finalize_calls: int = 0
    pages_committed: int = 0
    unchanged_pages_dropped: int = 0  # buffered pages identical to committed ones, not sent
    empty_syncs: int = 0  # xSync with nothing to send (a read transaction, a rollback)
    bytes_sent: int = 0
    bytes_received: int = 0
    # read-only connections (docs/read-replicas.md)
    snapshots: int = 0  # snapshot calls (one at open)
    refreshes: int = 0  # read transactions of a reader following the head (changes_since)
    refresh_round_trips: int = 0  # engine calls those refreshes made, retries included
    refresh_max_round_trips: int = 0  # the most any one refresh made (1 without retries)
    pages_invalidated: int = 0  # cached pages dropped because a newer commit changed them
    cache_drops: int = 0  # whole-cache drops (changes_since could not say what changed)
    snapshot_too_old: int = 0  # reads refused because the snapshot left the retention window

    def snapshot(self) -> ClientCounters:
        return replace(self)

    def __sub__(self, other: ClientCounters) -> ClientCounters:
        return ClientCounters(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def cache_hit_ratio(self) -> float:
        reads = self.cache_hits + self.cache_misses
        return self.cache_hits / reads if reads else 0.0
