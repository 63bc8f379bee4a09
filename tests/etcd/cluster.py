"""A private 3-member etcd cluster for failure tests, started with scripts/etcd-test-cluster,
and a client workload that counts what it was told was committed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import apsw

import sqlkv
from sqlkv.errors import SqlkvError
from sqlkv.store import Store

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "etcd-test-cluster"
RESULTS: list[str] = []  # one line per fault, printed in the run's summary (conftest.py)


def record(line: str) -> None:
    RESULTS.append(line)
    print(line)


class Cluster:
    """Members m1..m3 on 127.0.0.1; kill, stop, continue and restart them by name."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        out = subprocess.run(
            [str(SCRIPT), "start", str(directory)], check=True, capture_output=True, text=True
        ).stdout
        env = dict(
            part.split("=", 1) for part in out.removeprefix("export ").strip().split(" ") if part
        )
        self.url = env["SQLKV_TEST_ETCD_URL"].strip("'")
        self.members: dict[str, str] = {}
        for line in (directory / "members").read_text().splitlines():
            name, client, _ = line.split()
            self.members[name] = client

    def pid(self, name: str) -> int:
        return int((self.dir / f"{name}.pid").read_text())

    def signal(self, name: str, sig: signal.Signals) -> None:
        os.kill(self.pid(name), sig)

    def kill(self, name: str) -> None:
        pid = self.pid(name)
        os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            while Path(f"/proc/{pid}").exists():
                time.sleep(0.01)

    def start(self, name: str) -> None:
        subprocess.run([str(SCRIPT), "member-start", str(self.dir), name], check=True)

    def status(self, name: str) -> dict[str, object] | None:
        request = urllib.request.Request(
            self.members[name] + "/v3/maintenance/status", data=b"{}", method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=1) as resp:
                answer: dict[str, object] = json.loads(resp.read())
                return answer
        except OSError:
            return None

    def leader(self, timeout: float = 30.0) -> str:
        """The name of the member that leads, once one does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ids = {}
            leader = None
            for name in self.members:
                st = self.status(name)
                if st:
                    ids[str(st["header"]["member_id"])] = name  # type: ignore[index]
                    leader = str(st.get("leader", "")) or leader
            if leader in ids:
                return ids[leader]
            time.sleep(0.1)
        raise AssertionError("no etcd leader within the timeout")

    def wait_all_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.status(n) for n in self.members):
                self.leader()
                return
            time.sleep(0.1)
        raise AssertionError("the etcd cluster did not recover within the timeout")

    def stop(self) -> None:
        subprocess.run([str(SCRIPT), "stop", str(self.dir)], check=False, capture_output=True)


@dataclass
class Stream:
    """Commits one row per transaction to database ``db`` until stopped, reconnecting after
    an error. Remembers which rows it was told are committed and the longest time between
    two acknowledgments (the client's worst stall)."""

    store: Store
    db: str
    payload: int = 64
    acked: list[int] = field(default_factory=list)
    attempted: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    worst_stall: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Stream:
        conn = sqlkv.connect(self.db, store=self.store)
        conn.execute("CREATE TABLE IF NOT EXISTS log(seq INTEGER, pad BLOB)")
        conn.close()
        self._thread = threading.Thread(target=self._run, name=f"stream-{self.db}")
        self._thread.start()
        return self

    def _run(self) -> None:
        conn: apsw.Connection | None = None
        seq = 0
        last = time.monotonic()
        while not self._stop.is_set():
            seq += 1
            self.attempted.append(seq)
            try:
                if conn is None:
                    conn = sqlkv.connect(self.db, store=self.store)
                conn.execute("INSERT INTO log VALUES (?, randomblob(?))", (seq, self.payload))
                self.acked.append(seq)
                now = time.monotonic()
                self.worst_stall = max(self.worst_stall, now - last)
                last = now
            except (apsw.Error, SqlkvError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                if conn is not None:
                    with contextlib.suppress(apsw.Error, SqlkvError):
                        conn.close()
                conn = None
                time.sleep(0.1)
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=120)
        assert not self._thread.is_alive(), "the stream did not stop"

    def verify(self) -> dict[str, object]:
        """Read everything back through a new owner: lost and duplicated rows, integrity."""
        conn = sqlkv.connect(self.db, store=self.store)
        try:
            counts = dict(conn.execute("SELECT seq, count(*) FROM log GROUP BY seq").fetchall())
            integrity = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
        return {
            "acknowledged": len(self.acked),
            "lost": sum(1 for s in self.acked if s not in counts),
            "duplicates": sum(1 for n in counts.values() if n > 1),
            "landed_unacknowledged": sum(1 for s in counts if s not in set(self.acked)),
            "errors": len(self.errors),
            "worst_stall_s": round(self.worst_stall, 2),
            "integrity": integrity[0][0] if integrity == [("ok",)] else str(integrity),
        }
