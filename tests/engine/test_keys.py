"""Key layout: two databases never share keys, whatever their names (prefixes, NUL bytes)."""

from __future__ import annotations

import struct

from engine_support import Owner, check_invariants, db_rows, page_of
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlkv.engine import Engine
from sqlkv.engine.keys import U32_END, U64_END, DbKeys
from sqlkv.keyspace import FORMAT_V2, decode_db_prefix
from sqlkv.store import Store

names = st.text(
    alphabet=st.sampled_from(["\x00", "\x01", "a", "b", "\xff", "\u00ff", "/", "\U0001f600"]),
    min_size=1,
    max_size=6,
) | st.text(min_size=1, max_size=20)

# valid names (the engine refuses NUL and control characters: sqlkv.keyspace's name rule)
# whose key bytes share prefixes; names with NUL bytes are covered by the property tests
# of this file on ``DbKeys``, whose encoding works for any string
TRICKY_NAMES = ["a", "ab", "a b", "a!", "aa", "a.b", "a-", "ÿ", "aÿ", "a\U0001f600"]


def extreme_keys(keys: DbKeys) -> list[bytes]:
    """The smallest and largest key of every kind the engine builds for one database."""
    top32, top64 = U32_END - 1, U64_END - 1
    return [
        keys.meta,
        keys.pidx(0),
        keys.pidx(top32),
        keys.delta_chunk(0, 0, 0),
        keys.delta_chunk(top64, top32, top32),
        keys.shard_chunk(0, 0),
        keys.shard_chunk(top32, top32),
        keys.stage(0, 0),
        keys.stage(top64, top32),
        *keys.pidx_range(),
        *keys.shard_range(),
        *keys.stage_range(),
        *keys.deltas_from(0),
    ]


@settings(max_examples=400, deadline=None)
@given(names, names)
def test_two_databases_have_disjoint_key_ranges(a: str, b: str) -> None:
    ka, kb = DbKeys(a), DbKeys(b)
    (a_lo, a_hi), (b_lo, b_hi) = ka.all_range(), kb.all_range()
    assert a_lo < a_hi
    if a == b:
        assert (a_lo, a_hi) == (b_lo, b_hi)
        return
    assert a_hi <= b_lo or b_hi <= a_lo, f"ranges of {a!r} and {b!r} overlap"
    for key in extreme_keys(ka)[:9]:  # real keys: inside a's range, outside b's
        assert a_lo <= key < a_hi
        assert not b_lo <= key < b_hi
    for key in extreme_keys(ka)[9:]:  # range bounds stay within the database's range
        assert a_lo <= key <= a_hi


@settings(max_examples=200, deadline=None)
@given(names)
def test_every_key_decodes_back_to_its_database_name(name: str) -> None:
    keys = DbKeys(name)
    for key in extreme_keys(keys)[:9]:
        fmt, decoded, length = decode_db_prefix(key)
        assert (fmt, decoded, key[:length]) == (FORMAT_V2, name, keys.prefix)


def test_integers_in_keys_sort_numerically() -> None:
    keys = DbKeys("db")
    pgnos = [0, 1, 255, 256, 65536, U32_END - 1]
    assert sorted(keys.pidx(p) for p in pgnos) == [keys.pidx(p) for p in pgnos]
    txids = [0, 1, 255, 256, 1 << 40, U64_END - 1]
    assert sorted(keys.delta_chunk(t, 0, 0) for t in txids) == [
        keys.delta_chunk(t, 0, 0) for t in txids
    ]
    assert keys.pidx_pgno(keys.pidx(123456)) == 123456
    assert keys.delta_txid_part(keys.delta_chunk(77, 5, 9)) == (77, 5)
    assert keys.shard_id(keys.shard_chunk(42, 3)) == 42
    assert keys.stage_txid_part(keys.stage(9, 0x10003)) == (9, 0x10003)
    assert struct.unpack(">I", keys.pidx(7)[-4:]) == (7,)


def test_databases_whose_names_share_key_prefixes_never_see_each_others_pages(
    engine: Engine, store: Store
) -> None:
    owners = [Owner.open(engine, name) for name in TRICKY_NAMES]
    for n, owner in enumerate(owners):
        owner.commit({p: page_of(n * 100 + p) for p in range(1, n + 2)}, size=n + 3)
    for n, owner in enumerate(owners):
        owner.commit({}, size=n + 2)  # a shrink clears ranges: it must stay in its own
    for owner in owners:
        owner.assert_reads_back()
        check_invariants(store, owner.name)
        for key in db_rows(store, owner.name):
            assert decode_db_prefix(key)[1] == owner.name
    total = sum(len(db_rows(store, o.name)) for o in owners)
    everything = store.transact(lambda tr: tr.get_range(b"", b"\xff", snapshot=True))
    assert total == len([k for k, _ in everything if k[:1] == FORMAT_V2])
