"""Unauthorised access is refused and sees no data: a missing token, a wrong token, a token
for another database, and requests before HELLO."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from server_support import HOST, ServerFactory, ServerProc, hello_frame, is_error, read_frame

from sqlkv.errors import AuthError, ProtocolError
from sqlkv.server import RemoteEngine
from sqlkv.server.codec import Reader
from sqlkv.server.codes import read_error
from sqlkv.server.protocol import GetPagesRequest, encode_request

SECRET = bytes(range(256)) * 16


@pytest.fixture
def guarded(servers: ServerFactory, store_dir: str, tmp_path: Path) -> tuple[ServerProc, int]:
    """A server with per-database tokens, and database "secret" holding one page."""
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"admin-token": "*", "orders-token": ["orders"]}))
    server = servers(store_dir, tokens_file=tokens)
    with RemoteEngine(server.url, token="admin-token") as admin:
        gen = admin.open("secret").head.generation
        admin.commit("secret", gen, 1, {1: SECRET}, 1, commit_id=b"s" * 16)
    return server, gen


def assert_untouched(server: ServerProc, gen: int) -> None:
    with RemoteEngine(server.url, token="admin-token") as admin:
        head = admin.head("secret")
        assert (head.generation, head.head_txid) == (gen, 2)  # nobody took it over or wrote
        assert admin.get_pages("secret", gen, [1]).pages == {1: SECRET}


@pytest.mark.parametrize("token", [None, "", "admin-tokeN", "admin-token ", "x" * 1000])
def test_missing_or_wrong_token_is_refused(
    guarded: tuple[ServerProc, int], token: str | None
) -> None:
    server, gen = guarded
    with RemoteEngine(server.url, token=token, attempts=1) as intruder:
        for call in (
            lambda: intruder.head("secret"),
            lambda: intruder.get_pages("secret", gen, [1]),
            lambda: intruder.open("secret"),
            lambda: intruder.commit("secret", gen, 2, {1: bytes(4096)}, 1),
        ):
            with pytest.raises(AuthError, match="token is missing or wrong"):
                call()
        assert intruder.stats.connects == 0  # no connection got past HELLO
    assert server.metric("sqlkv_server_auth_refusals_total", stage="hello") == 4
    assert_untouched(server, gen)


def test_token_only_reaches_its_databases(guarded: tuple[ServerProc, int]) -> None:
    server, gen = guarded
    with RemoteEngine(server.url, token="orders-token") as orders:
        for call in (
            lambda: orders.head("secret"),
            lambda: orders.get_pages("secret", gen, [1]),
            lambda: orders.open("secret"),
            lambda: orders.commit("secret", gen, 2, {1: bytes(4096)}, 1, commit_id=b"o" * 16),
            lambda: orders.commit_stage("secret", gen, None, 0, {1: bytes(4096)}),
            lambda: orders.commit_finalize("secret", gen, 2, 3, 1),
        ):
            with pytest.raises(AuthError, match="does not allow database 'secret'"):
                call()
        # the same connection still serves the database the token names
        opened = orders.open("orders")
        assert opened.head.head_txid == 1
        assert orders.stats.connects == 1
    assert server.metric("sqlkv_server_auth_refusals_total", stage="database") == 6
    assert_untouched(server, gen)


def test_requests_before_hello_are_refused_and_the_connection_closed(
    guarded: tuple[ServerProc, int],
) -> None:
    server, gen = guarded
    with socket.create_connection((HOST, server.port), timeout=10) as s:
        s.sendall(encode_request(3, GetPagesRequest("secret", gen, (1,))))
        answer = read_frame(s)
        assert is_error(answer)
        assert answer is not None
        assert isinstance(read_error(Reader(answer[2])), ProtocolError)
        assert read_frame(s) is None  # closed
    assert_untouched(server, gen)


def test_wrong_token_hello_gets_auth_error_then_close(guarded: tuple[ServerProc, int]) -> None:
    server, gen = guarded
    with socket.create_connection((HOST, server.port), timeout=10) as s:
        s.sendall(hello_frame("guess") + encode_request(4, GetPagesRequest("secret", gen, (1,))))
        answer = read_frame(s)
        assert answer is not None and is_error(answer)
        assert isinstance(read_error(Reader(answer[2])), AuthError)
        assert read_frame(s) is None  # the pipelined request was never answered
    assert_untouched(server, gen)
