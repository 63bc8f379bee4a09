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

- ``open``, ``get_pages``, ``head``, HEALTH and ``commit_stage`` (a lost stage answer is
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

Retry budget under the VFS: ``sqlkv.connect(engine="sqlkv://...")`` builds its
``RemoteEngine`` with ``attempts`` = the number of nodes, so each VFS attempt is one pass
over the nodes and the VFS alone owns retries and backoff (``retry_attempts``, default 6):
at most ``retry_attempts * nodes`` requests, each bounded by ``timeout``, rather than
VFS attempts x RemoteEngine attempts. A ``RemoteEngine`` passed in as an object keeps its
own ``attempts``; give it ``attempts=len(nodes)`` for the same budget.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

from sqlkv.engine.api import CommitResult, OpenResult, Pages, PagesResult, StageResult
from sqlkv.engine.head import Head
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
from sqlkv.server.protocol import (
    DEFAULT_MAX_FRAME,
    LENGTH,
    PROTOCOL_VERSION,
    REQUEST_TYPE,
    Answer,
    CommitRequest,
    FinalizeRequest,
    GetPagesRequest,
    HeadRequest,
    Health,
    HealthOk,
    Hello,
    HelloOk,
    MsgType,
    OpenRequest,
    Request,
    StageRequest,
    check_length,
    decode_answer,
    encode_request,
    split_header,
)

SCHEME = "sqlkv://"
DEFAULT_PORT = 7878


@dataclass(frozen=True)
class Node:
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def parse_engine_url(url: str) -> list[Node]:
    """The nodes of ``sqlkv://host:port[,host2:port2...]`` (port defaults to 7878)."""
    if not isinstance(url, str) or not url.lower().startswith(SCHEME):
        raise ConfigError(f"engine URL {url!r} must look like sqlkv://host:port[,host2:port2...]")
    rest = url[len(SCHEME) :].rstrip("/")
    nodes: list[Node] = []
    for part in rest.split(","):
        part = part.strip()
        if part.startswith("["):
            host, _, tail = part[1:].partition("]")
            port_text = tail[1:] if tail.startswith(":") else ""
        else:
            host, _, port_text = part.partition(":")
        try:
            port = int(port_text) if port_text else DEFAULT_PORT
        except ValueError:
            port = -1
        if not host or not 0 < port < 65536:
            raise ConfigError(f"engine URL {url!r}: {part!r} is not host:port")
        nodes.append(Node(host, port))
    return nodes


class Retry(Enum):
    ALWAYS = "always"  # idempotent: send again freely
    UNSENT = "unsent"  # only when it certainly did not run


@dataclass
class RemoteStats:
    """What this client sent: ``requests`` counts every attempt (retries included)."""

    requests: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    failovers: int = 0
    connects: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


class _Lost(Exception):
    """The connection failed; ``sent`` says whether the whole request had been sent."""

    def __init__(self, cause: BaseException, sent: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.sent = sent


class _Connection:
    """One socket to one node, after a successful HELLO. Not thread-safe: pooled."""

    def __init__(self, node: Node, sock: socket.socket, max_frame: int) -> None:
        self.node = node
        self.sock = sock
        self.max_frame = max_frame
        self.server = ""
        self.version = 0
        self._ids = itertools.count(1)

    def call(self, msg_type: int, payload: bytes, timeout: float) -> tuple[int, memoryview]:
        """Send one request frame and read its answer: (answer type, body)."""
        rid = next(self._ids) & 0xFFFFFFFF
        data = payload[: LENGTH.size + 1] + rid.to_bytes(4, "big") + payload[LENGTH.size + 5 :]
        sent = False
        try:
            self.sock.settimeout(timeout)
            self.sock.sendall(data)
            sent = True
            (length,) = LENGTH.unpack(self._recv(LENGTH.size))
            check_length(length, self.max_frame)
            answer = self._recv(length)
        except (OSError, EOFError) as exc:
            raise _Lost(exc, sent) from exc
        got_type, got_rid, body = split_header(answer)
        if got_rid != rid and got_type != MsgType.ERROR:
            raise ProtocolError(f"answer to request {got_rid} arrived for request {rid}")
        return got_type, body

    def _recv(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise EOFError(f"{self.node} closed the connection")
            buf += chunk
        return bytes(buf)

    def alive(self) -> bool:
        """False when the server has closed this idle connection (or sent unasked bytes)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable  # an idle connection has nothing to read

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class RemoteEngine:
    """``EngineApi`` over the network. Thread-safe; ``close()`` when done.

    - ``url``: ``sqlkv://host:port[,host2:port2...]``; failover follows the list's order.
    - ``token``: sent in HELLO (None sends an empty token, for servers without auth).
    - ``timeout``: seconds to wait for one answer; ``connect_timeout`` for connect + HELLO.
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
        if not 0 <= backoff_s <= max_backoff_s:
            raise ConfigError("backoff must satisfy 0 <= backoff_s <= max_backoff_s")
        self.token = (token or "").encode("utf-8")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.pool_size = pool_size
        self.max_frame = max_frame
        self.client_name = client_name or f"sqlkv-client/{socket.gethostname()}:{os.getpid()}"
        self.stats = RemoteStats()
        self._lock = threading.Lock()
        self._idle: dict[Node, list[_Connection]] = {n: [] for n in self.nodes}
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
                    got_type, body = conn.call(msg_type, payload, self.timeout)
                except _Lost as lost:
                    conn.close()
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

    # ------------------------------------------------------------------ connections

    def _checkout(self, node: Node) -> _Connection:
        while True:
            with self._lock:
                idle = self._idle[node]
                conn = idle.pop() if idle else None
            if conn is None:
                return self._connect(node)
            if conn.alive():
                return conn
            conn.close()

    def _checkin(self, conn: _Connection) -> None:
        with self._lock:
            idle = self._idle[conn.node]
            if not self._closed and len(idle) < self.pool_size:
                idle.append(conn)
                return
        conn.close()

    def _connect(self, node: Node) -> _Connection:
        sock = socket.create_connection((node.host, node.port), timeout=self.connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(node, sock, self.max_frame)
            hello = Hello(self.token, self.client_name)
            payload = encode_request(0, hello)
            try:
                got_type, body = conn.call(MsgType.HELLO, payload, self.connect_timeout)
            except _Lost as lost:
                raise lost.cause from None
            answer = decode_answer(MsgType.HELLO, got_type, body)
            assert isinstance(answer, HelloOk)
            if not 1 <= answer.version <= PROTOCOL_VERSION:
                raise ProtocolError(f"server {node} chose unsupported version {answer.version}")
            conn.version = answer.version
            conn.server = answer.server
            conn.max_frame = min(self.max_frame, answer.max_frame)
        except BaseException:
            sock.close()
            raise
        with self._lock:
            self.stats.connects += 1
        return conn


def connect_engine(url: str, token: str | None = None, **options: object) -> RemoteEngine:
    """A ``RemoteEngine`` for ``url`` (``sqlkv://host:port[,...]``); what
    ``sqlkv.connect(name, engine="sqlkv://...", token=...)`` builds. ``options``:
    ``timeout``, ``connect_timeout``, ``attempts``, ``backoff_s``, ``max_backoff_s``,
    ``pool_size``, ``max_frame``, ``client_name``."""
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
