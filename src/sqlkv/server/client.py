"""``RemoteEngine``: ``EngineApi`` over the network, with connection reuse, timeouts,
retries and failover across engine nodes.

    engine = connect_engine("sqlkv://10.0.0.5:7878,10.0.0.6:7878", token="s3cr3t")
    conn = sqlkv.connect("orders", engine=engine)

One request is one engine call (the protocol adds only a HELLO per new connection).
Connections are pooled per node and reused; each carries one request at a time, so the
engine is safe to share between threads (concurrent calls use separate connections).

Retries. A *transport* failure (connection refused or reset, a timeout, the server's
``ServerShuttingDown``) is retried with exponential backoff, moving to the next listed node
each time (failover); the answer's own errors (``FenceMismatch``, ``QuotaExceeded``, ...)
are raised unchanged, never retried here. Whether a request may be sent again depends on
what it does:

- ``open``, ``get_pages``, ``head``, the read-only history calls (``snapshot``,
  ``read_at``, ``changes_since``), HEALTH and ``commit_stage`` (a lost stage answer is
  rewritten under the same txid/seq, or leaves an abandoned txid that takeover removes):
  always retried;
- ``commit`` / ``commit_finalize`` *with* a ``commit_id``: the same request is sent again;
  the engine answers ``already_applied=True`` when the first copy had landed, so it applies
  once;
- ``commit`` / ``commit_finalize`` *without* ``commit_id``: retried only when it certainly
  did not run (the connection failed before the request was sent, or the server answered
  ``ServerShuttingDown``); after that, ``CommitOutcomeUnknown`` (not retryable): read
  ``head()`` to find out.

When every attempt failed, ``TransportError`` (retryable: the VFS retries and settles a
commit by its commit id). A failed attempt always moves the next call to the next node.

Stalled nodes. A node that is up but makes no progress (a SIGSTOPped or wedged process, a
machine paging to death) would hold a request for the whole ``timeout``. So the client
watches progress instead: whenever ``stall_timeout`` (0.5 s) passes without a byte sent or
received on a request, it probes that node with HEALTH on a fresh connection (answered by
the server's event loop, not its busy engine threads). A node that answers the probe is
working — a 50 MiB commit or a slow store takes as long as it takes, up to ``timeout`` —
and one that does not answer within ``stall_timeout`` is treated as down: the request
fails over, after at most about twice ``stall_timeout``. A commit sent to the stalled node
is in doubt; it carries its ``commit_id`` and is sent to the next node, whose engine
answers ``already_applied`` if the stalled copy had landed; a copy that runs when the
stalled node wakes up expects the old head and is refused with ``FenceMismatch``, so the
commit applies once. Connect + HELLO are watched the same way.

Retry budget under the VFS: ``sqlkv.connect(engine="sqlkv://...")`` builds its
``RemoteEngine`` with ``attempts`` = the number of nodes, so each VFS attempt is one pass
over the nodes and the VFS alone owns retries and backoff (``retry_attempts``, default 6):
at most ``retry_attempts * nodes`` requests, each bounded by ``timeout``, rather than
VFS attempts x RemoteEngine attempts. A ``RemoteEngine`` passed in as an object keeps its
own ``attempts``; give it ``attempts=len(nodes)`` for the same budget.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from sqlkv.engine.api import (
    ChangesResult,
    CommitResult,
    HistoryEntry,
    OpenResult,
    Pages,
    PagesResult,
    SnapshotResult,
    StageResult,
)
from sqlkv.engine.head import Head
from sqlkv.engine.retention import check_window
from sqlkv.errors import (
    CommitOutcomeUnknown,
    CommitTooLarge,
    ConfigError,
    InvalidRequest,
    ProtocolError,
    ServerShuttingDown,
    TransportError,
)
from sqlkv.retry import backoff
from sqlkv.server.node import Lost, Node, NodeConnection, open_connection, parse_engine_url
from sqlkv.server.protocol import (
    DEFAULT_MAX_FRAME,
    LENGTH,
    REQUEST_TYPE,
    Answer,
    ChangesRequest,
    CommitRequest,
    FinalizeRequest,
    GetPagesRequest,
    HeadRequest,
    Health,
    HealthOk,
    HistoryAnswer,
    HistoryRequest,
    LabelRequest,
    MsgType,
    OpenRequest,
    ReadAtRequest,
    Request,
    ResolveRequest,
    RetentionAnswer,
    RetentionRequest,
    SaveHintRequest,
    SetRetentionRequest,
    SnapshotRequest,
    StageRequest,
    TxidAnswer,
    decode_answer,
    encode_request,
)

DEFAULT_STALL_TIMEOUT = 0.5


class Retry(Enum):
    ALWAYS = "always"  # idempotent: send again freely
    UNSENT = "unsent"  # only when it certainly did not run


@dataclass
class RemoteStats:
    """What this client sent: ``requests`` counts every attempt (retries included)."""

    requests: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    failovers: int = 0
    probes: int = 0  # HEALTH probes of a node that made no progress
    stalls: int = 0  # requests given up because their node stalled
    connects: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class RemoteEngine:
    """``EngineApi`` over the network. Thread-safe; ``close()`` when done.

    - ``url``: ``sqlkv://host:port[,host2:port2...]``; failover follows the list's order.
    - ``token``: sent in HELLO (None sends an empty token, for servers without auth).
    - ``timeout``: seconds to wait for one answer; ``connect_timeout`` for connect + HELLO.
    - ``stall_timeout``: seconds without progress after which the node is probed, and the
      probe's own deadline; a node that fails the probe is treated as down (failover in
      about twice this).
    - ``attempts``: tries per call, over all nodes (default ``max(4, 2 * nodes)``).
    - ``backoff_s`` / ``max_backoff_s``: exponential backoff once every node failed in a row.
    - ``pool_size``: idle connections kept per node.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        timeout: float = 30.0,
        *,
        connect_timeout: float = 5.0,
        stall_timeout: float = DEFAULT_STALL_TIMEOUT,
        attempts: int | None = None,
        backoff_s: float = 0.05,
        max_backoff_s: float = 1.0,
        pool_size: int = 8,
        max_frame: int = DEFAULT_MAX_FRAME,
        client_name: str | None = None,
    ) -> None:
        self.nodes = parse_engine_url(url)
        self.url = url
        self.attempts = attempts if attempts is not None else max(4, 2 * len(self.nodes))
        if self.attempts < 1 or timeout <= 0 or connect_timeout <= 0 or pool_size < 0:
            raise ConfigError(
                "attempts must be >= 1, timeouts > 0 and pool_size >= 0 "
                f"(got attempts={self.attempts}, timeout={timeout}, "
                f"connect_timeout={connect_timeout}, pool_size={pool_size})"
            )
        if not stall_timeout > 0:
            raise ConfigError(f"stall_timeout must be > 0 seconds, got {stall_timeout}")
        if not 0 <= backoff_s <= max_backoff_s:
            raise ConfigError("backoff must satisfy 0 <= backoff_s <= max_backoff_s")
        self.token = (token or "").encode("utf-8")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.stall_timeout = stall_timeout
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.pool_size = pool_size
        self.max_frame = max_frame
        self.client_name = client_name or f"sqlkv-client/{socket.gethostname()}:{os.getpid()}"
        self.stats = RemoteStats()
        self._lock = threading.Lock()
        self._idle: dict[Node, list[NodeConnection]] = {n: [] for n in self.nodes}
        self._current = 0
        self._closed = False

    # ------------------------------------------------------------------ EngineApi

    def open(
        self,
        db: str,
        *,
        preload: Sequence[int] = (),
        preload_bytes: int | None = None,
        create: bool = True,
    ) -> OpenResult:
        answer = self._request(OpenRequest(db, tuple(preload), preload_bytes, create))
        assert isinstance(answer, OpenResult)
        return answer

    def get_pages(self, db: str, generation: int, pgnos: Sequence[int]) -> PagesResult:
        answer = self._request(GetPagesRequest(db, generation, tuple(pgnos)))
        assert isinstance(answer, PagesResult)
        return answer

    def commit(
        self,
        db: str,
        generation: int,
        expected_head_txid: int,
        pages: Pages,
        db_size_pages: int,
        *,
        commit_id: bytes | None = None,
    ) -> CommitResult:
        request = CommitRequest(
            db, generation, expected_head_txid, db_size_pages, commit_id, dict(pages)
        )
        answer = self._request(request, Retry.ALWAYS if commit_id else Retry.UNSENT)
        assert isinstance(answer, CommitResult)
        return answer

    def commit_stage(
        self, db: str, generation: int, txid: int | None, seq: int, pages: Pages
    ) -> StageResult:
        answer = self._request(StageRequest(db, generation, txid, seq, dict(pages)))
        assert isinstance(answer, StageResult)
        return answer

    def commit_finalize(
        self,
        db: str,
        generation: int,
        expected_head_txid: int,
        txid: int,
        db_size_pages: int,
        *,
        commit_id: bytes | None = None,
    ) -> CommitResult:
        request = FinalizeRequest(
            db, generation, expected_head_txid, txid, db_size_pages, commit_id
        )
        answer = self._request(request, Retry.ALWAYS if commit_id else Retry.UNSENT)
        assert isinstance(answer, CommitResult)
        return answer

    def head(self, db: str) -> Head:
        answer = self._request(HeadRequest(db))
        assert isinstance(answer, Head)
        return answer

    def save_hint(self, db: str, generation: int, pgnos: Sequence[int]) -> Head:
        answer = self._request(SaveHintRequest(db, generation, tuple(pgnos)))
        assert isinstance(answer, Head)
        return answer

    def snapshot(
        self, db: str, *, at: int | None = None, preload: Sequence[int] = ()
    ) -> SnapshotResult:
        answer = self._request(SnapshotRequest(db, at, tuple(preload)))
        assert isinstance(answer, SnapshotResult)
        return answer

    def read_at(self, db: str, txid: int, pgnos: Sequence[int]) -> PagesResult:
        answer = self._request(ReadAtRequest(db, txid, tuple(pgnos)))
        assert isinstance(answer, PagesResult)
        return answer

    def changes_since(self, db: str, txid: int) -> ChangesResult:
        answer = self._request(ChangesRequest(db, txid))
        assert isinstance(answer, ChangesResult)
        return answer

    def resolve(self, db: str, at: int | datetime | str) -> int:
        answer = self._request(ResolveRequest(db, at))
        assert isinstance(answer, TxidAnswer)
        return answer.txid

    def history(self, db: str, *, limit: int | None = None) -> list[HistoryEntry]:
        answer = self._request(HistoryRequest(db, limit))
        assert isinstance(answer, HistoryAnswer)
        return list(answer.entries)

    def label(self, db: str, label: str, txid: int | None = None) -> int:
        answer = self._request(LabelRequest(db, label, txid))  # idempotent: same name, txid
        assert isinstance(answer, TxidAnswer)
        return answer.txid

    def set_retention(self, db: str, window_s: float) -> float:
        answer = self._request(SetRetentionRequest(db, check_window(window_s)))
        assert isinstance(answer, RetentionAnswer)
        return answer.window_ms / 1000

    def retention(self, db: str) -> float:
        answer = self._request(RetentionRequest(db))
        assert isinstance(answer, RetentionAnswer)
        return answer.window_ms / 1000

    # ------------------------------------------------------------------ extras

    def health(self) -> HealthOk:
        """The HEALTH answer of the node currently in use (failing over like any call)."""
        answer = self._request(Health())
        assert isinstance(answer, HealthOk)
        return answer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for conns in self._idle.values() for c in conns]
            for conns in self._idle.values():
                conns.clear()
        for conn in idle:
            conn.close()

    def __enter__(self) -> RemoteEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RemoteEngine({self.url!r})"

    # ------------------------------------------------------------------ requests

    def _request(self, request: Request, retry: Retry = Retry.ALWAYS) -> Answer:
        msg_type = REQUEST_TYPE[type(request)]
        payload = encode_request(0, request)
        self._check_size(request, len(payload) - LENGTH.size, self.max_frame)
        label = msg_type.name
        last: BaseException | None = None
        for attempt in range(1, self.attempts + 1):
            if self._closed:
                raise TransportError("this RemoteEngine is closed")
            index = self._current
            node = self.nodes[index]
            try:
                conn = self._checkout(node)
            except (OSError, EOFError) as exc:  # nothing was sent: always safe to retry
                last = TransportError(f"cannot connect to engine node {node}: {exc}")
            else:
                try:
                    self._check_size(request, len(payload) - LENGTH.size, conn.max_frame)
                    with self._lock:
                        self.stats.requests[label] += 1
                        self.stats.bytes_sent += len(payload)
                    got_type, body = conn.call(msg_type, payload, self.timeout, *self._watch(node))
                except Lost as lost:
                    conn.close()
                    self._note_stall(lost)
                    if lost.sent and retry is Retry.UNSENT:
                        raise CommitOutcomeUnknown(
                            f"the connection to engine node {node} failed after the "
                            f"{label} was sent ({lost.cause}); it may or may not have "
                            "applied: read head() to find out"
                        ) from lost.cause
                    last = TransportError(f"engine node {node}: {lost.cause}")
                except BaseException:
                    conn.close()
                    raise
                else:
                    with self._lock:
                        self.stats.bytes_received += len(body) + LENGTH.size + 5
                    self._checkin(conn)
                    try:
                        return decode_answer(msg_type, got_type, body)
                    except ServerShuttingDown as exc:  # it did not run: safe to send anywhere
                        last = exc
            self._fail_over(index, attempt)
        assert last is not None
        raise TransportError(
            f"{label} failed after {self.attempts} attempts on engine nodes "
            f"{', '.join(map(str, self.nodes))}; last error: {last}"
        ) from last

    def _check_size(self, request: Request, size: int, limit: int) -> None:
        if size <= limit:
            return
        if isinstance(request, CommitRequest | StageRequest):
            raise CommitTooLarge(size, limit)
        raise InvalidRequest(
            f"request of {size} bytes is over the maximum frame size of {limit} bytes"
        )

    def _fail_over(self, index: int, attempt: int) -> None:
        """After a failed attempt: the next call starts at the next node; when this call has
        attempts left, count a retry and back off once every node failed in a row."""
        with self._lock:
            if len(self.nodes) > 1 and self._current == index:
                self._current = (index + 1) % len(self.nodes)
            if attempt >= self.attempts:
                return
            self.stats.retries += 1
            if len(self.nodes) > 1:
                self.stats.failovers += 1
        if attempt % len(self.nodes) == 0:  # every node failed once more: back off
            rounds = attempt // len(self.nodes)
            time.sleep(backoff(rounds, self.backoff_s, self.max_backoff_s))

    # ------------------------------------------------------------------ stalls

    def _watch(self, node: Node) -> tuple[float, Callable[[], bool]]:
        return self.stall_timeout, lambda: self._probe(node)

    def _probe(self, node: Node) -> bool:
        """True when ``node`` answers HEALTH on a fresh connection within stall_timeout."""
        with self._lock:
            self.stats.probes += 1
        deadline = time.monotonic() + self.stall_timeout
        try:
            with socket.create_connection(
                (node.host, node.port), timeout=self.stall_timeout
            ) as sock:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                probe = NodeConnection(node, sock, DEFAULT_MAX_FRAME)
                left = max(0.001, deadline - time.monotonic())
                got_type, _ = probe.call(MsgType.HEALTH, encode_request(0, Health()), left)
        except (Lost, OSError, ProtocolError):
            return False
        return got_type == MsgType.HEALTH | 0x80

    def _note_stall(self, lost: Lost) -> None:
        if isinstance(lost.cause, TimeoutError):
            with self._lock:
                self.stats.stalls += 1

    # ------------------------------------------------------------------ connections

    def _checkout(self, node: Node) -> NodeConnection:
        while True:
            with self._lock:
                idle = self._idle[node]
                conn = idle.pop() if idle else None
            if conn is None:
                return self._connect(node)
            if conn.alive():
                return conn
            conn.close()

    def _checkin(self, conn: NodeConnection) -> None:
        with self._lock:
            idle = self._idle[conn.node]
            if not self._closed and len(idle) < self.pool_size:
                idle.append(conn)
                return
        conn.close()

    def _connect(self, node: Node) -> NodeConnection:
        conn = open_connection(
            node,
            token=self.token,
            client_name=self.client_name,
            timeout=self.connect_timeout,
            max_frame=self.max_frame,
            watch=self._watch(node),
        )
        with self._lock:
            self.stats.connects += 1
        return conn


def connect_engine(url: str, token: str | None = None, **options: object) -> RemoteEngine:
    """A ``RemoteEngine`` for ``url`` (``sqlkv://host:port[,...]``); what
    ``sqlkv.connect(name, engine="sqlkv://...", token=...)`` builds. ``options``:
    ``timeout``, ``connect_timeout``, ``stall_timeout``, ``attempts``, ``backoff_s``,
    ``max_backoff_s``, ``pool_size``, ``max_frame``, ``client_name``."""
    return RemoteEngine(url, token, **options)  # type: ignore[arg-type]


__all__ = [
    "CommitOutcomeUnknown",
    "Node",
    "RemoteEngine",
    "RemoteStats",
    "ServerShuttingDown",
    "connect_engine",
    "parse_engine_url",
]
