"""Writers, readers and the compactor on one database at once."""

from __future__ import annotations

import threading

from compaction_support import page

from sqlkv.engine import Engine, EngineConfig
from sqlkv.errors import CompactionBehind
from sqlkv.store import Store

PAGES = 40


def version_of(data: bytes) -> int:
    return int(data.split(b" version ")[1].split(b";")[0])


def test_writers_readers_and_compactor_never_lose_or_rewind(store: Store) -> None:
    commits = 3000 if store.url.startswith("memory") else 400
    engine = Engine(store, EngineConfig(part_pages=16, max_live_deltas=64))
    opened = engine.open("db").head
    gen, head = opened.generation, opened.head_txid
    errors: list[str] = []
    done = threading.Event()
    acked: list[int] = []  # version i committed at txid acked[i]

    def writer() -> None:
        nonlocal head
        try:
            for i in range(commits):
                # Every commit rewrites a sliding window of pages with version i.
                pages = {p: page(i, p) for p in range(1 + i % 7, PAGES + 1, 3)}
                pages[1] = page(i, 1)
                while True:
                    try:
                        res = engine.commit("db", gen, head, pages, PAGES)
                        break
                    except CompactionBehind:
                        done.wait(0.001)
                assert res.head.head_txid > head
                head = res.head.head_txid
                acked.append(head)
        except Exception as exc:  # surfaced by the main thread
            errors.append(f"writer: {exc!r}")
        finally:
            done.set()

    def reader() -> None:
        last_txid = 0
        try:
            while not done.is_set():
                res = engine.get_pages("db", gen, list(range(1, PAGES + 1)))
                if res.head.head_txid < last_txid:
                    errors.append(f"head went back from {last_txid} to {res.head.head_txid}")
                last_txid = res.head.head_txid
                # Page 1 is written by every commit: no page may be newer than it.
                newest = version_of(res.pages[1] or b"") if res.head.db_size_pages else -1
                for p, data in res.pages.items():
                    if data and data != bytes(4096) and version_of(data) > newest:
                        errors.append(f"page {p} is newer than page 1: torn snapshot")
        except Exception as exc:
            errors.append(f"reader: {exc!r}")

    def compactor() -> None:
        try:
            while not done.is_set():
                engine.compact("db")
        except Exception as exc:
            errors.append(f"compactor: {exc!r}")

    threads = [threading.Thread(target=f) for f in (writer, reader, reader, compactor)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors[:5]
    assert len(acked) == commits
    final = engine.get_pages("db", gen, list(range(1, PAGES + 1)))
    assert final.head.head_txid == acked[-1]
    last = commits - 1
    expected = {p: page(last, p) for p in range(1 + last % 7, PAGES + 1, 3)} | {1: page(last, 1)}
    for p, data in expected.items():
        assert final.pages[p] == data
    engine.close()
