"""A commit whose answer is lost (the connection is cut after the server committed, before
the client read the answer) is resolved as applied exactly once.

A proxy on 127.0.0.1 forwards frames both ways and, armed, swallows the first answer to a
COMMIT (or COMMIT_FINALIZE) and cuts both connections: the server has committed, the
client sees a reset.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator

import pytest
from server_support import HOST, ServerFactory, ServerProc, recv_exact

import sqlkv
from sqlkv.server import CommitOutcomeUnknown, RemoteEngine
from sqlkv.server.protocol import ANSWER_BIT, HEADER, LENGTH, MsgType

PAGE = 4096


class AnswerDroppingProxy:
    """Forwards 127.0.0.1:port to the server; drops the first answer of ``drop_type``."""

    def __init__(self, upstream_port: int, drop_type: MsgType) -> None:
        self.upstream_port = upstream_port
        self.drop_type = drop_type | ANSWER_BIT
        self.dropped = 0
        self.armed = True
        self._lock = threading.Lock()
        self._listener = socket.create_server((HOST, 0))
        self.port = self._listener.getsockname()[1]
        self._stop = False
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        return f"sqlkv://{HOST}:{self.port}"

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection((HOST, self.upstream_port))
            self._sockets += [client, server]
            self._spawn(self._upstream, client, server)
            self._spawn(self._downstream, server, client)

    def _upstream(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                server.sendall(data)
        except OSError:
            pass
        finally:
            _close(server)

    def _downstream(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while True:
                prefix = recv_exact(server, LENGTH.size)
                if prefix is None:
                    break
                payload = recv_exact(server, LENGTH.unpack(prefix)[0])
                if payload is None:
                    break
                (msg_type, _) = HEADER.unpack_from(payload)
                with self._lock:
                    drop = self.armed and msg_type == self.drop_type
                    if drop:
                        self.armed = False
                        self.dropped += 1
                if drop:  # the server committed; the client never hears of it
                    break
                client.sendall(prefix + payload)
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)

    def close(self) -> None:
        self._stop = True
        _close(self._listener)
        for s in self._sockets:
            _close(s)
        for t in self._threads:
            t.join(timeout=5)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()


@pytest.fixture
def server(servers: ServerFactory, store_dir: str) -> ServerProc:
    return servers(store_dir, token="t")


@pytest.fixture
def proxy(server: ServerProc) -> Iterator[AnswerDroppingProxy]:
    p = AnswerDroppingProxy(server.port, MsgType.COMMIT)
    yield p
    p.close()


def test_lost_commit_answer_is_retried_and_applied_once(
    server: ServerProc, proxy: AnswerDroppingProxy
) -> None:
    with RemoteEngine(proxy.url, token="t") as client:
        gen = client.open("db").head.generation
        result = client.commit("db", gen, 1, {1: b"a" * PAGE}, 1, commit_id=os.urandom(16))
        assert proxy.dropped == 1
        assert result.already_applied  # the retry found the first copy landed
        assert result.head.head_txid == 2  # advanced by exactly one
        assert client.get_pages("db", gen, [1]).pages == {1: b"a" * PAGE}
        assert client.stats.requests["COMMIT"] == 2 and client.stats.retries == 1
        assert client.head("db").head_txid == 2
    assert server.metric("sqlkv_server_requests_total", type="COMMIT") == 2


def test_lost_finalize_answer_is_retried_and_applied_once(server: ServerProc) -> None:
    proxy = AnswerDroppingProxy(server.port, MsgType.COMMIT_FINALIZE)
    try:
        with RemoteEngine(proxy.url, token="t") as client:
            gen = client.open("db").head.generation
            txid = client.commit_stage("db", gen, None, 0, {1: b"b" * PAGE, 2: b"c" * PAGE}).txid
            result = client.commit_finalize("db", gen, 1, txid, 2, commit_id=os.urandom(16))
            assert proxy.dropped == 1 and result.already_applied
            assert result.head.head_txid == 2
            pages = client.get_pages("db", gen, [1, 2]).pages
            assert pages == {1: b"b" * PAGE, 2: b"c" * PAGE}
    finally:
        proxy.close()


def test_lost_answer_of_a_commit_without_id_is_reported_unknown_not_resent(
    server: ServerProc, proxy: AnswerDroppingProxy
) -> None:
    with RemoteEngine(proxy.url, token="t") as client:
        gen = client.open("db").head.generation
        with pytest.raises(CommitOutcomeUnknown, match="may or may not have applied"):
            client.commit("db", gen, 1, {1: b"a" * PAGE}, 1)
        assert client.stats.requests["COMMIT"] == 1  # never sent twice
        assert client.head("db").head_txid == 2  # it had landed, once
    assert server.metric("sqlkv_server_requests_total", type="COMMIT") == 1


def test_sql_transaction_whose_commit_answer_is_lost_commits_once(
    server: ServerProc, proxy: AnswerDroppingProxy
) -> None:
    with RemoteEngine(proxy.url, token="t") as engine:
        conn = sqlkv.connect("sql", engine=engine)
        proxy.armed = False
        conn.execute("CREATE TABLE t(x INTEGER)")
        proxy.armed = True
        conn.execute("INSERT INTO t VALUES (1)")
        conn.execute("INSERT INTO t VALUES (2)")
        assert proxy.dropped == 1
        assert conn.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
        conn.close()
        head = engine.head("sql")
        assert head.head_txid == 4  # creation, CREATE TABLE, two INSERTs: nothing twice
    with RemoteEngine(server.url, token="t") as fresh:
        again = sqlkv.connect("sql", engine=fresh)
        assert again.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
        again.close()
