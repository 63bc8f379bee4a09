"""One authenticated connection, served on its own thread with blocking socket calls.

The event loop (``server.py``) accepts connections and runs everything before a
successful HELLO (the pre-authentication caps and deadline); then it hands the socket to a
``Session``: a thread that reads a frame, runs the request (decode, engine call, encode)
and writes the answer, with no hop between the loop and a thread pool per request. That
hop (a task per read, a future per request, a wake-up of the loop through its self-pipe)
cost more CPU than the engine's own commit; see docs/serving.md.

Per frame: the 4-byte length is read within ``idle_timeout_s`` (a silent connection is
closed), checked against ``max_frame``, its length reserved from the server's
``FrameBudget`` (waiting at most ``idle_timeout_s``, in arrival order), and the body read
within ``frame_timeout_s``. Small frames arrive with one ``recv`` (a read buffer of
``BUFFER`` bytes); a large body is read straight into one buffer of its final size.
The socket stays blocking; the deadlines are the kernel's receive and send timeouts
(``SO_RCVTIMEO``, ``SO_SNDTIMEO``), set only when they change, so a request costs one
``recv`` and one ``send`` (a Python socket timeout adds a ``poll`` before each and an
``ioctl`` per change).
A COMMIT goes to the server's group commit (``batcher.py``, ``defer``): the thread goes
back to reading while the commit lands, and the thread that lands it sends the answer
(``complete``). The next frame is handled once that answer is out.
Shutdown: ``EngineServer.drain`` shuts every session's socket down once requests in flight
have finished, which ends the blocked ``recv`` and the thread.

Also here: ``detach`` (a socket out of its asyncio transport, for a session) and
``receive_connections`` (the sockets a supervisor passed a worker, ``supervisor.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING

from sqlkv.engine.commit_group import GroupedCommit
from sqlkv.errors import ProtocolError
from sqlkv.logs import failure_fields
from sqlkv.server.batcher import Job
from sqlkv.server.node import set_kernel_timeout
from sqlkv.server.protocol import LENGTH, check_length, encode_error

if TYPE_CHECKING:
    from sqlkv.server.server import EngineServer, _Conn

log = logging.getLogger("sqlkv.server")

BUFFER = 64 * 1024  # bytes asked of one recv for length prefixes and small frames


class Session:
    def __init__(
        self, server: EngineServer, sock: socket.socket, conn: _Conn, pending: bytes
    ) -> None:
        self.server = server
        self.sock = sock
        self.conn = conn
        self._buf = bytearray(pending)  # bytes received and not yet consumed
        self._chunk = memoryview(bytearray(BUFFER))  # each recv's bytes (no 64 KiB alloc)
        self._job: Job | None = None  # this connection's COMMIT in the group commit
        self._started = 0.0  # perf_counter when the current request arrived
        self._rcvtimeo = 0.0  # the socket's receive timeout now (0: none set yet)
        sock.settimeout(None)
        set_kernel_timeout(sock, socket.SO_SNDTIMEO, server.config.frame_timeout_s)
        self.thread = threading.Thread(target=self.run, name=f"sqlkv-conn {conn.peer}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def shutdown(self) -> None:
        """Wake the thread's blocked ``recv`` with end-of-stream (from any thread)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        server, conn = self.server, self.conn
        try:
            while True:
                payload = self._read_frame()
                if payload is None:
                    break
                self._started = start = time.perf_counter()
                server.request_began()
                answer: bytes | None = None
                try:
                    answer, label, close = server.answer_authenticated(conn, payload, self)
                    del payload  # the budget below frees what this frame held
                    if answer is not None:
                        self._send(answer)
                finally:
                    if answer is not None or self._job is None:  # else complete() does it
                        server.request_ended()
                        server.budget.release(conn.reserved)
                    conn.reserved = 0
                if answer is not None:
                    server.observe(label, time.perf_counter() - start)
                if close:
                    break
        except OSError:
            pass  # the peer went away, or the server shut the socket down
        except Exception as exc:  # a bug: log it, never leave the connection half-served
            log.exception(
                "connection %s failed: %s: %s",
                conn.peer,
                type(exc).__name__,
                exc,
                extra=failure_fields(exc, peer=conn.peer),
            )
        finally:
            server.budget.release(conn.reserved)
            conn.reserved = 0
            self._settle()  # never close the socket under a group's answer
            with contextlib.suppress(OSError):
                self.sock.close()
            server.session_ended(self)

    # ------------------------------------------------------------------ group commit

    def defer(self, commit: GroupedCommit, rid: int) -> None:
        """Hand this request's COMMIT to the group commit, with its share of the frame
        budget; ``complete`` answers it."""
        batcher = self.server.batcher
        assert batcher is not None and self._job is None
        job = Job(commit, rid, self, self.conn.reserved, self._started)
        self.conn.reserved = 0
        self._job = job
        batcher.submit(job)

    def complete(self, job: Job, frame: bytes) -> None:
        """Send a deferred COMMIT's answer (on the thread that landed its group) without
        blocking; what the socket does not take at once goes from a thread of its own."""
        try:
            sent = self.sock.send(frame, socket.MSG_DONTWAIT)
        except BlockingIOError:
            sent = 0
        except OSError:
            sent = len(frame)  # the peer is gone: nobody to answer
        if sent < len(frame):
            rest = frame[sent:]
            threading.Thread(target=self._send_rest, args=(job, rest), daemon=True).start()
        else:
            self._answered(job)

    def _send_rest(self, job: Job, rest: bytes) -> None:
        try:
            self.sock.sendall(rest)  # within SO_SNDTIMEO per piece
        except OSError:
            self.shutdown()
        finally:
            self._answered(job)

    def _answered(self, job: Job) -> None:
        job.answered.release()  # first: this connection's next frame may be waiting for it
        server = self.server
        server.request_ended()
        server.budget.release(job.reserved)
        server.observe("COMMIT", time.perf_counter() - job.start)

    def _settle(self) -> None:
        """Wait until this connection's COMMIT in the group commit has been answered."""
        job, self._job = self._job, None
        if job is not None:
            job.wait_answered()

    # ------------------------------------------------------------------ frames

    def _read_frame(self) -> bytearray | None:
        """The next frame's payload (its length reserved in ``conn.reserved``), or None when
        the connection must end."""
        config, metrics = self.server.config, self.server.metrics
        try:
            if not self._fill(LENGTH.size, time.monotonic() + config.idle_timeout_s):
                if self._buf:
                    metrics.frame_rejects.labels("truncated").inc()
                return None
        except TimeoutError:
            return None
        self._settle()  # a pipelined frame: its answer must follow the last one
        (length,) = LENGTH.unpack_from(self._buf)
        del self._buf[: LENGTH.size]
        try:
            check_length(length, config.max_frame)
        except ProtocolError as exc:
            reason = "short" if length < config.max_frame else "oversized"
            metrics.frame_rejects.labels(reason).inc()
            self._send(encode_error(0, exc))
            return None
        if not self.server.budget.acquire(length, config.idle_timeout_s):
            metrics.frame_rejects.labels("budget_timeout").inc()
            return None
        self.conn.reserved = length
        try:
            body = self._body(length, time.monotonic() + config.frame_timeout_s)
        except TimeoutError:
            body = None
        if body is None:
            metrics.frame_rejects.labels("truncated").inc()
        return body

    def _fill(self, n: int, deadline: float) -> bool:
        """Receive until ``n`` bytes are buffered; False at end of stream."""
        while len(self._buf) < n:
            got = self._recv_into(deadline)
            if not got:
                return False
            self._buf += self._chunk[:got]
        return True

    def _body(self, length: int, deadline: float) -> bytearray | None:
        if length <= BUFFER:
            if not self._fill(length, deadline):
                return None
            body = self._buf[:length]
            del self._buf[:length]
            return body
        body = bytearray(length)  # one buffer of the final size, filled in place
        view = memoryview(body)
        got = len(self._buf)
        view[:got] = self._buf
        self._buf.clear()
        try:
            while got < length:
                self._timeout_for(deadline)
                try:
                    n = self.sock.recv_into(view[got:], min(length - got, 1 << 20))
                except BlockingIOError:  # SO_RCVTIMEO passed: _timeout_for checks the deadline
                    continue
                if not n:
                    return None
                got += n
        finally:
            view.release()
        return body

    def _recv_into(self, deadline: float) -> int:
        while True:
            self._timeout_for(deadline)
            try:
                return self.sock.recv_into(self._chunk)
            except BlockingIOError:  # SO_RCVTIMEO passed: _timeout_for checks the deadline
                continue

    def _timeout_for(self, deadline: float) -> None:
        """Make the next receive wait at most until ``deadline`` (5% later at worst: the
        socket's timeout changes only when it would end too early or much too late)."""
        left = self._left(deadline)
        if not left <= self._rcvtimeo <= left * 1.05:
            self._rcvtimeo = max(left, 0.001)
            set_kernel_timeout(self.sock, socket.SO_RCVTIMEO, self._rcvtimeo)

    @staticmethod
    def _left(deadline: float) -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the frame did not arrive in time")
        return left

    def _send(self, data: bytes) -> None:
        self.sock.sendall(data)  # within SO_SNDTIMEO (frame_timeout_s) per piece


def detach(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[socket.socket, bytes]:
    """Take a connection's socket from the event loop: reading stops, the descriptor is
    duplicated (with the bytes the stream had buffered and not consumed) and the transport
    dropped, which closes only its own descriptor."""
    transport = writer.transport
    assert isinstance(transport, asyncio.Transport)
    transport.pause_reading()
    pending = bytes(getattr(reader, "_buffer", b""))
    raw = writer.get_extra_info("socket")
    sock = socket.socket(fileno=os.dup(raw.fileno()))
    sock.setblocking(True)
    transport.abort()
    return sock, pending


def receive_connections(channel: socket.socket) -> list[socket.socket] | None:
    """The connections passed on ``channel`` (``SCM_RIGHTS``), [] when none is ready, or
    None when the other end (the supervisor) is gone."""
    try:
        msg, fds, _, _ = socket.recv_fds(channel, 64, 64)
    except BlockingIOError:
        return []
    except OSError:
        return None
    if not msg and not fds:
        return None
    return [socket.socket(fileno=fd) for fd in fds]
