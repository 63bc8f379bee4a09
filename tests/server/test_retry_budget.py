"""Retry budget: under ``sqlkv.connect`` the VFS owns retries and backoff, and each of its
attempts is one pass over the engine nodes, not a nested set of RemoteEngine retries."""

from __future__ import annotations

import pytest

import sqlkv
from sqlkv.errors import TransportError
from sqlkv.server.client import Node, RemoteEngine

URL = "sqlkv://127.0.0.1:1,127.0.0.1:2"
NODES = [Node("127.0.0.1", 1), Node("127.0.0.1", 2)]


@pytest.fixture
def tried(monkeypatch: pytest.MonkeyPatch) -> list[Node]:
    """Every node a RemoteEngine tried to connect to (each refuses)."""
    seen: list[Node] = []

    def refuse(self: RemoteEngine, node: Node) -> None:
        seen.append(node)
        raise ConnectionRefusedError(f"injected: {node} refused the connection")

    monkeypatch.setattr(RemoteEngine, "_connect", refuse)
    return seen


def test_each_vfs_attempt_is_one_pass_over_the_nodes(tried: list[Node]) -> None:
    with pytest.raises(TransportError):
        sqlkv.connect("db", engine=URL, retry_attempts=3, retry_base_s=0.0, retry_max_s=0.0)
    assert tried == NODES * 3  # not 3 VFS attempts x 4 RemoteEngine attempts


def test_a_failed_call_moves_the_next_one_to_the_next_node(tried: list[Node]) -> None:
    with RemoteEngine(URL, attempts=1, backoff_s=0.0, max_backoff_s=0.0) as engine:
        for _ in range(3):
            with pytest.raises(TransportError):
                engine.head("db")
    assert tried == [NODES[0], NODES[1], NODES[0]]
