"""sqlkv on a 3-member etcd cluster while members fail: the leader SIGKILLed during a stream
of commits and of staged large commits, one member SIGSTOPped past the election timeout,
quorum lost and regained, the whole cluster restarted.

Each fault runs against the module's own cluster (``cluster`` fixture) while client streams
commit one row per transaction (and, for the leader kill, ~6 MB transactions that go through
commit_stage/commit_finalize). Afterwards a new owner reads everything back: no
acknowledged row is missing, none is there twice, ``PRAGMA integrity_check`` is ok. The
numbers of every fault are printed in the run's summary ("etcd failure tests").
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from cluster import Cluster, Stream, record

from sqlkv.store import open_store
from sqlkv.store.etcd import EtcdStore

# One pytest-xdist worker runs the module (its private cluster, a module fixture, starts once)
# and the other crash suites, one after another (docs/testing.md, "CI layout and timings").
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash")]

ELECTION_TIMEOUT_S = 1.0  # etcd's default --election-timeout


@pytest.fixture
def store(cluster: Cluster) -> Iterator[EtcdStore]:
    url = cluster.url.replace("sqlkv-test?", f"fail-{uuid.uuid4().hex[:8]}?") + "&timeout=4"
    s = open_store(url)
    assert isinstance(s, EtcdStore)
    yield s
    s.close()


def run_fault(
    name: str,
    cluster: Cluster,
    streams: list[Stream],
    fault: Callable[[], None],
    *,
    before_s: float = 1.5,
    after_s: float = 2.0,
) -> None:
    """Start the streams, inject ``fault`` (which also repairs), let them run on, verify."""
    for s in streams:
        s.start()
    try:
        time.sleep(before_s)
        acked_before = [len(s.acked) for s in streams]
        fault()
        cluster.wait_all_healthy()
        time.sleep(after_s)
    finally:
        for s in streams:
            s.stop()
    for s, before in zip(streams, acked_before, strict=True):
        result = s.verify()
        record(f"{name} [{s.db.split('-')[0]}]: " + " ".join(f"{k}={v}" for k, v in result.items()))
        assert result["lost"] == 0, s.errors[-5:]
        assert result["duplicates"] == 0
        assert result["integrity"] == "ok"
        assert len(s.acked) > before, f"no commit after the fault: {s.errors[-5:]}"


def small(store: EtcdStore) -> Stream:
    return Stream(store, f"small-{uuid.uuid4().hex[:8]}", payload=200)


def large(store: EtcdStore) -> Stream:
    return Stream(store, f"large-{uuid.uuid4().hex[:8]}", payload=6_000_000)


def test_leader_sigkilled_during_commits_and_staged_commits(
    cluster: Cluster, store: EtcdStore
) -> None:
    def fault() -> None:
        leader = cluster.leader()
        cluster.kill(leader)
        time.sleep(3 * ELECTION_TIMEOUT_S)  # the others elect a new leader meanwhile
        assert cluster.leader() != leader
        cluster.start(leader)

    run_fault("leader SIGKILL", cluster, [small(store), large(store)], fault, before_s=3.0)


def test_one_member_sigstopped_longer_than_an_election_timeout(
    cluster: Cluster, store: EtcdStore
) -> None:
    def fault() -> None:
        leader = cluster.leader()
        cluster.signal(leader, signal.SIGSTOP)
        try:
            time.sleep(4 * ELECTION_TIMEOUT_S)
        finally:
            cluster.signal(leader, signal.SIGCONT)

    run_fault("leader SIGSTOP 4 s", cluster, [small(store)], fault)


def test_quorum_lost_and_regained(cluster: Cluster, store: EtcdStore) -> None:
    def fault() -> None:
        leader = cluster.leader()
        others = [m for m in cluster.members if m != leader]
        victims = [leader, others[0]]  # the leader and one follower: one member is left
        for m in victims:
            cluster.kill(m)
        time.sleep(4.0)
        for m in victims:
            cluster.start(m)

    run_fault("quorum lost 4 s", cluster, [small(store)], fault)


def test_whole_cluster_restarted(cluster: Cluster, store: EtcdStore) -> None:
    def fault() -> None:
        for m in cluster.members:
            cluster.kill(m)
        time.sleep(1.0)
        for m in cluster.members:
            cluster.start(m)

    run_fault("whole cluster SIGKILL + restart", cluster, [small(store)], fault)
