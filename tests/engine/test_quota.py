"""Storage quota: a commit that would exceed it is refused and changes nothing; a commit
that frees space is allowed even over the quota."""

from __future__ import annotations

import random

import pytest
from engine_support import (
    EngineFactory,
    Owner,
    check_invariants,
    db_rows,
    edit_head,
    page_of,
    random_page,
)

from sqlkv.errors import QuotaExceeded
from sqlkv.store import Store

QUOTA = 200_000


@pytest.fixture
def quota_owner(make_engine: EngineFactory) -> Owner:
    return Owner.open(make_engine(default_quota_bytes=QUOTA), "db")


def test_new_database_gets_the_default_quota(quota_owner: Owner) -> None:
    assert quota_owner.engine.head("db").storage_quota == QUOTA


def test_commit_over_quota_is_refused_and_changes_nothing(quota_owner: Owner, store: Store) -> None:
    rng = random.Random(3)
    quota_owner.commit({p: random_page(rng) for p in range(1, 31)})  # ~123 kB
    before = db_rows(store, "db")
    with pytest.raises(QuotaExceeded) as info:
        quota_owner.commit({p: random_page(rng) for p in range(31, 61)})
    assert info.value.quota == QUOTA
    assert info.value.would_use > QUOTA
    assert db_rows(store, "db") == before
    quota_owner.assert_reads_back()


def test_staging_over_quota_is_refused_and_changes_nothing(
    quota_owner: Owner, store: Store
) -> None:
    """Staged bytes count against the quota when they are staged, not only at finalize."""
    rng = random.Random(4)
    e, g = quota_owner.engine, quota_owner.generation
    txid = e.commit_stage("db", g, None, 0, {p: random_page(rng) for p in range(1, 11)}).txid
    before = db_rows(store, "db")
    with pytest.raises(QuotaExceeded):
        e.commit_stage("db", g, txid, 1, {p: random_page(rng) for p in range(11, 61)})
    assert db_rows(store, "db") == before
    e.commit_finalize("db", g, quota_owner.head_txid, txid, 10)
    check_invariants(store, "db")


def test_commit_within_quota_is_allowed_up_to_it(quota_owner: Owner, store: Store) -> None:
    for n in range(40):
        try:
            quota_owner.commit({n + 1: page_of(n)})
        except QuotaExceeded:
            break
    head = check_invariants(store, "db")
    assert head.storage_used <= QUOTA


def test_commit_that_frees_space_is_allowed_over_quota(owner: Owner, store: Store) -> None:
    rng = random.Random(5)
    owner.commit({p: random_page(rng) for p in range(1, 101)})
    used = check_invariants(store, "db").storage_used
    edit_head(store, "db", storage_quota=used // 2)  # the operator lowered the quota
    before = db_rows(store, "db")
    with pytest.raises(QuotaExceeded):
        owner.commit({101: page_of(1)})  # growth
    assert db_rows(store, "db") == before

    result = owner.commit({}, size=10)  # frees 90 PIDX rows

    assert result.head.storage_used < used
    assert result.head.storage_used > result.head.storage_quota
    owner.assert_reads_back()
    check_invariants(store, "db")


def test_rewrite_that_does_not_grow_is_accepted_at_quota(owner: Owner, store: Store) -> None:
    """A DELETE rewrites pages without growing the database: accepted at the quota."""
    owner.commit({p: page_of(p) for p in range(1, 101)})
    used = check_invariants(store, "db").storage_used
    edit_head(store, "db", storage_quota=used)
    owner.commit({p: page_of(-p) for p in range(1, 51)})  # same size, same compressibility
    owner.assert_reads_back()
    check_invariants(store, "db")


def test_rewrite_into_larger_copies_is_refused_at_quota(owner: Owner, store: Store) -> None:
    """Same page count but incompressible copies of compressible pages would grow it."""
    rng = random.Random(6)
    owner.commit({p: page_of(p) for p in range(1, 101)})
    used = check_invariants(store, "db").storage_used
    edit_head(store, "db", storage_quota=used)
    before = db_rows(store, "db")
    with pytest.raises(QuotaExceeded):
        owner.commit({p: random_page(rng) for p in range(1, 51)})
    assert db_rows(store, "db") == before
