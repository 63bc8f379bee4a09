"""``sqlkv.aio``: sqlkv databases from asyncio, in the style of aiosqlite.

    import sqlkv.aio

    async with sqlkv.aio.connect("orders") as db:        # store/engine as sqlkv.connect
        await db.execute("CREATE TABLE IF NOT EXISTS t(x)")
        await db.execute("INSERT INTO t VALUES (?)", (1,))
        await db.commit()
        async with db.execute("SELECT x FROM t") as cursor:
            async for row in cursor:
                print(row)

Each connection owns one ``sqlkv.dbapi2`` connection (the stdlib-``sqlite3``-compatible
layer) on one dedicated thread: SQLite, the engine and the store never run on the event
loop. A cancelled ``await`` never leaves a half-applied commit and never leaves work to be
committed by a later call: see ``sqlkv.aio.worker`` and docs/python-sqlalchemy-aio.md.
"""

from __future__ import annotations

from typing import Any

from sqlkv.aio.connection import Connection, Pending
from sqlkv.aio.cursor import Cursor

__all__ = ["Connection", "Cursor", "Pending", "connect"]

# what aiosqlite re-exports from sqlite3, from sqlkv.dbapi2 here (SQLAlchemy reads them)
FROM_DBAPI2 = (
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Row",
    "Warning",
    "sqlite_version",
    "sqlite_version_info",
)


def __getattr__(name: str) -> Any:
    if name in FROM_DBAPI2:
        from sqlkv import dbapi2

        return getattr(dbapi2, name)
    raise AttributeError(f"module 'sqlkv.aio' has no attribute {name!r}")


def connect(database: str, *, iter_chunk_size: int = 64, **kwargs: Any) -> Connection:
    """An async connection to sqlkv database ``database``: ``await`` it or ``async with`` it.

    ``kwargs`` are those of ``sqlkv.dbapi2.connect`` (``store=``, ``engine=``, ``token=``,
    ``isolation_level=``, ``detect_types=``, ...), resolved as ``sqlkv.connect`` resolves
    them (SQLKV_STORE / SQLKV_ENGINE from the environment). ``check_same_thread`` is
    always False: the connection is used from its worker thread only, and attributes such
    as ``in_transaction`` are read from the loop thread.
    """
    from sqlkv import dbapi2

    kwargs["check_same_thread"] = False

    def connector() -> Any:
        return dbapi2.connect(database, **kwargs)

    return Connection(connector, dbapi2, iter_chunk_size=iter_chunk_size, name=database)
