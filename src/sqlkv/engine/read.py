"""get_pages: pages and head from one consistent snapshot, in one store transaction.

A page above ``db_size_pages`` is absent (None). A page with a PIDX row is read from the
DELTA part the row names; any other page from its shard; a page found in neither was never
written and reads as zeros. Each LTX blob is fetched and indexed once per call, and only
the requested frames are decompressed, from the checked chunks as they came (never joined:
a point read copies one frame, not the 256 KiB shard). Every chunk is checked before use
(``seal``): a damaged or missing chunk, a PIDX row naming a missing delta part, or a part
that does not hold the page its row names raises ``CorruptionError`` and is never returned
as page data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlkv.engine.blob_index import page_index
from sqlkv.engine.head import Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.pidx import PidxMap
from sqlkv.engine.seal import CHUNK_OVERHEAD, TAG_SIZE, chunk_payload_size, chunk_payloads
from sqlkv.errors import CorruptionError, InvalidRequest, LtxError
from sqlkv.ltx import read_page
from sqlkv.ltx.decoder import SplitFile
from sqlkv.ltx.header import HEADER_SIZE
from sqlkv.ltx.walk import max_frame_size, scan_pages
from sqlkv.store.limits import Limits
from sqlkv.store.ranges import RangeRead

if TYPE_CHECKING:
    from sqlkv.engine.ledger import StoreReader


def check_pgnos(pgnos: Iterable[int]) -> list[int]:
    out = []
    for p in pgnos:
        if not isinstance(p, int) or p < 1 or p >= 1 << 32:
            raise InvalidRequest(f"page number {p!r} is invalid: pages are numbered from 1")
        out.append(p)
    return out


BlobId = tuple[str, int, int]
"""``("delta", txid, part)`` or ``("shard", shard_id, 0)``: one LTX blob of the database."""
Rows = list[tuple[bytes, bytes]]


@dataclass
class ReadPlan:
    """The reads of one ``PageSource.read``: pages above the end, and each blob's pages."""

    absent: list[int] = field(default_factory=list)
    located: list[tuple[BlobId, list[int]]] = field(default_factory=list)
    ranges: list[RangeRead] = field(default_factory=list)


class PageSource:
    """Where each page lives as of one head, and how many came from deltas vs shards."""

    def __init__(
        self,
        keys: DbKeys,
        head: Head,
        pidx: PidxMap,
        limits: Limits | None = None,
        *,
        chunk_bytes: int | None = None,
    ) -> None:
        """``limits``: the store's; given, a shard is read only up to the chunk that must
        hold the last wanted page's frame (``shard_chunks``, with ``chunk_bytes`` of LTX per
        chunk: ``seal.chunk_payload_size`` of the value limit), else whole."""
        self.keys = keys
        self.head = head
        self.pidx = pidx
        if chunk_bytes is None:
            chunk_bytes = chunk_payload_size(limits.max_value_bytes) if limits else 0
        self.chunk_bytes = chunk_bytes
        self.from_deltas = 0
        self.from_shards = 0

    def read(
        self,
        tr: StoreReader,
        pgnos: Iterable[int],
        point: str = "read_pages",
        have: Mapping[BlobId, Rows] | None = None,
    ) -> dict[int, bytes | None]:
        """The pages (None above the size); ``have``: blobs already read in this snapshot
        (their rows by blob id), which are not read again."""
        plan = self.plan(pgnos)
        if not have:
            # Every blob this call needs, in one round trip (a snapshot read).
            blobs = tr.get_ranges(plan.ranges, snapshot=True, point=point)
            return self.decode(plan, blobs, tr, point)
        missing = [
            (blob, rng)
            for (blob, pages), rng in zip(plan.located, plan.ranges, strict=True)
            if blob not in have or not self._covers(blob, max(pages), have[blob])
        ]
        fetched = dict(
            zip(
                [blob for blob, _ in missing],
                tr.get_ranges([rng for _, rng in missing], snapshot=True, point=point)
                if missing
                else [],
                strict=True,
            )
        )
        blobs = [fetched[blob] if blob in fetched else have[blob] for blob, _ in plan.located]
        return self.decode(plan, blobs, tr, point)

    def plan(self, pgnos: Iterable[int]) -> ReadPlan:
        """Which blob holds each page: the range reads of ``read``, to send with others."""
        head = self.head
        plan = ReadPlan()
        groups: dict[BlobId, list[int]] = {}
        for pgno in pgnos:
            if pgno > head.db_size_pages:
                plan.absent.append(pgno)
                continue
            loc = self.pidx.get(pgno)
            if loc is not None:
                groups.setdefault(("delta", *loc), []).append(pgno)
            else:
                groups.setdefault(("shard", pgno // head.shard_size, 0), []).append(pgno)
        plan.located = list(groups.items())
        plan.ranges = [
            (*self.blob_range(blob, max(pages)), 0, False) for blob, pages in plan.located
        ]
        return plan

    def decode(
        self,
        plan: ReadPlan,
        blobs: list[list[tuple[bytes, bytes]]],
        tr: StoreReader | None = None,
        point: str = "read_pages",
    ) -> dict[int, bytes | None]:
        """The pages of ``plan`` from the rows of its range reads, every value checked.
        A shard read in part whose walk cannot find a page there (a file not written by
        sqlkv's encoder, or chunks of another size) is read whole through ``tr``."""
        out: dict[int, bytes | None] = dict.fromkeys(plan.absent)
        zero = bytes(self.head.page_size)
        for ((kind, a, b), wanted), rows in zip(plan.located, blobs, strict=True):
            where = f"txid {a} part {b}" if kind == "delta" else f"shard {a}"
            if kind == "delta":
                if not rows:
                    raise CorruptionError(
                        self.keys.name,
                        "DELTA",
                        where,
                        f"the PIDX row of page {wanted[0]} names this delta part, which is "
                        "missing from the store",
                    )
                self.from_deltas += len(wanted)
            else:
                self.from_shards += len(wanted)
            if not rows:
                out.update(dict.fromkeys(wanted, zero))
                continue
            blob = SplitFile(chunk_payloads(self.keys, rows, prefix=kind == "shard"))
            try:
                if kind == "shard" and self.chunk_bytes and len(rows) < _chunk_count(rows):
                    found = scan_pages(blob, wanted)  # the first chunks only: walk the frames
                    if found is None:
                        if tr is None:
                            raise InvalidRequest("a shard read in part needs its snapshot")
                        (rows,) = tr.get_ranges(
                            [(*self.blob_range((kind, a, b)), 0, False)], snapshot=True, point=point
                        )
                        blob = SplitFile(chunk_payloads(self.keys, rows))
                    else:
                        out.update((p, zero if v is None else v) for p, v in found.items())
                        continue
                index = page_index(rows, blob)
                for pgno in wanted:
                    page = read_page(blob, pgno, index)
                    if page is None and kind == "delta":
                        raise LtxError(f"it does not hold page {pgno}, which its PIDX row names")
                    out[pgno] = zero if page is None else page
            except LtxError as exc:
                raise CorruptionError(
                    self.keys.name, kind.upper(), where, f"its LTX file: {exc}"
                ) from exc
        return out

    def _covers(self, blob: BlobId, last: int, rows: Rows) -> bool:
        """Whether ``rows``, a blob read earlier (a shard possibly in part), hold every chunk
        that this read would ask for to find page ``last``."""
        if blob[0] == "delta" or not rows or len(rows) >= _chunk_count(rows):
            return True
        if not self.chunk_bytes:
            return False
        position = last % self.head.shard_size
        return len(rows) >= shard_chunks(position, self.head.page_size, self.chunk_bytes)

    def blob_range(self, blob: BlobId, last: int | None = None) -> tuple[bytes, bytes]:
        """The key range of a blob: ``("delta", txid, part)`` or ``("shard", id, 0)``; of a
        shard, only its chunks up to the one that holds page ``last`` (when given)."""
        kind, a, b = blob
        if kind == "delta":
            return self.keys.delta_part_range(a, b)
        if last is None or not self.chunk_bytes:
            return self.keys.shard_range(a, a + 1)
        n = shard_chunks(last % self.head.shard_size, self.head.page_size, self.chunk_bytes)
        return self.keys.shard_chunk(a, 0), self.keys.shard_chunk(a, n)


def shard_chunks(position: int, page_size: int, chunk_bytes: int) -> int:
    """How many leading chunks of a shard hold the frame of its page at ``position`` (0-63)
    for certain: a shard's frames ascend by page number, so at most ``position`` frames
    precede it, and no block frame exceeds ``max_frame_size``."""
    return -(-(HEADER_SIZE + (position + 1) * max_frame_size(page_size)) // chunk_bytes)


def _chunk_count(rows: Rows) -> int:
    """The chunk count the blob's chunks carry (``seal``: checked by ``chunk_payloads``)."""
    value = rows[0][1]
    return int.from_bytes(value[len(value) - CHUNK_OVERHEAD : len(value) - TAG_SIZE], "big")
