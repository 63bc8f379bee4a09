"""The two embedded candidates beyond the shared contract: kill safety, several processes,
reopening, bad paths, keys LMDB cannot hold natively, conflict-history pruning, map growth.

Child processes open the store by URL (``file://`` or ``lmdb://``) through ``open_store``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest
from drivers import StoreFactory

import sqlkv
from sqlkv.errors import (
    ConfigError,
    ConflictError,
    RetriesExhausted,
    StoreUnavailable,
    TransactionTooOld,
)
from sqlkv.store import Store, Transaction, open_store
from sqlkv.store.embedded import CHECKPOINT_BYTES, DB_FILE, EmbeddedStore
from sqlkv.store.lmdb_store import LmdbStore

EMBEDDED_KINDS = ["embedded", "lmdb"]
FileStoreClass = type[EmbeddedStore] | type[LmdbStore]
on_both = pytest.mark.parametrize("driver", EMBEDDED_KINDS, indirect=True)


def store_url(driver: str, tmp_path: Path) -> str:
    """The URL of the directory the ``store_factory`` fixture uses for ``driver``."""
    return ("file://" if driver == "embedded" else "lmdb://") + str(tmp_path / driver)


def run_child(tmp_path: Path, name: str, source: str, *args: str) -> subprocess.Popen[str]:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(source))
    # The child imports the same sqlkv as this process, whatever is installed.
    src = str(Path(sqlkv.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# --------------------------------------------------------------------------- SIGKILL

KEYS_PER_TXN = 5

WRITER = """
    import random, sys
    from sqlkv.store import open_store

    store = open_store(sys.argv[1])
    n = int(store.transact(lambda tr: tr.get(b"last")) or b"0")
    rng = random.Random(n)
    while True:
        n += 1
        # Several keys, some large, so that a kill often lands inside a commit.
        values = [
            b"%d/%d/" % (n, i) + rng.randbytes(rng.choice([10, 1000, 60_000]))
            for i in range(KEYS)
        ]

        def fn(tr, n=n, values=values):
            for i, v in enumerate(values):
                tr.set(b"txn/%08d/%d" % (n, i), v)
            tr.set(b"last", b"%d" % n)

        store.transact(fn)
        print(n, flush=True)
""".replace("KEYS", str(KEYS_PER_TXN))


def kill_writer_after(tmp_path: Path, url: str, lines: int, rng: random.Random) -> set[int]:
    """Start the writer, SIGKILL it once it acknowledged ``lines`` transactions (plus a
    random sliver of time); the transaction numbers it acknowledged."""
    child = run_child(tmp_path, "writer", WRITER, url)
    assert child.stdout is not None
    acked: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        while len(acked) < lines:
            line = child.stdout.readline()
            if not line:
                _, err = child.communicate(timeout=10)
                pytest.fail(f"writer exited early ({child.returncode}): {err}")
            acked.add(int(line))
            assert time.monotonic() < deadline, "writer too slow"
        time.sleep(rng.uniform(0, 0.02))
    finally:
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read()  # the buffered reader may hold lines already: read it
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    acked.update(int(x) for x in rest.split())  # printed before the kill: acknowledged
    return acked


def check_whole_transactions(store: Store, acked: set[int], kills: int) -> None:
    rows = store.transact(lambda tr: tr.get_range(b"txn/", b"txn0"))
    by_txn: dict[int, dict[int, bytes]] = {}
    for key, value in rows:
        _, n, i = key.split(b"/")
        by_txn.setdefault(int(n), {})[int(i)] = value
    for n, keys in by_txn.items():
        assert sorted(keys) == list(range(KEYS_PER_TXN)), f"transaction {n} is partial"
        for i, value in keys.items():
            assert value.startswith(b"%d/%d/" % (n, i))
    missing = acked - by_txn.keys()
    assert not missing, f"acknowledged transactions lost: {sorted(missing)[:10]}"
    # Only the transaction in flight at each kill may have landed unacknowledged.
    assert len(by_txn.keys() - acked) <= kills
    assert max(by_txn) == int(store.transact(lambda tr: tr.get(b"last")) or b"0")


@on_both
@pytest.mark.parametrize("lines", [1, 9, 40, 250])  # 250: past a checkpoint
def test_acknowledged_commits_survive_sigkill_and_none_is_partial(
    store_factory: StoreFactory, driver: str, tmp_path: Path, lines: int
) -> None:
    rng = random.Random(lines)
    url = store_url(driver, tmp_path)
    acked: set[int] = set()
    for kills in range(1, 4):  # kill, recover, write on, kill again
        acked |= kill_writer_after(tmp_path, url, lines, rng)
        store = store_factory()
        check_whole_transactions(store, acked, kills)
        store.transact(lambda tr: tr.set(b"after-kill", b"ok"))
        store.close()
    if driver == "embedded":
        conn = apsw.Connection(str(tmp_path / driver / DB_FILE))
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        conn.close()


# --------------------------------------------------------------------------- concurrency

INCREMENTER = """
    import sys, time
    from sqlkv.store import open_store

    store = open_store(sys.argv[1])
    print("ready", flush=True)
    sys.stdin.readline()  # start together

    def bump(tr):
        n = int(tr.get(b"counter") or b"0")
        time.sleep(0.001)  # widen the window between the read and the commit
        tr.set(b"counter", b"%d" % (n + 1))

    for _ in range(int(sys.argv[2])):
        store.transact(bump)
    print(store.stats.conflicts, flush=True)
"""


@on_both
def test_processes_incrementing_one_counter_never_lose_an_increment(
    store_factory: StoreFactory, driver: str, tmp_path: Path
) -> None:
    store = store_factory()  # creates the store before the children race to
    procs, each = 3, 100
    url = store_url(driver, tmp_path)
    children = [
        run_child(tmp_path, "incrementer", INCREMENTER, url, str(each)) for _ in range(procs)
    ]
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline() != "ready\n":
            _, err = child.communicate(timeout=30)
            pytest.fail(f"a child could not open the store: {err}")
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    conflicts = 0
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        conflicts += int(out)
    assert store.transact(lambda tr: tr.get(b"counter")) == b"%d" % (procs * each)
    assert conflicts > 0, "the children never raced; the test proves nothing"


@on_both
def test_two_store_objects_on_one_directory_never_lose_an_increment(
    store_factory: StoreFactory,
) -> None:
    stores = [store_factory(), store_factory()]

    def bump(tr: Transaction) -> None:
        n = int(tr.get(b"counter") or b"0")
        tr.set(b"counter", b"%d" % (n + 1))

    def work(store: Store) -> None:
        for _ in range(40):
            store.transact(bump)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].transact(lambda tr: tr.get(b"counter")) == b"160"


@on_both
def test_a_write_through_another_store_object_conflicts(store_factory: StoreFactory) -> None:
    a, b = store_factory(), store_factory()
    a.transact(lambda tr: tr.set(b"k", b"0"))
    tr = a.begin()
    try:
        tr.get(b"k")
        tr.set(b"k", b"from a")
        b.transact(lambda t: t.set(b"k", b"from b"))
        with pytest.raises(ConflictError):
            tr.commit()
    finally:
        tr.close()
    assert a.transact(lambda t: t.get(b"k")) == b"from b"


# --------------------------------------------------------------------------- open and reopen


@on_both
def test_reopen_after_close_keeps_the_data(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.transact(lambda tr: [tr.set(b"k%d" % i, bytes([i]) * i) for i in range(50)])
    store.transact(lambda tr: tr.clear_range(b"k1", b"k2"))
    expected = store.transact(lambda tr: tr.get_range(b"", b"\xff"))
    store.close()
    again = store_factory()
    assert again.transact(lambda tr: tr.get_range(b"", b"\xff")) == expected
    again.transact(lambda tr: tr.set(b"k1", b"back"))
    assert again.transact(lambda tr: tr.get(b"k1")) == b"back"


@pytest.mark.parametrize("cls", [EmbeddedStore, LmdbStore])
def test_fsync_mode_commits_and_reopens(tmp_path: Path, cls: FileStoreClass) -> None:
    with cls(tmp_path / "s", fsync=True) as store:
        store.transact(lambda tr: tr.set(b"k", b"v"))
    with cls(tmp_path / "s") as store:
        assert store.transact(lambda tr: tr.get(b"k")) == b"v"


@pytest.mark.parametrize("scheme", ["file://", "lmdb://", ""])
def test_a_file_where_the_directory_should_be_is_a_config_error(
    tmp_path: Path, scheme: str
) -> None:
    (tmp_path / "plain-file").write_bytes(b"not a directory")
    with pytest.raises(ConfigError, match="not a directory"):
        open_store(f"{scheme}{tmp_path / 'plain-file'}")
    with pytest.raises(ConfigError, match="cannot create"):
        open_store(f"{scheme}{tmp_path / 'plain-file' / 'below'}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories anyway")
@pytest.mark.parametrize("cls", [EmbeddedStore, LmdbStore])
def test_an_unwritable_directory_is_a_config_error(tmp_path: Path, cls: FileStoreClass) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError, match="not writable"):
            cls(locked)
    finally:
        locked.chmod(0o700)


@pytest.mark.parametrize("cls", [EmbeddedStore, LmdbStore])
def test_a_nonpositive_conflict_window_is_a_config_error(
    tmp_path: Path, cls: FileStoreClass
) -> None:
    with pytest.raises(ConfigError, match="conflict_window_s must be > 0"):
        cls(tmp_path / "s", conflict_window_s=0)


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    conn = apsw.Connection(str(tmp_path / "s" / DB_FILE))
    conn.execute("CREATE TABLE accounts(id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(ConfigError, match="not a sqlkv embedded store"):
        EmbeddedStore(tmp_path / "s")


@pytest.mark.parametrize("cls", [EmbeddedStore, LmdbStore])
def test_threads_opening_a_new_store_at_once_all_succeed(
    tmp_path: Path, cls: FileStoreClass
) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def open_and_write(i: int) -> None:
        try:
            barrier.wait()
            with cls(tmp_path / "new") as store:
                store.transact(lambda tr: tr.set(b"t%d" % i, b"ok"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with cls(tmp_path / "new") as store:
        assert len(store.transact(lambda tr: tr.get_range(b"t", b"u"))) == 8


def test_the_directory_is_created_with_its_parents(tmp_path: Path) -> None:
    with open_store(f"file://{tmp_path}/a/b/c") as store:
        store.transact(lambda tr: tr.set(b"k", b"v"))
    assert (tmp_path / "a" / "b" / "c" / DB_FILE).is_file()


# --------------------------------------------------------------------------- keys and ranges


def odd_keys(rng: random.Random) -> set[bytes]:
    """Keys around LMDB's 511-byte key limit, sharing long prefixes, and the empty key."""
    keys = {b"", b"\x00", b"a", b"\xff" * 3}
    for _ in range(150):
        stem = rng.choice([b"p" * 505, b"p" * 510 + b"q", b"z", b"p" * 511])
        tail = rng.randbytes(rng.choice([0, 1, 2, 5, 40, 700]))
        keys.add((stem + tail)[: rng.choice([509, 510, 511, 512, 513, 2000, 10_000])])
    return keys


@on_both
def test_empty_and_long_keys_keep_byte_order(store_factory: StoreFactory) -> None:
    rng = random.Random(3)
    keys = odd_keys(rng)
    model = {k: rng.randbytes(rng.randrange(0, 300)) for k in keys}
    store = store_factory()
    store.transact(lambda tr: [tr.set(k, v) for k, v in model.items()])
    ordered = sorted(model.items())
    assert store.transact(lambda tr: tr.get_range(b"", b"\xff" * 20)) == ordered
    assert store.transact(lambda tr: tr.get_many(list(model))) == list(model.values())
    bounds = sorted(keys | {b"p" * 600, b"p" * 511 + b"\x00"})
    for _ in range(60):
        begin, end = sorted(rng.sample(bounds, 2))
        limit, reverse = rng.choice([0, 1, 3, 50]), rng.random() < 0.5
        want = [(k, v) for k, v in ordered if begin <= k < end]
        want = want[::-1] if reverse else want
        got = store.transact(
            lambda tr, b=begin, e=end, n=limit, r=reverse: tr.get_range(b, e, limit=n, reverse=r)
        )
        assert got == (want[:limit] if limit else want), (len(begin), len(end), limit, reverse)
    begin, end = sorted(rng.sample(bounds, 2))
    store.transact(lambda tr: tr.clear_range(begin, end))
    store.transact(lambda tr: [tr.clear(k) for k in rng.sample(sorted(keys), 20)])
    deleted = {k for k in keys if begin <= k < end}
    left = store.transact(lambda tr: tr.get_range(b"", b"\xff" * 20))
    assert {k for k, _ in left} <= keys - deleted
    assert len(left) >= len(keys) - len(deleted) - 20


# --------------------------------------------------------------------------- conflict history


@pytest.mark.parametrize("cls", [EmbeddedStore, LmdbStore])
def test_conflict_history_is_pruned_and_old_readers_are_told(
    tmp_path: Path, cls: FileStoreClass
) -> None:
    with cls(tmp_path / "s", conflict_window_s=0.05) as store:
        store.transact(lambda tr: tr.set(b"watched", b"0"))
        old = store.begin()
        blind = store.begin()
        try:
            old.get(b"watched")
            old.set(b"x", b"1")
            blind.set(b"y", b"1")  # no serializable reads: nothing to check, never too old
            for i in range(5):
                store.transact(lambda tr, i=i: tr.set(b"other", b"%d" % i))
                time.sleep(0.03)
            with pytest.raises(TransactionTooOld):
                old.commit()
            blind.commit()
        finally:
            old.close()
            blind.close()
        assert log_rows(store) <= 3


def log_rows(store: Store) -> int:
    if isinstance(store, EmbeddedStore):
        conn = apsw.Connection(str(store.file))
        try:
            (count,) = conn.execute("SELECT count(*) FROM conflict_log").fetchall()[0]
            assert isinstance(count, int)
            return count
        finally:
            conn.close()
    assert isinstance(store, LmdbStore)
    sh = store._shared
    with sh.env.begin() as txn:
        return int(txn.stat(sh.log)["entries"])


# --------------------------------------------------------------------------- file growth


def test_the_wal_stays_bounded_while_transactions_read_and_commit(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s") as store:
        blob = os.urandom(100_000)

        def fn(tr: Transaction, i: int) -> None:
            tr.get(b"meta")  # a snapshot open when the commit starts
            tr.set(b"meta", b"%d" % i)
            for j in range(10):
                tr.set(b"chunk/%d" % j, blob[i:])

        for i in range(12 * CHECKPOINT_BYTES // 1_000_000):  # commits never pause
            store.transact(lambda tr, i=i: fn(tr, i))
        # Bounded: a checkpoint's first pass lets the WAL grow past CHECKPOINT_BYTES by
        # what commits meanwhile (more on a loaded machine); unbounded, it would be 12x.
        wal = Path(str(store.file) + "-wal")
        assert wal.stat().st_size <= 5 * CHECKPOINT_BYTES
        assert store.file.stat().st_size < 4_000_000


READER = """
    import sys, time
    from sqlkv.store import open_store

    store = open_store(sys.argv[1])
    tr = store.begin()
    tr.get(b"chunk/0")
    print("reading", flush=True)
    time.sleep(600)
"""


@on_both
def test_a_reader_killed_inside_its_snapshot_does_not_pin_space(
    store_factory: StoreFactory, driver: str, tmp_path: Path
) -> None:
    store = store_factory()
    blob = os.urandom(100_000)
    store.transact(lambda tr: [tr.set(b"chunk/%d" % j, blob) for j in range(10)])
    child = run_child(tmp_path, "reader", READER, store_url(driver, tmp_path))
    assert child.stdout is not None
    try:
        if child.stdout.readline() != "reading\n":
            pytest.fail(f"the reader did not start: {child.communicate(timeout=30)[1]}")
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    for i in range(250):  # 250 MB of rewrites of the same 1 MB
        store.transact(lambda tr, i=i: [tr.set(b"chunk/%d" % j, blob[i:]) for j in range(10)])
    disk = sum(f.stat().st_size for f in (tmp_path / driver).iterdir())
    assert disk < 100_000_000  # embedded: the WAL, bounded (above); LMDB: a few copies


# --------------------------------------------------------------------------- LMDB map


@pytest.fixture
def small_lmdb(tmp_path: Path) -> Iterator[LmdbStore]:
    store = LmdbStore(tmp_path / "small", map_size=1 << 20, resize_wait_s=0.2)
    yield store
    store.close()


def test_lmdb_grows_a_full_map(small_lmdb: LmdbStore) -> None:
    for n in range(6):
        small_lmdb.transact(
            lambda tr, n=n: [tr.set(b"%d/%d" % (n, i), os.urandom(90_000)) for i in range(10)]
        )
    assert small_lmdb._shared.env.info()["map_size"] > 5_000_000
    assert len(small_lmdb.transact(lambda tr: tr.get_range(b"", b"\xff"))) == 60


def test_lmdb_growth_waits_for_open_snapshots_then_gives_up(small_lmdb: LmdbStore) -> None:
    reader = small_lmdb.begin()  # an open snapshot: LMDB cannot remap under it
    try:
        with pytest.raises(RetriesExhausted) as info:
            small_lmdb.transact(
                lambda tr: [tr.set(b"%d" % i, os.urandom(90_000)) for i in range(20)],
                max_attempts=1,
            )
        assert isinstance(info.value.last, StoreUnavailable)
    finally:
        reader.close()
    small_lmdb.transact(lambda tr: [tr.set(b"%d" % i, os.urandom(90_000)) for i in range(20)])


def test_lmdb_store_objects_on_one_directory_share_one_environment(tmp_path: Path) -> None:
    a, b = LmdbStore(tmp_path / "s"), LmdbStore(tmp_path / "s")
    try:
        assert a._shared is b._shared
        a.transact(lambda tr: tr.set(b"k", b"v"))
        a.close()
        assert b.transact(lambda tr: tr.get(b"k")) == b"v"
    finally:
        a.close()
        b.close()
