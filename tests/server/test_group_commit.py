"""Group commit in the server (``server/batcher.py``): COMMITs that arrive while a group
lands are landed together, one per database, in arrival order; every client gets its own
answer and its pages back, through a real ``sqlkv serve``.
"""

from __future__ import annotations

import os
import re
import threading
import urllib.request
from typing import Any, cast

from server_support import HOST

from sqlkv.engine.commit_group import GroupedCommit
from sqlkv.server import RemoteEngine
from sqlkv.server.batcher import CommitBatcher, Job


def job(db: str) -> Job:
    commit = GroupedCommit(db, 1, 0, {1: b"x"}, 1)
    return Job(commit, 0, cast(Any, None), 0, 0.0)


def test_commits_arriving_during_a_group_land_as_the_next_group_one_per_database() -> None:
    groups: list[list[str]] = []
    landing, release = threading.Event(), threading.Event()

    def land(jobs: list[Job]) -> None:
        groups.append([j.commit.db for j in jobs])
        if len(groups) == 1:
            landing.set()
            assert release.wait(10)
        for j in jobs:
            j.answered.release()

    batcher = CommitBatcher(land, max_group=3)
    first = threading.Thread(target=batcher.submit, args=(job("a"),))
    first.start()
    assert landing.wait(10)
    queued = [job(db) for db in ("b", "c", "b", "d", "e")]
    for j in queued:
        batcher.submit(j)  # a group is landing: each only queues, on this thread
    assert groups == [["a"]]
    release.set()
    first.join(10)
    for j in queued:
        j.wait_answered()
    batcher.close()
    # in arrival order, one commit per database, at most max_group: the second "b" waits
    assert groups == [["a"], ["b", "c", "d"], ["b", "e"]]


def test_concurrent_commits_through_the_server_land_in_groups(servers: Any, store_dir: str) -> None:
    server = servers(store_dir, extra=("--workers", "1", "--no-compaction"))
    clients, rounds = 6, 15
    page = os.urandom(4096)
    errors: list[BaseException] = []
    heads: dict[str, int] = {}
    start = threading.Barrier(clients)

    def client(i: int) -> None:
        db = f"grp{i}"
        try:
            with RemoteEngine(server.url) as remote:
                head = remote.open(db).head
                gen, txid = head.generation, head.head_txid
                start.wait(30)
                for r in range(rounds):
                    data = bytes([i, r]) + page[2:]
                    result = remote.commit(db, gen, txid, {1: data}, 1, commit_id=os.urandom(16))
                    assert result.head.head_txid == txid + 1
                    txid = result.head.head_txid
                    assert remote.get_pages(db, gen, [1]).pages[1] == data
                heads[db] = txid
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[0]
    assert len(heads) == clients
    url = f"http://{HOST}:{server.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    found = re.search(r"^sqlkv_server_commit_group_size_sum (\S+)$", text, re.M)
    groups = re.search(r"^sqlkv_server_commit_group_size_count (\S+)$", text, re.M)
    assert found and groups
    assert float(found.group(1)) == clients * rounds  # every COMMIT went through a group
    assert float(groups.group(1)) <= clients * rounds
