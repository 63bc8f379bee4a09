"""The engine server: ``EngineApi`` over TCP (``protocol.py``), in one process.

The event loop accepts connections and serves each until its HELLO succeeds, then hands
the socket to a thread of its own (``session.py``): read a frame, run the request, write
the answer, with no per-request hop between the loop and a pool. At most ``threads``
engine calls run at once. Worker processes of ``supervisor.py`` (``--workers N``) receive
their connections from it instead of listening.

A connection: HELLO first (within ``hello_timeout_s``), then requests until the client
closes, goes silent for ``idle_timeout_s`` or breaks the framing (bad length, truncated
frame: closed, after an ERROR answer when possible); a request that does not decode gets
an ERROR answer and the connection stays usable. Before HELLO, any error closes it.

Memory (``frames.py``): before HELLO a frame is at most ``preauth_max_frame`` bytes and all
of the exchange must end within ``hello_timeout_s``; after it, every request frame first
reserves its length from one ``frame_budget_bytes`` (its sender waits otherwise).

Shutdown (``begin_shutdown``, on SIGTERM and SIGINT): stop accepting; answer new requests
with ``ServerShuttingDown`` (retried on another node); let running ones finish (at most
``drain_timeout_s``); close every connection and return.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
import threading
import time
from dataclasses import dataclass

from sqlkv.engine.api import EngineApi
from sqlkv.engine.commit_group import GroupedCommit
from sqlkv.engine.engine import Engine
from sqlkv.errors import AuthError, ProtocolError, ServerShuttingDown, SqlkvError
from sqlkv.logs import failure_fields
from sqlkv.server.auth import Auth, Grant
from sqlkv.server.batcher import CommitBatcher, land_group
from sqlkv.server.config import ServerConfig
from sqlkv.server.dispatch import call_engine
from sqlkv.server.frames import FrameBudget, Refused, read_preauth_frame
from sqlkv.server.metrics import ServerMetrics
from sqlkv.server.protocol import (
    LENGTH,
    MAGIC,
    MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION,
    REQUEST_TYPES,
    Answer,
    CommitRequest,
    HealthOk,
    Hello,
    HelloOk,
    MsgType,
    Request,
    database_of,
    decode_request,
    encode_answer,
    encode_error,
    split_header,
)
from sqlkv.server.session import Session, detach, receive_connections

log = logging.getLogger("sqlkv.server")
_LABELS = {int(t): MsgType(t).name for t in REQUEST_TYPES}  # metrics label per request type

GROUP_MAX_BYTES = 256 * 1024  # a COMMIT frame up to this size may land in a group


@dataclass
class _Conn:
    peer: str
    grant: Grant | None = None  # set by a successful HELLO
    version: int = 0
    reserved: int = 0  # bytes of the frame budget the current request holds
    hello_deadline: float = 0.0  # loop time by which an unauthenticated peer must be done


class EngineServer:
    def __init__(
        self,
        engine: EngineApi,
        auth: Auth,
        config: ServerConfig,
        metrics: ServerMetrics,
        *,
        channel: socket.socket | None = None,
    ) -> None:
        """``channel``: a worker of ``supervisor.py`` receives the connections its
        supervisor accepted on this Unix socket (``SCM_RIGHTS``) instead of binding
        ``config.host``:``config.port``."""
        config.validate()
        self.engine = engine
        self.auth = auth
        self.config = config
        self.metrics = metrics
        self.draining = False
        self._channel = channel
        self.engine_calls = threading.BoundedSemaphore(config.threads)
        self.budget = FrameBudget(config.frame_budget_bytes)
        self.batcher: CommitBatcher | None = None  # group commit (batcher.py)
        if config.group_commit > 1 and isinstance(engine, Engine):
            self.batcher = CommitBatcher(functools.partial(land_group, self), config.group_commit)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # one per connection before HELLO
        self._sessions: set[Session] = set()  # one per connection after HELLO
        self._lock = threading.Lock()  # _sessions, _inflight
        self._inflight = 0
        self._idle = threading.Event()
        self._idle.set()
        self._stop = asyncio.Event()

    @property
    def port(self) -> int:
        if self._server is None:  # a worker: its supervisor listens on config.port
            return self.config.port
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        return len(self._writers) + len(self._sessions)

    async def start(self) -> None:
        if self._channel is not None:
            self._channel.setblocking(False)
            loop = asyncio.get_running_loop()
            loop.add_reader(self._channel.fileno(), self._receive_connections)
        else:
            self._server = await asyncio.start_server(
                self._serve_connection, self.config.host, self.config.port, limit=1 << 20
            )

    def _receive_connections(self) -> None:
        """The channel is readable: adopt the connections the supervisor passed."""
        assert self._channel is not None
        socks = receive_connections(self._channel)
        if socks is None:  # the supervisor is gone: nobody will stop this worker
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
            if not self.draining:
                log.warning("the supervisor closed its channel: shutting down")
                self.begin_shutdown()
            return
        for sock in socks:
            if self.draining:
                sock.close()
                continue
            task = asyncio.ensure_future(self._adopt(sock))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _adopt(self, sock: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        except OSError:
            sock.close()
            return
        await self._serve_connection(reader, writer)

    def begin_shutdown(self) -> None:
        """Stop accepting and refuse new requests; ``run``/``drain`` finish the job."""
        if not self.draining:
            log.info("shutting down: draining requests in flight", extra={"node": self.name})
            self.draining = True
            self.metrics.draining.set(1)
            if self._server is not None:
                self._server.close()
            if self._channel is not None:
                with contextlib.suppress(RuntimeError, ValueError):
                    asyncio.get_running_loop().remove_reader(self._channel.fileno())
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
        drained = await asyncio.to_thread(self._idle.wait, self.config.drain_timeout_s)
        if not drained:
            log.warning("drain timed out with %d requests still running", self._inflight)
        for writer in list(self._writers):
            writer.close()
        with self._lock:
            sessions = list(self._sessions)
        for session in sessions:
            session.shutdown()
        # let every connection task see its closed stream and end, so that none is left
        # for asyncio.run to cancel (which logs each one as an ERROR with tracebacks)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5.0)
        if self._server is not None:
            await self._server.wait_closed()
        if drained:  # past the drain bound, do not wait for engine calls still running
            for session in sessions:
                await asyncio.to_thread(session.thread.join, 5.0)
            if self.batcher is not None:
                await asyncio.to_thread(self.batcher.close)

    # ------------------------------------------------------------------ connections

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = str(writer.get_extra_info("peername"))
        if self.connections >= self.config.max_connections or self.draining:
            self.metrics.connections_refused.inc()
            writer.close()
            return
        now = asyncio.get_running_loop().time()
        conn = _Conn(peer, hello_deadline=now + self.config.hello_timeout_s)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        self.metrics.connections_opened.inc()
        self.metrics.connections.inc()
        handed_off = False
        try:
            while conn.grant is None:
                payload = await self._read_frame(conn, reader, writer)
                if payload is None:
                    break
                start = time.perf_counter()
                self.request_began()
                try:
                    answer, label, close = self._answer_unauthenticated(conn, payload)
                    await self._send(writer, answer)
                finally:
                    self.request_ended()
                self.observe(label, time.perf_counter() - start)
                if close:
                    break
            else:
                handed_off = self._hand_off(conn, reader, writer)
        except (ConnectionError, OSError):
            pass  # the peer went away
        except asyncio.CancelledError:
            pass  # the server is stopping: the connection ends like any other
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            if not handed_off:
                self.metrics.connections.dec()
                writer.close()

    def _hand_off(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Move an authenticated connection to a ``Session`` thread: the loop stops reading,
        the socket is duplicated (with the bytes the stream had buffered beyond HELLO) and
        the transport dropped, which closes only its own descriptor."""
        if self.draining:
            return False
        sock, pending = detach(reader, writer)
        session = Session(self, sock, conn, pending)
        with self._lock:
            self._sessions.add(session)
        session.start()
        return True

    def session_ended(self, session: Session) -> None:
        """Called by a session's thread as it ends."""
        with self._lock:
            self._sessions.discard(session)
        self.metrics.connections.dec()

    async def _read_frame(
        self, conn: _Conn, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytearray | None:
        """The next pre-authentication frame's payload, or None when the connection must
        end: at most ``preauth_max_frame`` bytes, all of it by the hello deadline."""
        left = conn.hello_deadline - asyncio.get_running_loop().time()
        got = await read_preauth_frame(reader, left, self.config.preauth_max_frame)
        if isinstance(got, Refused):
            self._reject(got.reason)
            if got.answer is not None:
                await self._send(writer, encode_error(0, got.answer))
            return None
        return got

    async def _send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    # ------------------------------------------------------------------ requests

    def _answer_unauthenticated(self, conn: _Conn, payload: bytearray) -> tuple[bytes, str, bool]:
        """On the loop, before HELLO: (answer frame, type label, close the connection)."""
        msg_type, rid, body = split_header(payload)
        label = self._label(msg_type)
        self._count(label)
        try:
            if msg_type == MsgType.HEALTH:
                return self._health(rid, body), label, False
            if msg_type == MsgType.HELLO:
                return self._hello(conn, rid, body), label, False
            self._reject("no_hello")
            raise ProtocolError("the first request on a connection must be HELLO")
        except (ProtocolError, AuthError) as exc:
            return self._error(rid, label, exc), label, True

    def answer_authenticated(
        self, conn: _Conn, payload: bytearray, session: Session | None = None
    ) -> tuple[bytes | None, str, bool]:
        """On a session's thread: (answer frame, type label, close the connection). A
        COMMIT goes to the group commit (``session.defer``): no answer frame (None) here."""
        msg_type, rid, body = split_header(payload)
        label = self._label(msg_type)
        self._count(label)
        if msg_type == MsgType.HEALTH:
            try:
                return self._health(rid, body), label, False
            except ProtocolError as exc:
                return self._error(rid, label, exc), label, True
        if msg_type == MsgType.HELLO:
            self._reject("bad_hello")
            again = ProtocolError("HELLO was already sent on this connection")
            return self._error(rid, label, again), label, True
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
        assert conn.grant is not None
        if (
            msg_type == MsgType.COMMIT
            and session is not None
            and self.batcher is not None
            and len(body) <= GROUP_MAX_BYTES
        ):
            request = self._checked(conn.grant, msg_type, rid, body, label)
            if isinstance(request, bytes):
                return request, label, False
            assert isinstance(request, CommitRequest)
            session.defer(
                GroupedCommit(
                    request.db,
                    request.generation,
                    request.expected_head_txid,
                    request.pages,
                    request.db_size_pages,
                    request.commit_id,
                ),
                rid,
            )
            return None, label, False
        with self.engine_calls:
            return self._execute(conn.grant, msg_type, rid, body, label), label, False

    def _health(self, rid: int, body: memoryview) -> bytes:
        decode_request(MsgType.HEALTH, body)
        answer = HealthOk(self.draining, self._inflight - 1, self.connections, self.name)
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

    def _checked(
        self, grant: Grant, msg_type: int, rid: int, body: memoryview, label: str
    ) -> Request | bytes:
        """Decode a request and check the grant (then the tests' delay): the request, or
        the error answer frame."""
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
        except SqlkvError as exc:
            return self._error(rid, label, exc)
        if self.config.request_delay_s:
            time.sleep(self.config.request_delay_s)
        return request

    def _execute(
        self, grant: Grant, msg_type: int, rid: int, body: memoryview, label: str
    ) -> bytes:
        """On a session's thread: decode, check the grant, call the engine, encode the answer."""
        request = self._checked(grant, msg_type, rid, body, label)
        if isinstance(request, bytes):
            return request
        try:
            answer = self._call(request)
        except Exception as exc:
            return self.failed(rid, label, exc)
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
        return call_engine(self.engine, m)

    def failed(self, rid: int, label: str, exc: Exception) -> bytes:
        """The error answer to an engine call that raised ``exc`` (logged when unexpected)."""
        if not isinstance(exc, SqlkvError):
            log.exception(
                "engine request %s failed unexpectedly: %s: %s",
                label,
                type(exc).__name__,
                exc,
                exc_info=exc,
                extra=failure_fields(exc, type=label),
            )
        return self._error(rid, label, exc)

    # ------------------------------------------------------------------ bookkeeping

    def _error(self, rid: int, label: str, exc: BaseException) -> bytes:
        self.metrics.request_errors.labels(label, type(exc).__name__).inc()
        return encode_error(rid, exc)

    def _reject(self, reason: str) -> None:
        self.metrics.frame_rejects.labels(reason).inc()

    @staticmethod
    def _label(msg_type: int) -> str:
        return _LABELS.get(msg_type, "UNKNOWN")

    def _count(self, label: str) -> None:
        self.metrics.series(label)[0].inc()

    def observe(self, label: str, seconds: float) -> None:
        self.metrics.series(label)[1].observe(seconds)

    def request_began(self) -> None:
        with self._lock:
            self._inflight += 1
            self._idle.clear()
        self.metrics.inflight.inc()

    def request_ended(self) -> None:
        with self._lock:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()
        self.metrics.inflight.dec()
