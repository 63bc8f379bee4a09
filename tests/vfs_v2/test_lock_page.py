"""Databases past 1 GiB: the lock-byte page (262,145 at 4 KiB) is never sent nor fetched."""

from __future__ import annotations

from vfs_support import Opener

from sqlkv.vfs.v2.file import LOCK_PAGE, ZERO_PAGE


def test_lock_page_is_never_sent_or_fetched(open_mem: Opener) -> None:
    assert LOCK_PAGE == 262_145
    conn = open_mem()
    file = conn.sqlkv_file
    with conn:
        conn.execute("CREATE TABLE t(x)")
    # grow the file past 1 GiB sparsely, as SQLite does: it writes pages around the lock
    # page and never the lock page itself
    for pgno in (LOCK_PAGE - 1, LOCK_PAGE + 1, LOCK_PAGE + 2):
        file.xWrite(bytes([pgno % 251]) * 4096, (pgno - 1) * 4096)
    assert file.xRead(4096, (LOCK_PAGE - 1) * 4096) == ZERO_PAGE
    file.xSync(0)  # the engine refuses the lock page: this commit must not carry it
    assert file.remote.size_pages == LOCK_PAGE + 2

    before = conn.sqlkv_stats.snapshot()
    file.cache.clear()
    assert file.xRead(4096, (LOCK_PAGE - 1) * 4096) == ZERO_PAGE
    assert file.xRead(4096, LOCK_PAGE * 4096) == bytes([(LOCK_PAGE + 1) % 251]) * 4096
    spent = conn.sqlkv_stats - before
    assert spent.get_pages_calls == 1

    # truncate below the lock page, then regrow past it: the zeros sent for the cut-off
    # range skip the lock page too
    file.xWrite(b"\x01" * 4096, 0)  # inside one transaction: write, cut, regrow, commit
    file.xTruncate((LOCK_PAGE - 10) * 4096)
    file.xWrite(bytes(4096), (LOCK_PAGE + 5 - 1) * 4096)
    assert LOCK_PAGE not in file.pending()[0]
    assert file.pending()[0][LOCK_PAGE + 1] == ZERO_PAGE
    file.xSync(0)
    assert file.remote.size_pages == LOCK_PAGE + 5
    assert file.xRead(4096, LOCK_PAGE * 4096) == ZERO_PAGE  # cut off, then regrown: zeros
