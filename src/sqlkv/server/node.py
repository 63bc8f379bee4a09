"""The client's side of one engine node: ``sqlkv://`` URLs, one framed socket
(``NodeConnection``) and the progress watch that tells a stalled node from a slow one.

``RemoteEngine`` (``client.py``) pools these connections and owns retries and failover.
"""

from __future__ import annotations

import contextlib
import itertools
import select
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlkv.errors import ConfigError, ProtocolError
from sqlkv.server.protocol import (
    LENGTH,
    PROTOCOL_VERSION,
    Hello,
    HelloOk,
    MsgType,
    check_length,
    decode_answer,
    encode_request,
    split_header,
)

SCHEME = "sqlkv://"
TIMEVAL = struct.Struct("@ll")  # struct timeval
FIRST_RECV = 64 * 1024  # bytes asked of an answer's first recv
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


class Lost(Exception):
    """The connection failed; ``sent`` says whether the whole request had been sent."""

    def __init__(self, cause: BaseException, sent: bool) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.sent = sent


class Watch:
    """Progress watch of one exchange: socket timeouts are cut at ``stall`` seconds, and a
    timeout asks whether the node still responds (see the module docstring)."""

    def __init__(
        self,
        node: Node,
        deadline: float,
        timeout: float,
        stall: float | None,
        responsive: Callable[[], bool] | None,
    ) -> None:
        self.node = node
        self.deadline = deadline
        self.timeout = timeout
        self.stall = stall
        self.responsive = responsive

    def slice(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no answer from engine node {self.node} within {self.timeout}s")
        return min(left, self.stall) if self.stall else left

    def no_progress(self) -> None:
        """A socket operation timed out: raise unless the node shows it is alive."""
        if time.monotonic() >= self.deadline:
            raise TimeoutError(f"no answer from engine node {self.node} within {self.timeout}s")
        if self.responsive is not None and not self.responsive():
            raise TimeoutError(
                f"engine node {self.node} made no progress for {self.stall}s and did not "
                "answer a health probe: treated as down"
            )


class NodeConnection:
    """One socket to one node, after a successful HELLO. Not thread-safe: pooled."""

    def __init__(self, node: Node, sock: socket.socket, max_frame: int) -> None:
        self.node = node
        self.sock = sock
        self.max_frame = max_frame
        self.server = ""
        self.version = 0
        self._ids = itertools.count(1)
        # blocking, with the kernel's timeouts: one syscall per send and recv (a Python
        # socket timeout adds a poll before each, and an ioctl per settimeout)
        sock.settimeout(None)
        self._timeouts = {socket.SO_SNDTIMEO: 0.0, socket.SO_RCVTIMEO: 0.0}

    def call(
        self,
        msg_type: int,
        payload: bytes,
        timeout: float,
        stall: float | None = None,
        responsive: Callable[[], bool] | None = None,
    ) -> tuple[int, memoryview]:
        """Send one request frame and read its answer: (answer type, body).

        ``timeout`` bounds the whole exchange. When ``stall`` seconds pass without progress,
        ``responsive()`` is asked whether the node is still working; False ends the call
        with a ``TimeoutError`` (the node is treated as down)."""
        rid = next(self._ids) & 0xFFFFFFFF
        data = payload[: LENGTH.size + 1] + rid.to_bytes(4, "big") + payload[LENGTH.size + 5 :]
        watch = Watch(self.node, time.monotonic() + timeout, timeout, stall, responsive)
        sent = False
        try:
            self._send(data, watch)
            sent = True
            answer = self._recv_frame(watch)
        except (OSError, EOFError) as exc:
            raise Lost(exc, sent) from exc
        got_type, got_rid, body = split_header(answer)
        if got_rid != rid and got_type != MsgType.ERROR:
            raise ProtocolError(f"answer to request {got_rid} arrived for request {rid}")
        return got_type, body

    def _send(self, data: bytes, watch: Watch) -> None:
        view = memoryview(data)
        off = 0
        while off < len(view):
            self._limit(socket.SO_SNDTIMEO, watch.slice())
            try:
                off += self.sock.send(view[off : off + (1 << 20)])
            except BlockingIOError:  # SO_SNDTIMEO passed without progress
                watch.no_progress()

    def _recv_frame(self, watch: Watch) -> bytearray:
        """The answer's payload (after its length). A small answer arrives with one
        ``recv``: the first asks for up to ``FIRST_RECV`` bytes, prefix and body together.
        The server sends nothing unasked, so bytes past the answer are a protocol error."""
        buf = bytearray()
        while len(buf) < LENGTH.size:
            buf += self._recv_some(FIRST_RECV, watch)
        (length,) = LENGTH.unpack_from(buf)
        check_length(length, self.max_frame)
        need = LENGTH.size + length
        while len(buf) < need:
            buf += self._recv_some(min(need - len(buf), 1 << 20), watch)
        if len(buf) > need:
            raise ProtocolError(f"{self.node} sent {len(buf) - need} bytes past its answer")
        del buf[: LENGTH.size]
        return buf

    def _recv_some(self, n: int, watch: Watch) -> bytes:
        while True:
            self._limit(socket.SO_RCVTIMEO, watch.slice())
            try:
                chunk = self.sock.recv(n)
            except BlockingIOError:  # SO_RCVTIMEO passed without progress
                watch.no_progress()
                continue
            if not chunk:
                raise EOFError(f"{self.node} closed the connection")
            return chunk

    def _limit(self, option: int, seconds: float) -> None:
        """Make the next send or recv wait at most ``seconds`` (5% longer at worst: the
        kernel's timeout is set again only when it would end too early or much too late)."""
        now = self._timeouts[option]
        if not seconds <= now <= seconds * 1.05:
            self._timeouts[option] = seconds = max(seconds, 0.001)
            set_kernel_timeout(self.sock, option, seconds)

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


def set_kernel_timeout(sock: socket.socket, option: int, seconds: float) -> None:
    """``SO_RCVTIMEO`` or ``SO_SNDTIMEO`` of a blocking socket: a send or recv that makes no
    progress for ``seconds`` fails with ``BlockingIOError`` (EAGAIN)."""
    whole = int(seconds)
    sock.setsockopt(
        socket.SOL_SOCKET, option, TIMEVAL.pack(whole, int((seconds - whole) * 1_000_000))
    )


def open_connection(
    node: Node,
    *,
    token: bytes,
    client_name: str,
    timeout: float,
    max_frame: int,
    watch: tuple[float, Callable[[], bool]],
) -> NodeConnection:
    """A new connection to ``node`` that has said HELLO: the version, the server's name and
    the smaller of the two frame limits agreed. ``watch``: (stall timeout, probe) while
    waiting for the answer."""
    sock = socket.create_connection((node.host, node.port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = NodeConnection(node, sock, max_frame)
        payload = encode_request(0, Hello(token, client_name))
        try:
            got_type, body = conn.call(MsgType.HELLO, payload, timeout, *watch)
        except Lost as lost:
            raise lost.cause from None
        answer = decode_answer(MsgType.HELLO, got_type, body)
        assert isinstance(answer, HelloOk)
        if not 1 <= answer.version <= PROTOCOL_VERSION:
            raise ProtocolError(f"server {node} chose unsupported version {answer.version}")
        conn.version = answer.version
        conn.server = answer.server
        conn.max_frame = min(max_frame, answer.max_frame)
    except BaseException:
        sock.close()
        raise
    return conn
