"""Read-only connections through ``sqlkv serve`` (docs/read-replicas.md): a reader on the
server follows a writer on the server, a pinned reader reads its state, neither fences
the writer, and a refresh is one round trip on the wire too."""

from __future__ import annotations

import contextlib

import apsw
import pytest
from server_support import ServerFactory

import sqlkv
from sqlkv.server.client import connect_engine


def test_readers_through_the_server(servers: ServerFactory, store_dir: str) -> None:
    server = servers(store_dir)
    with contextlib.ExitStack() as stack:
        w = stack.enter_context(contextlib.closing(sqlkv.connect("db", engine=server.url)))
        w.execute("CREATE TABLE t(x)")
        w.execute("INSERT INTO t VALUES (1)")
        first = w.sqlkv_txid
        live = stack.enter_context(
            contextlib.closing(sqlkv.connect("db", engine=server.url, readonly=True))
        )
        past = stack.enter_context(
            contextlib.closing(sqlkv.connect("db", engine=server.url, at=first))
        )
        assert live.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
        for i in range(2, 6):
            w.execute("INSERT INTO t VALUES (?)", (i,))
            before = live.sqlkv_stats.snapshot()
            assert live.execute("SELECT count(*) FROM t").fetchall() == [(i,)]
            spent = live.sqlkv_stats - before
            assert spent.refreshes == 1 and spent.refresh_round_trips == 1
            assert live.sqlkv_txid == w.sqlkv_txid
        assert past.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
        admin = stack.enter_context(connect_engine(server.url))
        admin.label("db", "first", first)
        labelled = stack.enter_context(
            contextlib.closing(sqlkv.connect("db", engine=server.url, at="first"))
        )
        assert labelled.sqlkv_txid == first
        assert labelled.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
        with pytest.raises(apsw.ReadOnlyError):
            live.execute("DELETE FROM t")
        w.execute("INSERT INTO t VALUES (6)")
        assert not w.sqlkv_fenced
