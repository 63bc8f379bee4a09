"""Corruption at rest: every damaged or missing value is caught, never served, never "fixed".

One database holds every key kind (META, PIDX rows, delta parts of several chunks, a
shard of several chunks, delta directory rows, a staged part with its manifest). For each
key, bytes of each position class (LTX header, page body, index, trailer, and the chunk's
count and check; each field of META, PIDX, X and T values) are flipped — one byte, and two
bytes 8 apart (the pattern the LTX CRC-64 can miss) — through the store API, on every
driver. Afterwards every read, compaction pass and takeover either gives the right pages
or raises ``CorruptionError`` having written nothing, and ``verify`` names the key.
Keys deleted outright are caught the same way.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Iterator

import pytest
from engine_support import ZERO, StoreFactory, page_of, random_page

from sqlkv.engine import Engine
from sqlkv.engine.head import HEAD_SIZE
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.seal import CHUNK_OVERHEAD, TAG_SIZE, chunk_payload_size, describe, join_chunks
from sqlkv.errors import CorruptionError
from sqlkv.store import Limits, Store

NAME = "db"
LIMITS = Limits(max_value_bytes=5_000)  # small chunks: every random-page blob has several
Rows = dict[bytes, bytes]


def build(store: Store) -> dict[int, bytes]:
    """The database with every key kind; returns its pages as committed."""
    rng = random.Random(7)
    engine = Engine(store)
    gen = engine.open(NAME).head.generation
    model = {p: random_page(rng) if p <= 3 else page_of(p) for p in range(1, 7)}
    head = engine.commit(NAME, gen, 1, model, 6).head
    engine.compact_until_done(NAME)  # shard 0, several chunks
    head = engine.head(NAME)
    later = {2: random_page(rng), 3: random_page(rng), 5: page_of(50)}
    head = engine.commit(NAME, gen, head.head_txid, later, 6).head  # a delta of two chunks
    head = engine.commit(NAME, gen, head.head_txid, {7: page_of(7)}, 7).head
    engine.commit_stage(NAME, gen, None, 0, {1: random_page(rng)})  # staged, not finalized
    model.update(later)
    model[7] = page_of(7)
    return model


def rows_of(store: Store) -> Rows:
    begin, end = DbKeys(NAME).all_range()
    return dict(store.transact(lambda tr: tr.get_range(begin, end, snapshot=True)))


def restore(store: Store, rows: Rows) -> None:
    def fn(tr: object) -> None:
        tr.clear_range(*DbKeys(NAME).all_range())  # type: ignore[attr-defined]
        for k, v in rows.items():
            tr.set(k, v)  # type: ignore[attr-defined]

    store.transact(fn)


def put(store: Store, key: bytes, value: bytes | None) -> None:
    if value is None:
        store.transact(lambda tr: tr.clear(key))
    else:
        store.transact(lambda tr: tr.set(key, value))


# --------------------------------------------------------------------------- positions


def _meta_positions() -> list[int]:
    fmt = ">HQQQQIIIQQQ16sQIQII"
    out, at = [], 0
    for code in struct.Struct(fmt).format[1:].replace("16s", "s"):
        width = 16 if code == "s" else struct.calcsize(">" + code)
        out.append(at + width - 1)  # the low byte of each field (the one that changes)
        at += width
    return [*out, at, HEAD_SIZE - 1]  # and the check


def _blob_positions(rows: list[tuple[bytes, bytes]], keys: DbKeys) -> Iterator[tuple[int, int]]:
    """(chunk number, offset in its value) for each position class of one LTX blob."""
    ltx = join_chunks(keys, rows)
    size = len(ltx)
    (index_len,) = struct.unpack_from(">Q", ltx, size - 24)
    index_at = size - 24 - index_len
    per = chunk_payload_size(LIMITS.max_value_bytes)
    ltx_offsets = {
        "header": [0, 4, 48, 99],
        "page body": [100, 110, (100 + index_at) // 2],
        "index": [index_at, size - 25],
        "index size": [size - 17],
        "trailer": [size - 16, size - 1],
    }
    for offsets in ltx_offsets.values():
        for off in offsets:
            yield off // per, off % per
    for n, (_, value) in enumerate(rows):  # the framing of every chunk
        yield n, len(value) - CHUNK_OVERHEAD
        yield n, len(value) - TAG_SIZE
        yield n, len(value) - 1


def flips(rows: Rows, keys: DbKeys) -> Iterator[tuple[str, bytes, Callable[[bytes], bytes]]]:
    """(case id, key, value -> damaged value) for every position class of every key."""

    def at(*offsets: int) -> Callable[[bytes], bytes]:
        def damage(value: bytes) -> bytes:
            out = bytearray(value)
            for o in offsets:
                if o < len(out):
                    out[o] ^= 0x5A
            return bytes(out)

        return damage

    blobs: dict[bytes, list[tuple[bytes, bytes]]] = {}
    for key, value in sorted(rows.items()):
        kind, loc = describe(keys, key)
        if kind in ("DELTA", "SHARD"):
            blobs.setdefault(key[:-4], []).append((key, value))
            continue
        if kind == "META":
            positions = _meta_positions()
        elif kind == "PIDX":
            positions = [7, 11, 12, len(value) - 1]
        elif kind == "X":
            positions = [7, 8, len(value) - 1]
        else:  # T: used, page numbers, check
            positions = [7, 11, len(value) - TAG_SIZE, len(value) - 1]
        for pos in positions:
            yield f"{kind} {loc} byte {pos}", key, at(pos)
        yield f"{kind} {loc} bytes 0+8", key, at(0, 8)
    for chunks in blobs.values():
        for n, pos in sorted(set(_blob_positions(chunks, keys))):
            key = chunks[n][0]
            kind, loc = describe(keys, key)
            yield f"{kind} {loc} byte {pos}", key, at(pos)
            yield f"{kind} {loc} bytes {pos}+8", key, at(pos, pos + 8)


# --------------------------------------------------------------------------- the check


def expect_right_or_corrupt(
    store: Store, model: dict[int, bytes], action: Callable[[Engine], object]
) -> bool:
    """Run ``action`` on a fresh engine: True if it raised CorruptionError (and wrote
    nothing), False if it succeeded (and then every page still reads right)."""
    before = rows_of(store)
    engine = Engine(store)
    try:
        action(engine)
    except CorruptionError as exc:
        assert exc.db == NAME and exc.kind in (
            "META",
            "PIDX",
            "DELTA",
            "SHARD",
            "X",
            "T",
            "HISTORY",
        )
        assert "sqlkv verify" in str(exc)
        assert rows_of(store) == before, "a CorruptionError left the store changed"
        return True
    try:
        head = engine.head(NAME)
        pgnos = list(range(1, 9))
        got = engine.get_pages(NAME, head.generation, pgnos).pages
    except CorruptionError:
        return True
    want = {p: model.get(p, ZERO) if p <= 7 else None for p in pgnos}
    assert got == want, "a read returned wrong page data"
    return False


def check_case(store: Store, model: dict[int, bytes], pristine: Rows, key: bytes) -> None:
    """With ``key`` damaged (as the store holds it now): reads, a compaction pass and a
    takeover each give the right pages or raise CorruptionError having written nothing."""
    damaged = rows_of(store).get(key)
    for action in (
        lambda e: e.get_pages(NAME, e.head(NAME).generation, list(range(1, 9))),
        lambda e: e.compact(NAME),
        lambda e: e.open(NAME),
    ):
        expect_right_or_corrupt(store, model, action)
        restore(store, pristine)
        put(store, key, damaged)  # the damaged state again, for the next action
    restore(store, pristine)


@pytest.fixture
def db(store_factory: StoreFactory) -> tuple[Store, dict[int, bytes], Rows]:
    store = store_factory(LIMITS)
    model = build(store)
    rows = rows_of(store)
    assert Engine(store).verify(NAME).ok
    return store, model, rows


def test_every_flipped_byte_class_of_every_key_is_caught(
    db: tuple[Store, dict[int, bytes], Rows],
) -> None:
    store, model, pristine = db
    keys = DbKeys(NAME)
    kinds = {"META", "PIDX", "DELTA", "SHARD", "X", "T", "HISTORY"}
    assert {describe(keys, k)[0] for k in pristine} == kinds
    assert len([k for k in pristine if k.startswith(keys.shard(0))]) >= 2
    cases = list(flips(pristine, keys))
    assert len(cases) > 100
    for case, key, damage in cases:
        value = pristine[key]
        assert damage(value) != value, case
        put(store, key, damage(value))
        report = Engine(store).verify(NAME)
        kind, loc = describe(keys, key)
        assert any(p.kind == kind and p.location == loc for p in report.problems), (
            f"{case}: verify reported {[str(p) for p in report.problems]}"
        )
        check_case(store, model, pristine, key)


def test_every_deleted_key_is_caught(db: tuple[Store, dict[int, bytes], Rows]) -> None:
    store, model, pristine = db
    keys = DbKeys(NAME)
    head_txid = Engine(store).head(NAME).head_txid
    for key in sorted(pristine):
        kind, loc = describe(keys, key)
        if kind == "META":
            continue  # no META: no database (DatabaseNotFound)
        put(store, key, None)
        assert not Engine(store).verify(NAME).ok, f"verify missed deleted {kind} {loc}"
        live = kind in ("PIDX", "SHARD") or (
            kind == "DELTA" and keys.delta_txid_part(key)[0] <= head_txid
        )
        if live:  # a key the reads need: never served as if it were not there
            engine = Engine(store)
            with pytest.raises(CorruptionError):
                engine.get_pages(NAME, engine.head(NAME).generation, list(range(1, 8)))
        check_case(store, model, pristine, key)


def test_a_damaged_value_is_not_folded_by_compaction(
    db: tuple[Store, dict[int, bytes], Rows],
) -> None:
    store, _, pristine = db
    keys = DbKeys(NAME)
    part = sorted(k for k in pristine if describe(keys, k)[0] == "DELTA")[0]
    damaged = bytearray(pristine[part])
    damaged[200] ^= 1
    put(store, part, bytes(damaged))
    with pytest.raises(CorruptionError) as caught:
        Engine(store).compact_until_done(NAME)
    assert caught.value.kind == "DELTA" and "chunk 0" in caught.value.location
    assert rows_of(store) == {**pristine, part: bytes(damaged)}


def test_pages_are_never_zero_or_partial_when_a_shard_chunk_is_damaged(
    db: tuple[Store, dict[int, bytes], Rows],
) -> None:
    store, _, pristine = db
    keys = DbKeys(NAME)
    chunk = keys.shard_chunk(0, 1)
    damaged = bytearray(pristine[chunk])
    damaged[len(damaged) // 2] ^= 0x80
    put(store, chunk, bytes(damaged))
    engine = Engine(store)
    gen = engine.head(NAME).generation
    with pytest.raises(CorruptionError) as caught:
        engine.get_pages(NAME, gen, [1, 3])
    assert (caught.value.kind, caught.value.location) == ("SHARD", "shard 0 chunk 1")
