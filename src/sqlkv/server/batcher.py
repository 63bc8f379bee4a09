"""Group commit in a server process: the COMMITs that arrive while one is landing land
together, in one store transaction (``engine/commit_group.py``), and each is answered as
soon as that transaction has landed.

A session (``session.py``) hands a decoded, authorized COMMIT to ``CommitBatcher.submit``
as a ``Job`` and goes back to reading its socket: the job's answer is sent by whoever
lands its group. While fewer than ``in_flight`` (1) groups are landing, the submitting
thread lands its own at once (no thread switch); otherwise jobs queue, and the
batcher's own thread lands them as the next group (in arrival order, at most
``max_group`` jobs, at most one per database: a second commit of a database waits for
the next group). So under load the batcher's thread commits for the connections, and
each connection's thread only reads and decodes.

The answer is sent without blocking (``Session.complete``); a client that does not read
its socket gets the rest from a thread of its own, so it never stalls the group. A session
reads its next frame only once its previous answer is out (a client may pipeline).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlkv.engine.commit_group import GroupedCommit, GroupReport, commit_group
from sqlkv.engine.engine import Engine
from sqlkv.logs import failure_fields
from sqlkv.server.protocol import MsgType, encode_answer

if TYPE_CHECKING:
    from sqlkv.server.server import EngineServer
    from sqlkv.server.session import Session

log = logging.getLogger("sqlkv.server")


@dataclass(eq=False)
class Job:
    """One COMMIT waiting for its group: what to land, and where its answer goes."""

    commit: GroupedCommit
    rid: int
    session: Session
    reserved: int  # bytes of the frame budget its frame holds until it is answered
    start: float  # perf_counter at its arrival (the request_seconds histogram)
    answered: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.answered.acquire()  # released once its answer is sent (or the peer is gone)

    def wait_answered(self) -> None:
        self.answered.acquire()
        self.answered.release()


class CommitBatcher:
    """Lands queued jobs in groups, one group at a time, with ``land(jobs)`` (which answers
    every job it is given, whatever happens)."""

    def __init__(
        self, land: Callable[[list[Job]], None], max_group: int, in_flight: int = 1
    ) -> None:
        self._land = land
        self.max_group = max_group
        self.in_flight = in_flight
        self._lock = threading.Lock()
        self._queue: deque[Job] = deque()
        self._landing = 0  # threads landing a group now (the batcher's thread included)
        self._thread_active = False  # the batcher's thread lands, or is about to
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(self, job: Job) -> None:
        """Queue ``job``; when no group is landing, land it now on this thread."""
        with self._lock:
            self._queue.append(job)
            if self._landing >= self.in_flight:
                return
            self._landing += 1
        self._land_next()
        with self._lock:
            if not self._queue or self._thread_active:  # nothing left, or the thread has it
                self._landing -= 1
                return
            self._thread_active = True  # this thread's place passes to the batcher's
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sqlkv-group-commit", daemon=True
                )
                self._thread.start()
        self._wake.set()  # what queued meanwhile: the batcher's thread lands it

    def close(self) -> None:
        """End the batcher's thread (the server has drained: nothing is queued)."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                return
            while True:
                self._land_next()
                with self._lock:
                    if not self._queue:
                        self._thread_active = False
                        self._landing -= 1
                        break

    def _land_next(self) -> None:
        group = self._take()
        if not group:  # another lander took the queue first
            return
        try:
            self._land(group)
        except Exception as exc:  # land answers every job itself; this is a bug, keep serving
            log.exception(
                "landing a commit group failed",
                extra=failure_fields(exc, databases=[job.commit.db for job in group]),
            )

    def _take(self) -> list[Job]:
        """The next group: queued jobs in order, one per database, at most ``max_group``."""
        with self._lock:
            group: list[Job] = []
            seen: set[str] = set()
            later: list[Job] = []
            while self._queue and len(group) < self.max_group:
                job = self._queue.popleft()
                if job.commit.db in seen:
                    later.append(job)
                else:
                    seen.add(job.commit.db)
                    group.append(job)
            self._queue.extendleft(reversed(later))
            return group


def land_group(server: EngineServer, jobs: list[Job]) -> None:
    """The server's ``land``: land the jobs' commits (in one store transaction where they
    can be), count the group, answer each job."""
    assert isinstance(server.engine, Engine)
    report = GroupReport()
    try:
        with server.engine_calls:
            outcomes = commit_group(server.engine, [job.commit for job in jobs], report)
    except Exception as exc:  # a bug: every job still gets an answer
        outcomes = [exc] * len(jobs)
    m = server.metrics
    m.commit_group_size.observe(len(jobs))
    if report.alone:
        m.commit_group_alone.inc(report.alone)
    if report.guard_retries:
        m.commit_group_guard_retries.inc(report.guard_retries)
    for job, outcome in zip(jobs, outcomes, strict=True):
        try:
            if isinstance(outcome, Exception):
                frame = server.failed(job.rid, "COMMIT", outcome)
            else:
                frame = encode_answer(job.rid, MsgType.COMMIT, outcome)
        except Exception as exc:  # a bug: the job is still answered
            frame = server.failed(job.rid, "COMMIT", exc)
        job.session.complete(job, frame)
