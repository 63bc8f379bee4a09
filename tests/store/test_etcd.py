"""The etcd driver beyond the shared contract: URLs, nesting past --max-txn-ops, the
precision of its range compares, limits from the request size, and lost connections."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from drivers import etcd_url, unique_etcd_url

from sqlkv.errors import CommitUnknown, ConfigError, ConflictError, LimitExceeded, StoreUnavailable
from sqlkv.store import Limits, Transaction, open_store
from sqlkv.store.etcd import EtcdStore, default_limits, nest
from sqlkv.store.etcd_client import parse_url


@pytest.fixture
def url() -> str:
    base = etcd_url()
    if base is None:
        pytest.skip("etcd tests need SQLKV_TEST_ETCD_URL (set by scripts/test; required in CI)")
    return unique_etcd_url(base)


def open_etcd(url: str, **options: str) -> EtcdStore:
    extra = "&".join(f"{k}={v}" for k, v in options.items())
    store = open_store(url + ("&" if "?" in url else "?") + extra if extra else url)
    assert isinstance(store, EtcdStore)
    return store


@pytest.fixture
def store(url: str) -> Iterator[EtcdStore]:
    s = open_etcd(url)
    yield s
    s.drop()
    s.close()


# ---------------------------------------------------------------------------- URLs


def test_url_names_members_prefix_auth_and_options() -> None:
    c = parse_url("etcds://app:s%40cret@h1:2379,h2,[::1]:4001/tenants/a?ca=/ca.pem&timeout=3")
    assert c.endpoints == (("h1", 2379), ("h2", 2379), ("::1", 4001))
    assert c.prefix == b"tenants/a/"
    assert (c.tls, c.user, c.password, c.ca, c.timeout_s) == (True, "app", "s@cret", "/ca.pem", 3)
    assert "s@cret" not in c.public_url and "cret" not in repr(c)


@pytest.mark.parametrize(
    "bad",
    [
        "etcd://h1:2379",  # no prefix
        "etcd://h1:notaport/p",
        "etcd://h1/p?bogus=1",
        "etcd://h1/p?max_txn_ops=1",
        "etcd://h1/p?cert=/c.pem",  # cert without key
    ],
)
def test_bad_urls_are_refused_with_the_reason(bad: str) -> None:
    with pytest.raises(ConfigError):
        parse_url(bad)


def test_limits_follow_the_request_size() -> None:
    assert default_limits(parse_url("etcd://h/p?max_request_bytes=16777216")) == Limits()
    small = default_limits(parse_url("etcd://h/p"))  # etcd's default 1.5 MiB
    assert small.max_transaction_bytes == int(1_572_864 * 0.6)
    assert small.max_value_bytes == 100_000


# ---------------------------------------------------------------------------- nesting


def budget_ok(txn: dict[str, object], budget: int) -> int:
    """Check a Txn body the way etcd does; returns the operations it holds."""
    compares = txn.get("compare", [])
    success = txn["success"]
    assert isinstance(compares, list) and isinstance(success, list)
    count = max(len(compares), len(success))
    assert count <= budget
    held = 0
    for op in success:
        inner = op.get("request_txn")
        held += budget_ok(inner, budget - count) if inner else 1
    return held


@pytest.mark.parametrize(
    ("ops", "compares", "max_ops"), [(60, 2, 16), (5000, 3, 128), (9, 9, 9), (50_000, 0, 128)]
)
def test_nest_fits_etcds_per_level_budget(ops: int, compares: int, max_ops: int) -> None:
    body = nest([{"c": i} for i in range(compares)], [{"o": i} for i in range(ops)], max_ops)
    assert budget_ok(body, max_ops) == ops


def test_nest_refuses_more_compares_than_one_level_holds() -> None:
    with pytest.raises(LimitExceeded):
        nest([{"c": i} for i in range(129)], [], 128)


def test_commits_past_max_txn_ops_in_writes(url: str) -> None:
    store = open_etcd(url, max_txn_ops="32")
    try:
        store.transact(lambda tr: [tr.set(b"k%03d" % i, b"v%d" % i) for i in range(300)])

        def rewrite(tr: Transaction) -> int:
            rows = tr.get_range(b"k", b"l", snapshot=True)
            for k, v in rows:
                tr.set(k, v + b"!")
            tr.clear_range(b"k010", b"k020")
            return len(rows)

        assert store.transact(rewrite) == 300
        rows = store.transact(lambda tr: tr.get_range(b"k", b"l"))
        assert len(rows) == 290 and all(v.endswith(b"!") for _, v in rows)
    finally:
        store.drop()
        store.close()


def test_a_change_to_any_key_of_a_large_read_range_fails_the_commit(store: EtcdStore) -> None:
    store.transact(lambda tr: [tr.set(b"k%04d" % i, b"v") for i in range(2000)])
    for n, victim in enumerate((b"k0000", b"k1999")):
        t1 = store.begin()
        assert len(t1.get_range(b"k", b"l")) == 2000 - n
        t1.set(b"summary", b"x")
        store.transact(lambda tr, v=victim: tr.clear(v))
        with pytest.raises(ConflictError):
            t1.commit()
        t1.close()
    assert store.transact(lambda tr: tr.get(b"summary")) is None


def test_a_range_read_conflicts_only_with_changes_inside_it(store: EtcdStore) -> None:
    store.transact(lambda tr: [tr.set(b"q1", b"a"), tr.set(b"r1", b"x")])
    t1 = store.begin()
    t1.get_range(b"q", b"r")
    t1.set(b"summary", b"1")
    store.transact(lambda tr: [tr.clear(b"r1"), tr.set(b"p1", b"new"), tr.set(b"r", b"edge")])
    t1.commit()  # nothing in [q, r) changed
    assert store.transact(lambda tr: tr.get(b"summary")) == b"1"


def test_a_key_deleted_and_created_again_conflicts(store: EtcdStore) -> None:
    store.transact(lambda tr: tr.set(b"k", b"1"))
    t1 = store.begin()
    assert t1.get(b"k") == b"1"
    t1.set(b"seen", b"1")
    store.transact(lambda tr: tr.clear(b"k"))
    store.transact(lambda tr: tr.set(b"k", b"1"))
    with pytest.raises(ConflictError):
        t1.commit()
    t1.close()


def test_set_inside_a_cleared_range_is_one_txn(store: EtcdStore) -> None:
    store.transact(lambda tr: [tr.set(b"c%d" % i, b"old") for i in range(6)])

    def fn(tr: Transaction) -> None:
        tr.clear_range(b"c", b"d")
        tr.set(b"c2", b"new")
        tr.set(b"c4", b"new")
        tr.clear(b"c3")  # inside the cleared range already

    store.transact(fn)
    assert store.transact(lambda tr: tr.get_range(b"", b"\xff")) == [
        (b"c2", b"new"),
        (b"c4", b"new"),
    ]


# ---------------------------------------------------------------------------- limits


def test_a_read_set_over_the_request_size_is_refused_before_sending(url: str) -> None:
    store = open_etcd(url, max_request_bytes="65536")
    try:
        keys = [b"key-%05d-" % i + b"x" * 200 for i in range(400)]
        for i in range(0, len(keys), 100):
            store.transact(lambda tr, ks=keys[i : i + 100]: [tr.set(k, b"") for k in ks])

        def fn(tr: Transaction) -> None:
            tr.get_many(keys)  # 400 compares of ~230 bytes
            tr.set(b"out", b"1")

        with pytest.raises(LimitExceeded) as info:
            store.transact(fn)
        assert info.value.what == "transaction"
        assert store.transact(lambda tr: tr.get(b"out")) is None
    finally:
        store.drop()
        store.close()


# ---------------------------------------------------------------------------- connections


def test_no_member_reachable_is_store_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    store = open_store(f"etcd://127.0.0.1:{port}/p?timeout=2")
    with pytest.raises(StoreUnavailable) as info:
        store.begin().get(b"k")
    assert not isinstance(info.value, CommitUnknown)
    assert info.value.retryable and "quorum" in str(info.value)


def test_a_commit_whose_answer_is_lost_is_commit_unknown() -> None:
    """A member that reads the request and closes the connection without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    store = open_store(f"etcd://127.0.0.1:{port}/p?timeout=5")
    try:
        with pytest.raises(CommitUnknown):
            store.transact(lambda tr: tr.set(b"k", b"v"))
    finally:
        t.join(5)
        listener.close()
        store.close()
