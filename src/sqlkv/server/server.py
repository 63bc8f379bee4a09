"""The engine server: ``EngineApi`` over TCP (``protocol.py``), on asyncio.

The event loop only moves frames: each connection reads one frame at a time, and every
engine request (decode, engine call, encode) runs on a bounded thread pool, because
engine calls block on the store. A connection carries one request at a time, so at most
``max_connections`` requests wait for the pool's ``workers`` threads.

Per connection: HELLO first (within ``hello_timeout_s``), then requests until the client
closes, goes silent for ``idle_timeout_s``, or breaks the framing. A frame whose length is
out of bounds, or that stops mid-way, closes the connection (after an ERROR answer when
one can still be sent); a well-framed request that does not decode gets an ERROR answer
and the connection stays usable. Before a successful HELLO, any error closes it.

Memory before and after authentication (``frames.py``): until HELLO succeeds a frame may be
at most ``preauth_max_frame`` bytes (4 KiB; HELLO and HEALTH are far smaller), checked on
the length prefix before anything else is read, and the whole exchange must finish within
``hello_timeout_s``; so an unauthenticated peer holds a few KiB for a few seconds. After
HELLO, every request frame reserves its length from one server-wide ``frame_budget_bytes``
before its body is read and gives it back once its answer is sent: a frame that does not
fit waits (its sender sees TCP back-pressure), so request frames never hold more memory
than the budget, whatever the number of connections.

Shutdown (``begin_shutdown``, wired to SIGTERM and SIGINT by ``run``): stop accepting;
answer every new request with ``ServerShuttingDown`` (the client retries it on another
node); let requests already running finish and their answers go out, waiting at most
``drain_timeout_s``; then close every connection and return. The caller closes the
engine and the store afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlkv.engine.api import EngineApi
from sqlkv.errors import AuthError, ConfigError, ProtocolError, ServerShuttingDown, SqlkvError
from sqlkv.logs import failure_fields
from sqlkv.server.auth import Auth, Grant
from sqlkv.server.frames import DEFAULT_FRAME_BUDGET, PREAUTH_MAX_FRAME, FrameBudget, read_body
from sqlkv.server.metrics import ServerMetrics
from sqlkv.server.protocol import (
    DEFAULT_MAX_FRAME,
    LENGTH,
    MAGIC,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    REQUEST_TYPES,
    Answer,
    ChangesRequest,
    CommitRequest,
    FinalizeRequest,
    GetPagesRequest,
    HeadRequest,
    HealthOk,
    Hello,
    HelloOk,
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
    SetRetentionRequest,
    SnapshotRequest,
    StageRequest,
    TxidAnswer,
    check_length,
    database_of,
    decode_request,
    encode_answer,
    encode_error,
    split_header,
)

log = logging.getLogger("sqlkv.server")


def loop_time() -> float:
    return asyncio.get_running_loop().time()


@dataclass(frozen=True)
class ServerConfig:
    """Settings of one server. ``port`` 0 picks a free port (read ``EngineServer.port``)."""

    host: str = "127.0.0.1"
    port: int = 7878
    max_frame: int = DEFAULT_MAX_FRAME
    workers: int = 16  # threads running engine calls
    max_connections: int = 1024
    preauth_max_frame: int = PREAUTH_MAX_FRAME  # largest frame before a successful HELLO
    frame_budget_bytes: int = DEFAULT_FRAME_BUDGET  # request frames held at once, all conns
    hello_timeout_s: float = 5.0  # a new connection must finish HELLO within this
    idle_timeout_s: float = 600.0  # a silent connection is closed after this
    frame_timeout_s: float = 60.0  # a frame must arrive whole within this once begun
    drain_timeout_s: float = 20.0  # shutdown waits this long for running requests
    name: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")
    request_delay_s: float = 0.0  # tests only: hold each engine request this long first

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be within 0..65535, got {self.port}")
        if not 1024 <= self.max_frame <= 1 << 30:
            raise ConfigError(f"max_frame must be within 1024..2^30 bytes, got {self.max_frame}")
        if not 1 <= self.workers <= 1024:
            raise ConfigError(f"workers must be within 1..1024, got {self.workers}")
        if self.max_connections < 1:
            raise ConfigError(f"max_connections must be >= 1, got {self.max_connections}")
        if not 64 <= self.preauth_max_frame <= self.max_frame:
            raise ConfigError(
                f"preauth_max_frame must be within 64..max_frame ({self.max_frame}) bytes, "
                f"got {self.preauth_max_frame}"
            )
        if self.frame_budget_bytes < self.max_frame:
            raise ConfigError(
                f"frame_budget_bytes ({self.frame_budget_bytes}) must be at least max_frame "
                f"({self.max_frame}), or a largest frame could never be read"
            )
        for name in ("hello_timeout_s", "idle_timeout_s", "frame_timeout_s", "drain_timeout_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.request_delay_s < 0:
            raise ConfigError(f"request_delay_s must be >= 0, got {self.request_delay_s}")


@dataclass
class _Conn:
    peer: str
    grant: Grant | None = None  # set by a successful HELLO
    version: int = 0
    reserved: int = 0  # bytes of the frame budget the current request holds
    hello_deadline: float = 0.0  # loop time by which an unauthenticated peer must be done


class EngineServer:
    def __init__(
        self, engine: EngineApi, auth: Auth, config: ServerConfig, metrics: ServerMetrics
    ) -> None:
        config.validate()
        self.engine = engine
        self.auth = auth
        self.config = config
        self.metrics = metrics
        self.draining = False
        self._pool = ThreadPoolExecutor(config.workers, thread_name_prefix="sqlkv-engine")
        self.budget = FrameBudget(config.frame_budget_bytes)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # one per connection
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop = asyncio.Event()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection, self.config.host, self.config.port, limit=1 << 20
        )

    def begin_shutdown(self) -> None:
        """Stop accepting and refuse new requests; ``run``/``drain`` finish the job."""
        if not self.draining:
            log.info("shutting down: draining requests in flight", extra={"node": self.name})
            self.draining = True
            self.metrics.draining.set(1)
            if self._server is not None:
                self._server.close()
        self._stop.set()

    @property
    def name(self) -> str:
        return self.config.name

    async def run(self, *, ready: asyncio.Event | None = None) -> None:
        """Serve until SIGTERM/SIGINT (or ``begin_shutdown``), then drain and close."""
        if self._server is None:
            await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.begin_shutdown)
        if ready is not None:
            ready.set()
        await self._stop.wait()
        await self.drain()

    async def drain(self) -> None:
        self.begin_shutdown()
        drained = True
        try:
            await asyncio.wait_for(self._idle.wait(), self.config.drain_timeout_s)
        except TimeoutError:
            drained = False
            log.warning("drain timed out with %d requests still running", self._inflight)
        for writer in list(self._writers):
            writer.close()
        # let every connection task see its closed stream and end, so that none is left
        # for asyncio.run to cancel (which logs each one as an ERROR with tracebacks)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()
        # past the drain bound, do not wait for engine calls still running
        self._pool.shutdown(wait=drained, cancel_futures=True)

    # ------------------------------------------------------------------ connections

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = str(writer.get_extra_info("peername"))
        if len(self._writers) >= self.config.max_connections or self.draining:
            self.metrics.connections_refused.inc()
            writer.close()
            return
        conn = _Conn(peer, hello_deadline=loop_time() + self.config.hello_timeout_s)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        self.metrics.connections_opened.inc()
        self.metrics.connections.inc()
        try:
            while True:
                payload = await self._read_frame(conn, reader, writer)
                if payload is None:
                    break
                start = time.perf_counter()
                self._begin()
                try:
                    answer, label, close = await self._answer(conn, payload)
                    del payload  # the budget below frees what this frame held
                    await self._send(writer, answer)
                finally:
                    self._done()
                    self.budget.release(conn.reserved)
                    conn.reserved = 0
                self.metrics.request_seconds.labels(label).observe(time.perf_counter() - start)
                if close:
                    break
        except (ConnectionError, OSError):
            pass  # the peer went away
        except asyncio.CancelledError:
            pass  # the server is stopping: the connection ends like any other
        finally:
            self.budget.release(conn.reserved)
            conn.reserved = 0
            self._tasks.discard(task)
            self._writers.discard(writer)
            self.metrics.connections.dec()
            writer.close()

    async def _read_frame(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytearray | None:
        """The next frame's payload, or None when the connection must end. Before HELLO the
        frame is capped at ``preauth_max_frame`` and everything must be done by the
        connection's hello deadline; after it, the frame first reserves its length from the
        server's frame budget (``conn.reserved``, released by the caller)."""
        authed = conn.grant is not None
        if authed:
            timeout = self.config.idle_timeout_s
        else:
            timeout = max(0.0, conn.hello_deadline - loop_time())
        try:
            prefix = await asyncio.wait_for(reader.readexactly(LENGTH.size), timeout)
        except asyncio.IncompleteReadError as exc:
            if exc.partial:
                self.metrics.frame_rejects.labels("truncated").inc()
            return None
        except TimeoutError:
            if not authed:
                self.metrics.frame_rejects.labels("hello_timeout").inc()
            return None
        (length,) = LENGTH.unpack(prefix)
        limit = self.config.max_frame if authed else self.config.preauth_max_frame
        try:
            check_length(length, limit)
        except ProtocolError as exc:
            refusal = exc
            if length < limit:
                reason = "short"
            elif authed:
                reason = "oversized"
            else:
                reason = "preauth_oversized"
                refusal = ProtocolError(
                    f"frame of {length} bytes before HELLO; until a HELLO succeeds a frame "
                    f"may be at most {limit} bytes: send HELLO first"
                )
            self.metrics.frame_rejects.labels(reason).inc()
            await self._send(writer, encode_error(0, refusal))
            return None
        if authed:
            await self.budget.acquire(length)
            conn.reserved = length
            timeout = self.config.frame_timeout_s
        else:
            timeout = max(0.0, conn.hello_deadline - loop_time())
        try:
            return await asyncio.wait_for(read_body(reader, length), timeout)
        except (asyncio.IncompleteReadError, TimeoutError):
            self.metrics.frame_rejects.labels("truncated").inc()
            self.budget.release(conn.reserved)
            conn.reserved = 0
            return None

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    # ------------------------------------------------------------------ requests

    async def _answer(self, conn: _Conn, payload: bytearray) -> tuple[bytes, str, bool]:
        """(answer frame, the request's type label, close the connection after it)."""
        msg_type, rid, body = split_header(payload)
        label = MsgType(msg_type).name if msg_type in REQUEST_TYPES else "UNKNOWN"
        self.metrics.requests.labels(label).inc()
        try:
            if msg_type == MsgType.HEALTH:
                return self._health(rid, body), label, False
            if msg_type == MsgType.HELLO:
                return self._hello(conn, rid, body), label, False
            if conn.grant is None:
                self._reject("no_hello")
                raise ProtocolError("the first request on a connection must be HELLO")
        except (ProtocolError, AuthError) as exc:
            return self._error(rid, label, exc), label, True
        if msg_type not in REQUEST_TYPES:
            self._reject("unknown_type")
            unknown = ProtocolError(f"unknown request type 0x{msg_type:02x}")
            return self._error(rid, label, unknown), label, False
        if self.draining:
            down = ServerShuttingDown(
                f"engine server {self.name} is shutting down and did not run the request; "
                "send it to another node"
            )
            return self._error(rid, label, down), label, False
        loop = asyncio.get_running_loop()
        frame = await loop.run_in_executor(
            self._pool, self._execute, conn.grant, msg_type, rid, body, label
        )
        return frame, label, False

    def _health(self, rid: int, body: memoryview) -> bytes:
        decode_request(MsgType.HEALTH, body)
        answer = HealthOk(self.draining, self._inflight - 1, len(self._writers), self.name)
        return encode_answer(rid, MsgType.HEALTH, answer)

    def _hello(self, conn: _Conn, rid: int, body: memoryview) -> bytes:
        try:
            hello = decode_request(MsgType.HELLO, body)
        except ProtocolError:
            self._reject("bad_hello")
            raise
        assert isinstance(hello, Hello)
        if conn.grant is not None:
            self._reject("bad_hello")
            raise ProtocolError("HELLO was already sent on this connection")
        if hello.magic != MAGIC:
            self._reject("bad_hello")
            raise ProtocolError("this is not a sqlkv client (bad magic in HELLO)")
        lo, hi = hello.min_version, hello.max_version
        version = min(hi, PROTOCOL_VERSION)
        if version < max(lo, MIN_PROTOCOL_VERSION):
            self._reject("version")
            raise ProtocolError(
                f"no common protocol version: the client speaks {lo}..{hi}, this server "
                f"{MIN_PROTOCOL_VERSION}..{PROTOCOL_VERSION}; upgrade the older side"
            )
        grant = self.auth.grant(hello.token)
        if grant is None:
            self.metrics.auth_refusals.labels("hello").inc()
            raise AuthError("the token is missing or wrong; the server refused the connection")
        conn.grant, conn.version = grant, version
        return encode_answer(rid, MsgType.HELLO, HelloOk(version, self.config.max_frame, self.name))

    def _execute(
        self, grant: Grant, msg_type: int, rid: int, body: memoryview, label: str
    ) -> bytes:
        """On a pool thread: decode, check the grant, call the engine, encode the answer."""
        try:
            request = decode_request(msg_type, body)
        except ProtocolError as exc:
            self._reject("malformed")
            return self._error(rid, label, exc)
        try:
            db = database_of(request)
            if db is not None and not grant.allows(db):
                self.metrics.auth_refusals.labels("database").inc()
                grant.check(db)
            if self.config.request_delay_s:
                time.sleep(self.config.request_delay_s)
            answer = self._call(request)
        except SqlkvError as exc:
            return self._error(rid, label, exc)
        except Exception as exc:
            log.exception(
                "engine request %s failed unexpectedly: %s: %s",
                label,
                type(exc).__name__,
                exc,
                extra=failure_fields(exc, type=label),
            )
            return self._error(rid, label, exc)
        frame = encode_answer(rid, msg_type, answer)
        if len(frame) - LENGTH.size > self.config.max_frame:
            self._reject("answer_too_large")
            return self._error(
                rid,
                label,
                ProtocolError(
                    f"the answer would be {len(frame)} bytes, over the maximum frame size of "
                    f"{self.config.max_frame}: ask for fewer pages per request"
                ),
            )
        return frame

    def _call(self, m: Request) -> Answer:
        e = self.engine
        if isinstance(m, OpenRequest):
            return e.open(m.db, preload=m.preload, preload_bytes=m.preload_bytes, create=m.create)
        if isinstance(m, GetPagesRequest):
            return e.get_pages(m.db, m.generation, m.pgnos)
        if isinstance(m, CommitRequest):
            return e.commit(
                m.db,
                m.generation,
                m.expected_head_txid,
                m.pages,
                m.db_size_pages,
                commit_id=m.commit_id,
            )
        if isinstance(m, StageRequest):
            return e.commit_stage(m.db, m.generation, m.txid, m.seq, m.pages)
        if isinstance(m, FinalizeRequest):
            return e.commit_finalize(
                m.db,
                m.generation,
                m.expected_head_txid,
                m.txid,
                m.db_size_pages,
                commit_id=m.commit_id,
            )
        if isinstance(m, HeadRequest):
            return e.head(m.db)
        if isinstance(m, SnapshotRequest):
            return e.snapshot(m.db, at=m.at, preload=m.preload)
        if isinstance(m, ReadAtRequest):
            return e.read_at(m.db, m.txid, m.pgnos)
        if isinstance(m, ChangesRequest):
            return e.changes_since(m.db, m.txid)
        if isinstance(m, ResolveRequest):
            return TxidAnswer(e.resolve(m.db, m.at))
        if isinstance(m, HistoryRequest):
            return HistoryAnswer(tuple(e.history(m.db, limit=m.limit)))
        if isinstance(m, LabelRequest):
            return TxidAnswer(e.label(m.db, m.label, m.txid))
        if isinstance(m, SetRetentionRequest):
            return RetentionAnswer(round(e.set_retention(m.db, m.window_ms / 1000) * 1000))
        if isinstance(m, RetentionRequest):
            return RetentionAnswer(round(e.retention(m.db) * 1000))
        raise ProtocolError(f"{type(m).__name__} is not an engine request")

    # ------------------------------------------------------------------ bookkeeping

    def _error(self, rid: int, label: str, exc: BaseException) -> bytes:
        self.metrics.request_errors.labels(label, type(exc).__name__).inc()
        return encode_error(rid, exc)

    def _reject(self, reason: str) -> None:
        self.metrics.frame_rejects.labels(reason).inc()

    def _begin(self) -> None:
        self._inflight += 1
        self.metrics.inflight.inc()
        self._idle.clear()

    def _done(self) -> None:
        self._inflight -= 1
        self.metrics.inflight.dec()
        if self._inflight == 0:
            self._idle.set()
