"""etcd's history under sqlkv commits: how the cluster's disk use grows, and what auto-
compaction and defragmentation bring it back to.

Usage:
    python bench/bench_etcd_history.py [--etcd URL] [--seconds 60]

Runs the §7 ``oltp_small`` workload (small scale) over and over on the cluster given by
``--etcd`` or ``SQLKV_TEST_ETCD_URL`` for ``--seconds``, sampling every 5 s the members'
backend size (``dbSize`` of ``/v3/maintenance/status``, the bbolt file) and the store's
revision. Then compacts to the current revision and defragments every member, and reports
the sizes again. From the key and value bytes written per commit (every revision keeps
them until compacted) it extrapolates the history an operator keeps per hour of retention
at the measured commit rate.

The test cluster (``scripts/etcd-test-cluster``) runs ``--auto-compaction-mode periodic
--auto-compaction-retention 1m``; run longer than a minute to see the plateau it gives.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
import uuid

import sqlkv
from sqlkv.store import open_store
from sqlkv.store.etcd import EtcdStore
from sqlkv.workloads import WORKLOADS, Scale


def call(member: str, path: str, body: dict[str, object]) -> dict[str, object]:
    req = urllib.request.Request(
        f"http://{member}{path}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        answer: dict[str, object] = json.loads(resp.read())
        return answer


def sizes(members: list[str]) -> tuple[int, int]:
    """(largest member backend size in bytes, current revision)."""
    statuses = [call(m, "/v3/maintenance/status", {}) for m in members]
    size = max(int(str(s["dbSize"])) for s in statuses)
    rev = max(int(str(s["header"]["revision"])) for s in statuses)  # type: ignore[index]
    return size, rev


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--etcd", default=os.environ.get("SQLKV_TEST_ETCD_URL"))
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not args.etcd:
        print("give --etcd URL or set SQLKV_TEST_ETCD_URL", file=sys.stderr)
        return 2
    head, _, query = args.etcd.partition("?")
    url = f"{head.rstrip('/')}/history-{uuid.uuid4().hex[:8]}" + (f"?{query}" if query else "")
    store = open_store(url)
    assert isinstance(store, EtcdStore)
    members = [f"{h}:{p}" for h, p in store.config.endpoints]
    workload = WORKLOADS["oltp_small"]
    print("# etcd history under sqlkv commits\n")
    print(f"- cluster {store.url}, workload oltp_small (small), {args.seconds:.0f} s\n")
    print("| t s | commits | revision | backend MB |")
    print("|---:|---:|---:|---:|")
    start_size, start_rev = sizes(members)
    print(f"| 0 | 0 | {start_rev} | {start_size / 1e6:.1f} |")
    commits = 0
    started = time.monotonic()
    next_sample = started + 5
    n = 0
    try:
        while time.monotonic() - started < args.seconds:
            n += 1
            conn = sqlkv.connect(f"hist{n % 4}", store=store)
            if workload.setup is not None and n <= 4:
                workload.setup(conn, Scale.SMALL)
            workload.run(conn, Scale.SMALL)
            commits += conn.sqlkv_stats.commits
            conn.close()
            if time.monotonic() >= next_sample:
                size, rev = sizes(members)
                t = time.monotonic() - started
                print(f"| {t:.0f} | {commits} | {rev} | {size / 1e6:.1f} |", flush=True)
                next_sample += 5
        elapsed = time.monotonic() - started
        size, rev = sizes(members)
        call(members[0], "/v3/kv/compaction", {"revision": str(rev), "physical": True})
        for m in members:
            call(m, "/v3/maintenance/defragment", {})
        after, _ = sizes(members)
        live = sum(
            len(k) + len(v) for k, v in store.transact(lambda tr: tr.get_range(b"", b"\xff"))
        )
    finally:
        store.drop()
        store.close()
    rate = commits / elapsed
    # etcd keeps every revision's key and value until compacted: the history grows by
    # what the driver writes.
    per_commit = store.stats.bytes_written / max(commits, 1)
    print(
        f"\n- {commits} engine commits in {elapsed:.0f} s ({rate:.1f}/s), "
        f"{rev - start_rev} revisions"
    )
    print(
        f"- backend before compaction {size / 1e6:.1f} MB; "
        f"after compact + defrag {after / 1e6:.1f} MB"
    )
    print(f"- live key+value bytes of the run's databases {live / 1e6:.2f} MB")
    print(f"- history written: {per_commit / 1e3:.1f} kB of keys and values per commit")
    print(
        f"- one hour of history at {rate:.1f} commits/s: about "
        f"{per_commit * rate * 3600 / 1e9:.2f} GB (retention 1h keeps that much)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
