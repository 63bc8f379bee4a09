"""``restore`` through ``sqlkv serve``: ``restore_database`` runs on the ``RemoteEngine``
(open, changes_since, snapshot, read_at, commit over the wire) and the live owner is fenced
out exactly as in process."""

from __future__ import annotations

import pytest
from server_support import ServerFactory

from sqlkv.engine.restore import restore_database
from sqlkv.errors import FenceMismatch
from sqlkv.server import RemoteEngine

PAGE = 4096


def test_restore_over_the_network_restores_and_fences_the_owner(
    servers: ServerFactory, store_dir: str
) -> None:
    server = servers(store_dir)
    with RemoteEngine(server.url) as remote:
        head = remote.open("db").head
        g = head.generation
        head = remote.commit("db", g, head.head_txid, {1: b"a" * PAGE, 2: b"b" * PAGE}, 2).head
        target = head.head_txid
        head = remote.commit("db", g, target, {2: b"c" * PAGE, 3: b"d" * PAGE}, 3).head

        out = restore_database(remote, "db", target)
        # page 2 changed since; page 3 is above the size at the target: the shrink drops it
        assert (out.target_txid, out.before_txid, out.pages_written) == (target, head.head_txid, 1)
        with pytest.raises(FenceMismatch):
            remote.commit("db", g, out.head.head_txid, {1: b"e" * PAGE}, 3)
        now = remote.open("db").head
        pages = remote.get_pages("db", now.generation, [1, 2, 3]).pages
        assert pages == {1: b"a" * PAGE, 2: b"b" * PAGE, 3: None}
