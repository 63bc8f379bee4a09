"""Verifying a v2 copy against its v1 source: opened with ``sqlkv.connect``, the page count
must be the source's, every page must equal the source page byte for byte (compared by
SHA-256 digests), and ``PRAGMA integrity_check`` must answer ``ok``.
"""

from __future__ import annotations

from sqlkv.engine import EngineApi
from sqlkv.migrate.source import LOCK_PAGE, ZERO_PAGE, Digests
from sqlkv.migrate.state import Progress
from sqlkv.store import Store


def verify_copy(
    name: str,
    store: Store,
    engine: EngineApi,
    *,
    own_engine: bool,
    source: Digests,
    pages: int,
    batch_pages: int,
    progress: Progress,
) -> tuple[bool, str, int]:
    """Open v2 with ``sqlkv.connect`` and compare it with the source's digests.

    ``own_engine``: ``engine`` was made for this migration (connect through ``store``,
    without compaction) rather than given by the caller. Returns (ok, what differs, v2
    head txid).
    """
    from sqlkv.client import connect

    conn = connect(name, store, compaction=False) if own_engine else connect(name, engine=engine)
    try:
        head = conn.sqlkv_head()
        ((count,),) = conn.execute("PRAGMA page_count").fetchall()
        if count != pages or head.db_size_pages != pages:
            return False, f"v2 has {count} pages, the source {pages}", head.head_txid
        copy = Digests()
        progress("verify", 0, pages)
        for first in range(1, pages + 1, batch_pages):
            pgnos = list(range(first, min(first + batch_pages, pages + 1)))
            wanted = [p for p in pgnos if p != LOCK_PAGE]
            got = engine.get_pages(name, conn.sqlkv_generation, wanted).pages
            for pgno in pgnos:
                copy.add(pgno, got.get(pgno) or ZERO_PAGE)
            progress("verify", pgnos[-1], pages)
        differs = source.first_difference(copy)
        if differs is not None:
            return False, f"page {differs} differs from the source", head.head_txid
        problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            return (
                False,
                "v2 fails PRAGMA integrity_check although its pages equal the source's, so "
                f"the v1 database itself is damaged: {'; '.join(problems[:3])}",
                head.head_txid,
            )
        return True, "", head.head_txid
    finally:
        conn.close()
