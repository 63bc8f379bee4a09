"""Reads of committed states other than the head's, and what changed since a txid.

``read_at(t, pgnos)`` returns the pages exactly as of committed txid ``t``, or raises
``SnapshotTooOld`` when what it needs is gone — never another state's data. The rule
(docs/history.md has the argument):

- facts (``facts.py``) describe every committed txid from the oldest one kept to the head;
  every delta whose txid is above the *floor* (the oldest stored delta's txid - 1) is
  stored, and every delta at or below it was folded into shards and deleted;
- a page above the size at ``t`` is None;
- otherwise its newest write ``w`` in ``(floor, t]`` (from the facts) holds it — or zeros
  when the database shrank below the page after ``w`` (a size below it in ``(w, t]``);
- without such a write it is the page as of the floor (zeros if a shrink in
  ``(floor, t]`` cut it), which the shard holds when the shard's version is valid at
  ``t`` (LTX ``max_txid`` <= t: a fold at its ``min_txid``, or a shrink at its
  ``max_txid``), or when nothing changed the page between the floor and the shard's state
  (no write of it in ``(floor, min_txid]``, no shrink below it in ``(floor, max_txid]``);
  otherwise that state is gone: ``SnapshotTooOld``.

At the head (``t == head_txid``), and for every page neither written nor cut after ``t``,
the ordinary read path answers (PIDX + shards): the page is the same at both.
Every read here is a snapshot read: it never conflicts, never fences and writes nothing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlkv.engine.facts import Facts, parse_facts
from sqlkv.engine.head import CREATION_TXID, Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.pidx import PidxCache
from sqlkv.engine.read import PageSource
from sqlkv.engine.retention import (
    UNKNOWN,
    Retired,
    graves_range,
    parse_graves,
    parse_versions,
    version_blob_range,
    versions_range,
)
from sqlkv.engine.seal import join_chunks
from sqlkv.errors import CorruptionError, DatabaseNotFound, InvalidRequest, LtxError, SnapshotTooOld
from sqlkv.ltx import read_page, read_page_index
from sqlkv.ltx.decoder import read_header
from sqlkv.store import Transaction

MAX_CHANGED_ROWS = 20_000
"""changes_since reads at most this many facts rows; further behind, the answer is None."""
MAX_CHANGED_PAGES = 1_000_000
"""A change set larger than this is answered as None (drop the cache)."""


@dataclass
class View:
    """What one snapshot says about the database's history."""

    head: Head
    facts: dict[int, Facts]
    oldest: int | None  # oldest txid whose facts are kept
    floor: int  # every delta above it is stored; every one at or below it is deleted
    complete: bool  # the facts describe every stored delta
    retired: dict[int, Retired] = field(default_factory=dict)  # shard -> version for ``at``


def _meta_range(keys: DbKeys) -> tuple[bytes, bytes, int, bool]:
    return keys.meta, keys.meta + b"\x00", 1, False


def _head_of(db: str, rows: list[tuple[bytes, bytes]]) -> Head:
    if not rows:
        raise DatabaseNotFound(db)
    return Head.decode(rows[0][1], db)


def load_view(tr: Transaction, keys: DbKeys, at: int | None, point: str) -> View:
    """META and the facts from ``at`` on (None: only the head), in one round trip: what a
    read at ``at`` of pages that did not change since needs. ``load_older`` adds the rest."""
    db = keys.name
    if at is None:
        head = _head_of(db, tr.get_ranges([_meta_range(keys)], snapshot=True, point=point)[0])
        return View(head, {}, None, head.head_txid, True)
    meta, rows, first, live, grave, versions = tr.get_ranges(
        [
            _meta_range(keys),
            (*keys.history_range(at), 0, False),
            (*keys.history_range(), 1, False),
            (*keys.delta_dir_range(), 1, False),
            (*graves_range(keys), 1, False),
            (*versions_range(keys, at + 1), 0, False),
        ],
        snapshot=True,
        point=point,
    )
    head = _head_of(db, meta)
    facts = parse_facts(keys, rows)
    oldest = keys.history_txid(first[0][0]) if first else None
    stored = [keys.delta_dir_txid(live[0][0])] if live else []
    stored += [txid for _, txid, _ in parse_graves(keys, grave)]
    min_stored = min(stored) if stored else None
    floor = head.head_txid if min_stored is None else min_stored - 1
    complete = min_stored is None or (oldest is not None and min_stored >= oldest)
    retired: dict[int, Retired] = {}
    for version in parse_versions(keys, versions):  # in until order: the first one wins
        retired.setdefault(version.shard, version)
    return View(head, facts, oldest, floor, complete, retired)


def load_older(tr: Transaction, keys: DbKeys, view: View, at: int, point: str) -> None:
    """Add the facts of ``(floor, at)`` to ``view`` (one more round trip, when needed)."""
    if view.floor + 1 < at:
        rows = tr.get_range(*keys.history_range(view.floor + 1, at), snapshot=True, point=point)
        view.facts.update(parse_facts(keys, rows))


def check_txid(view: View, db: str, txid: int) -> None:
    """``txid`` is a committed state this view can read (head included)."""
    head = view.head
    if not isinstance(txid, int) or txid < 1 or txid > head.head_txid:
        raise InvalidRequest(
            f"txid {txid!r} of database {db!r} is not committed (head txid {head.head_txid})"
        )
    if txid == head.head_txid:
        return
    if txid == CREATION_TXID and any(f.prev_txid == txid for f in view.facts.values()):
        return  # the empty database, before the first commit (still described)
    if view.oldest is None or txid < view.oldest or not view.complete:
        oldest = "none" if view.oldest is None or not view.complete else str(view.oldest)
        raise SnapshotTooOld(
            f"the state at txid {txid} of database {db!r} is older than what it retains "
            f"(oldest readable txid: {oldest}, head {head.head_txid}); read a newer state, "
            "or lengthen the database's retention window so that later states stay readable"
        )
    if txid not in view.facts:
        raise InvalidRequest(
            f"txid {txid} of database {db!r} was never committed (a large commit that was "
            "abandoned); read a committed txid"
        )


class _Sizes:
    """Sizes of the described txids, with the minimum over any txid interval."""

    def __init__(self, facts: dict[int, Facts]) -> None:
        self.txids = sorted(facts)
        sizes = [facts[t].db_size_pages for t in self.txids]
        self._table = [sizes]
        span = 1
        while span * 2 <= len(sizes):
            prev = self._table[-1]
            self._table.append(
                [min(prev[i], prev[i + span]) for i in range(len(sizes) - span * 2 + 1)]
            )
            span *= 2

    def min_over(self, lo: int, hi: int) -> int | None:
        """Smallest size of a described txid in ``(lo, hi]`` (None: none there)."""
        i = bisect.bisect_right(self.txids, lo)
        j = bisect.bisect_right(self.txids, hi)
        if i >= j:
            return None
        k = (j - i).bit_length() - 1
        row = self._table[k]
        return min(row[i], row[j - (1 << k)])

    def cut(self, pgno: int, lo: int, hi: int) -> bool:
        """True when the database was smaller than ``pgno`` at a txid in ``(lo, hi]``."""
        low = self.min_over(lo, hi)
        return low is not None and low < pgno


def read_at(
    tr: Transaction,
    keys: DbKeys,
    cache: PidxCache,
    txid: int | None,
    pgnos: Sequence[int],
    point: str,
) -> tuple[View, int, dict[int, bytes | None]]:
    """(view, size at txid, pages at txid) from one snapshot (``txid`` None: the head)."""
    view = load_view(tr, keys, txid, "read_history")
    head = view.head
    if txid is not None:
        check_txid(view, keys.name, txid)
    if txid is None or txid == head.head_txid:
        source = PageSource(keys, head, cache.rows_for(tr, keys.name, keys, head))
        return view, head.db_size_pages, source.read(tr, pgnos, point) if pgnos else {}
    if txid not in view.facts:  # txid 1: the empty database
        return view, 0, dict.fromkeys(pgnos)
    size = view.facts[txid].db_size_pages
    # A page not written and not cut since ``txid`` is as it is at the head: the ordinary
    # read path serves it (a reader a few commits behind needs nothing else).
    changed: set[int] = set()
    low = size
    for t, facts in view.facts.items():
        if t > txid:
            changed.update(facts.pages)
            low = min(low, facts.db_size_pages)
    same = [p for p in pgnos if p <= low and p not in changed]
    past = [p for p in pgnos if p > low or p in changed]
    out: dict[int, bytes | None] = {}
    if same:
        source = PageSource(keys, head, cache.rows_for(tr, keys.name, keys, head))
        out.update(source.read(tr, same, point))
    if past:
        load_older(tr, keys, view, txid, "read_history")
        out.update(_Past(keys, view, txid).read(tr, past, point))
    return view, size, {p: out[p] for p in pgnos}


class _Past:
    """The pages of one past txid, resolved from the facts, deltas and shards."""

    def __init__(self, keys: DbKeys, view: View, txid: int) -> None:
        self.keys = keys
        self.view = view
        self.txid = txid
        self.sizes = _Sizes(view.facts)
        # Facts are known above ``lo``; deltas are stored above the floor only.
        self.lo = min(txid, view.floor)
        self.writes: dict[int, list[int]] = {}
        for t in sorted(view.facts):
            if t > self.lo:
                for p in view.facts[t].pages:
                    self.writes.setdefault(p, []).append(t)

    def newest_write(self, pgno: int, hi: int, above: int) -> int | None:
        """The newest txid in ``(above, hi]`` that wrote ``pgno`` (``above >= lo``)."""
        ws = self.writes.get(pgno)
        if not ws:
            return None
        i = bisect.bisect_right(ws, hi)
        return ws[i - 1] if i and ws[i - 1] > above else None

    def too_old(self, why: str) -> SnapshotTooOld:
        return SnapshotTooOld(
            f"the state at txid {self.txid} of database {self.keys.name!r} is no longer "
            f"readable: {why}; read a newer state, or lengthen the database's retention "
            "window so that later states stay readable"
        )

    def read(self, tr: Transaction, pgnos: Iterable[int], point: str) -> dict[int, bytes | None]:
        t, floor, keys = self.txid, self.view.floor, self.keys
        size = self.view.facts[t].db_size_pages
        zero = bytes(self.view.head.page_size)
        out: dict[int, bytes | None] = {}
        groups: dict[tuple[str, int, int], list[int]] = {}
        for pgno in pgnos:
            if pgno > size:
                out[pgno] = None
                continue
            w = self.newest_write(pgno, t, floor)
            if w is not None:
                if self.sizes.cut(pgno, w, t):
                    out[pgno] = zero
                    continue
                part = self.view.facts[w].part_of(pgno)
                assert part is not None
                groups.setdefault(("delta", w, part), []).append(pgno)
            elif self.sizes.cut(pgno, floor, t):
                out[pgno] = zero
            else:
                shard = pgno // self.view.head.shard_size
                version = self.view.retired.get(shard)
                if version is None:
                    groups.setdefault(("shard", shard, 0), []).append(pgno)
                elif version.state == UNKNOWN:
                    raise self.too_old(f"the shard of page {pgno} before txid {version.until}")
                elif version.stored:
                    groups.setdefault(("version", shard, version.until), []).append(pgno)
                else:  # the shard did not exist (certainly from ``valid_from``) to ``until``
                    if version.valid_from > t:
                        self._no_shard(pgno)
                    out[pgno] = zero
        located = list(groups.items())
        blobs = tr.get_ranges(
            [(*self._blob_range(kind, a, b), 0, False) for (kind, a, b), _ in located],
            snapshot=True,
            point=point,
        )
        for ((kind, a, b), wanted), rows in zip(located, blobs, strict=True):
            where = {"delta": f"txid {a} part {b}", "shard": f"shard {a}"}.get(
                kind, f"shard {a} until {b}"
            )
            if kind != "shard" and not rows:
                raise CorruptionError(
                    keys.name,
                    "DELTA" if kind == "delta" else "V",
                    where,
                    "the history names this blob, which is missing from the store",
                )
            if not rows:
                for pgno in wanted:
                    self._no_shard(pgno)
                    out[pgno] = zero
                continue
            blob = join_chunks(keys, rows)
            try:
                index = read_page_index(blob)
                header = read_header(blob) if kind != "delta" else None
                for pgno in wanted:
                    if header is not None and header.max_txid > t:
                        self._check_shard_state(pgno, header.min_txid, header.max_txid)
                    page = read_page(blob, pgno, index)
                    if page is None and kind == "delta":
                        raise LtxError(f"it does not hold page {pgno}, which its facts name")
                    out[pgno] = zero if page is None else page
            except LtxError as exc:
                raise CorruptionError(
                    keys.name, kind.upper(), where, f"its LTX file: {exc}"
                ) from exc
        return out

    def _no_shard(self, pgno: int) -> None:
        """Zeros are right for a page without a shard version only if no shrink since
        ``min(txid, floor)`` cut it (it may have been in a shard that was deleted)."""
        if self.sizes.cut(pgno, self.lo, self.view.head.head_txid):
            raise self.too_old(f"page {pgno} was cut by a shrink since")

    def _check_shard_state(self, pgno: int, state: int, valid_from: int) -> None:
        """The shard was rewritten after ``txid``: usable only if nothing changed the page
        between ``min(txid, floor)`` and the shard's state."""
        if self.newest_write(pgno, state, self.lo) is not None:
            raise self.too_old(f"page {pgno} was folded into its shard at txid {state}")
        if self.sizes.cut(pgno, self.lo, valid_from):
            raise self.too_old(f"page {pgno}'s shard was cut by a shrink at or before {valid_from}")

    def _blob_range(self, kind: str, a: int, b: int) -> tuple[bytes, bytes]:
        if kind == "delta":
            return self.keys.delta_part_range(a, b)
        if kind == "version":
            return version_blob_range(self.keys, b, a)
        return self.keys.shard_range(a, a + 1)


def changes_since(
    tr: Transaction, keys: DbKeys, since: int, point: str
) -> tuple[Head, int, frozenset[int] | None]:
    """(head, size at head, pages written or cut in ``(since, head]``, None if unknown),
    from one store operation."""
    meta, rows = tr.get_ranges(
        [_meta_range(keys), (*keys.history_range(since), MAX_CHANGED_ROWS, False)],
        snapshot=True,
        point=point,
    )
    head = _head_of(keys.name, meta)
    if not isinstance(since, int) or since < 1 or since > head.head_txid:
        raise InvalidRequest(
            f"txid {since!r} of database {keys.name!r} is not committed "
            f"(head txid {head.head_txid})"
        )
    if since == head.head_txid:
        return head, head.db_size_pages, frozenset()
    if len(rows) >= MAX_CHANGED_ROWS:
        return head, head.db_size_pages, None
    facts = parse_facts(keys, rows)
    if since not in facts:
        return head, head.db_size_pages, None  # its facts are gone (or never existed)
    changed: set[int] = set()
    before = facts[since].db_size_pages
    low = before
    for t, fa in facts.items():
        if t > since:
            changed.update(fa.pages)
            low = min(low, fa.db_size_pages)
    if before - low + len(changed) > MAX_CHANGED_PAGES:
        return head, head.db_size_pages, None
    changed.update(range(low + 1, before + 1))  # cut by a shrink (zeros if regrown)
    return head, head.db_size_pages, frozenset(changed)
