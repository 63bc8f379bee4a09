"""Helpers shared by the engine tests and ``bench/bench_engine.py``.

Kept out of ``conftest.py`` so that it can be imported by name (several directories have a
``conftest.py``; importing one of them by name is ambiguous). The fixtures that build
engines on the ``store`` fixture live in ``tests/engine/conftest.py``.

Every check here goes through ordinary store transactions, so it works on every driver.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlkv.engine import CommitResult, Engine
from sqlkv.engine.blobs import encode_pages
from sqlkv.engine.head import Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.verify import verify_database
from sqlkv.store import Store, Transaction

PAGE = 4096
ZERO = bytes(PAGE)

StoreFactory = Callable[..., Store]
"""``store_factory(limits=None)`` (a fixture of tests/conftest.py): the test's store."""
EngineFactory = Callable[..., Engine]
"""``make_engine(**config)`` (a fixture): a new Engine with its own caches, on the test's store."""


def page_of(tag: int) -> bytes:
    """A compressible page that differs from every other tag's page (and from zeros)."""
    return struct.pack(">q", tag + 1 if tag >= 0 else tag) * (PAGE // 8)


def random_page(rng: random.Random) -> bytes:
    """An incompressible page."""
    return rng.randbytes(PAGE)


# ---------------------------------------------------------------------- store inspection


def db_rows(store: Store, name: str) -> dict[bytes, bytes]:
    """Every key and value of database ``name`` (a dump of its range, on any driver)."""
    begin, end = DbKeys(name).all_range()
    return dict(store.transact(lambda tr: tr.get_range(begin, end, snapshot=True)))


def range_keys(store: Store, key_range: tuple[bytes, bytes]) -> list[bytes]:
    return [k for k, _ in store.transact(lambda tr: tr.get_range(*key_range, snapshot=True))]


def stored_bytes(store: Store, name: str) -> int:
    """Key and value bytes of database ``name`` as the store holds them."""
    return sum(len(k) + len(v) for k, v in db_rows(store, name).items())


def read_head(store: Store, name: str) -> Head:
    raw = store.transact(lambda tr: tr.get(DbKeys(name).meta, snapshot=True))
    assert raw is not None, f"database {name!r} has no META"
    return Head.decode(raw)


def edit_head(store: Store, name: str, **changes: object) -> Head:
    """Rewrite META by hand (as an operator or a test would), in one serializable transaction."""
    keys = DbKeys(name)

    def fn(tr: Transaction) -> Head:
        raw = tr.get(keys.meta)
        assert raw is not None
        head = Head.decode(raw).with_changes(**changes)
        tr.set(keys.meta, head.encode())
        return head

    return store.transact(fn)


def write_shard(store: Store, name: str, shard_id: int, pages: Mapping[int, bytes]) -> int:
    """Store a SHARD blob by hand (what compaction will write) and count it in storage_used.

    Returns the bytes the shard occupies. Until compaction exists this is how tests put
    pages in shards.
    """
    keys = DbKeys(name)
    ordered = sorted(pages.items())

    def fn(tr: Transaction) -> int:
        ledger = Ledger(tr, name, keys)  # the engine's own accounted writes
        head = ledger.read_head()
        data = encode_pages(ordered, max(2, head.head_txid), head.db_size_pages, head.page_size)
        shard = keys.shard_range(shard_id, shard_id + 1)
        old = tr.get_range(*shard, snapshot=True)
        ledger.drop_range(shard, old)
        used = ledger.put_blob(lambda i: keys.shard_chunk(shard_id, i), data)
        ledger.write_head(head.with_changes(shard_count=head.shard_count + (0 if old else 1)))
        return used

    return store.transact(fn)


def check_invariants(store: Store, name: str, *, settled: bool = True) -> Head:
    """The stored state of ``name`` agrees with its head; returns the head.

    - ``verify`` finds no problem: every value's check, every PIDX row pointing at a DELTA
      part that exists at or below head_txid and holds its page, the head's invariants and
      counters, and ``storage_used`` equal to the bytes stored in the database's range;
    - no DELTA key above head_txid (when ``settled``: no commit is being staged);
    - no staging manifest (when ``settled``).
    """
    keys = DbKeys(name)
    report = store.transact(lambda tr: verify_database(tr, keys))
    assert report.ok, "\n".join(str(p) for p in report.problems)
    assert report.head is not None
    head = report.head
    if settled:
        rows = db_rows(store, name)
        above_lo, above_hi = keys.deltas_from(head.head_txid + 1)
        stage_lo, stage_hi = keys.stage_range()
        assert not [k for k in rows if above_lo <= k < above_hi], "DELTA keys above head_txid"
        assert not [k for k in rows if stage_lo <= k < stage_hi], "staging manifests left"
    return head


# ---------------------------------------------------------------------- an owner and its model


@dataclass
class Owner:
    """One client that owns database ``name`` through ``engine``, with a model of its pages.

    ``model`` maps page number to the content a reader must see; pages up to ``size`` that
    are not in it read as zeros.
    """

    engine: Engine
    name: str
    generation: int = 0
    head_txid: int = 0
    size: int = 0
    model: dict[int, bytes] = field(default_factory=dict)

    @classmethod
    def open(cls, engine: Engine, name: str) -> Owner:
        owner = cls(engine, name)
        owner.reopen()
        return owner

    def reopen(
        self,
        engine: Engine | None = None,
        *,
        preload: Sequence[int] = (),
        preload_bytes: int | None = None,
    ) -> dict[int, bytes]:
        """Take the database over (again); keeps the model, which must still hold."""
        if engine is not None:
            self.engine = engine
        result = self.engine.open(self.name, preload=preload, preload_bytes=preload_bytes)
        self.generation = result.head.generation
        self.head_txid = result.head.head_txid
        self.size = result.head.db_size_pages
        return result.pages

    def commit(
        self, pages: Mapping[int, bytes], size: int | None = None, commit_id: bytes | None = None
    ) -> CommitResult:
        size = max([self.size, *pages]) if size is None else size
        result = self.engine.commit(
            self.name, self.generation, self.head_txid, dict(pages), size, commit_id=commit_id
        )
        self._landed(result, pages, size)
        return result

    def stage_commit(
        self,
        batches: Iterable[Mapping[int, bytes]],
        size: int | None = None,
        commit_id: bytes | None = None,
    ) -> CommitResult:
        """commit_stage each batch, then commit_finalize."""
        txid = None
        merged: dict[int, bytes] = {}
        for seq, batch in enumerate(batches):
            txid = self.engine.commit_stage(self.name, self.generation, txid, seq, dict(batch)).txid
            merged.update(batch)
        assert txid is not None, "stage_commit needs at least one batch"
        size = max([self.size, *merged]) if size is None else size
        result = self.engine.commit_finalize(
            self.name, self.generation, self.head_txid, txid, size, commit_id=commit_id
        )
        self._landed(result, merged, size)
        return result

    def _landed(self, result: CommitResult, pages: Mapping[int, bytes], size: int) -> None:
        self.head_txid = result.head.head_txid
        if result.already_applied:
            return
        self.size = size
        self.model = {p: v for p, v in self.model.items() if p <= size}
        self.model.update(pages)

    def read(self, pgnos: Iterable[int]) -> dict[int, bytes | None]:
        return self.engine.get_pages(self.name, self.generation, list(pgnos)).pages

    def expected(self, pgnos: Iterable[int]) -> dict[int, bytes | None]:
        return {p: (self.model.get(p, ZERO) if p <= self.size else None) for p in pgnos}

    def assert_reads_back(self, extra: int = 2) -> None:
        """Every page 1..size (+ a few above) reads as the model says."""
        pgnos = range(1, self.size + extra + 1)
        got = self.read(pgnos)
        want = self.expected(pgnos)
        bad = [p for p in pgnos if got[p] != want[p]]
        assert not bad, f"pages {bad[:10]} (of {len(bad)}) do not read back as committed"


def database_state(engine: Engine, name: str, generation: int) -> tuple[int, dict[int, bytes]]:
    """(db_size_pages, every page 1..size) as a reader at ``generation`` sees them."""
    head = engine.head(name)
    pgnos = list(range(1, head.db_size_pages + 1))
    pages = engine.get_pages(name, generation, pgnos).pages if pgnos else {}
    assert all(v is not None for v in pages.values())
    return head.db_size_pages, {p: v for p, v in pages.items() if v is not None}
