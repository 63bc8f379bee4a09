"""SQLAlchemy 2.x dialects for sqlkv: ``sqlite+sqlkv://`` and ``sqlite+sqlkv_async://``.

    engine = create_engine("sqlite+sqlkv:///orders?store=postgresql://u:pw@db/sqlkv")
    engine = create_async_engine("sqlite+sqlkv_async:///orders")   # SQLKV_STORE or default

Both are SQLAlchemy's own SQLite dialects (pysqlite, aiosqlite) with the driver swapped
for ``sqlkv.dbapi2`` / ``sqlkv.aio``, registered through the ``sqlalchemy.dialects`` entry
points ``sqlite.sqlkv`` and ``sqlite.sqlkv_async``. The URL and the pool are in
``sqlkv.sqlalchemy.dialect``; docs/python-sqlalchemy-aio.md says why the pool holds one
connection.
"""

from __future__ import annotations

__all__: list[str] = []
