"""Damaged stored data seen through ``sqlkv serve``: the client gets ``CorruptionError``
with the engine's fields, and a SQL statement over the network raises it too."""

from __future__ import annotations

import pytest
from server_support import ServerFactory

import sqlkv
from sqlkv.engine import Engine
from sqlkv.engine.keys import DbKeys
from sqlkv.errors import CorruptionError
from sqlkv.server import RemoteEngine
from sqlkv.store.embedded import EmbeddedStore


def test_corruption_arrives_as_its_class_over_the_network(
    servers: ServerFactory, store_dir: str
) -> None:
    with EmbeddedStore(store_dir) as store:
        engine = Engine(store)
        head = engine.open("db").head
        engine.commit("db", head.generation, head.head_txid, {1: b"a" * 4096}, 1)
        keys = DbKeys("db")
        key, value = store.transact(lambda tr: tr.get_range(*keys.pidx_range()))[0]
        store.transact(lambda tr: tr.set(key, bytes([value[0] ^ 4]) + value[1:]))
    server = servers(store_dir)
    with RemoteEngine(server.url) as remote, pytest.raises(CorruptionError) as caught:
        remote.open("db")
    exc = caught.value
    assert (exc.db, exc.kind, exc.location) == ("db", "PIDX", "pgno 1")
    assert "checksum mismatch" in exc.detail and "sqlkv verify db" in str(exc)

    with pytest.raises(CorruptionError):
        sqlkv.connect("db", engine=server.url)
