"""``sqlkv.dbapi2``: a PEP 249 module with the stdlib ``sqlite3`` module's interface and
behaviour, over sqlkv databases, so that ``import sqlkv.dbapi2 as sqlite3`` is a drop-in::

    import sqlkv.dbapi2 as sqlite3

    conn = sqlite3.connect("orders")            # a sqlkv database name (see ``names``)
    with conn:                                  # commits, or rolls back; does not close
        conn.execute("INSERT INTO t VALUES (?)", (1,))
    conn.close()

It is a layer over the apsw connection of ``sqlkv.connect`` (``conn.sqlkv_connection``),
not a second engine. Modules: ``connection`` (transactions), ``cursor``, ``exceptions``
(the PEP 249 classes and the SQLite code mapping), ``types`` (``Row``, adapters and
converters), ``statement`` (what the stdlib checks in SQL text), ``callbacks`` (user
functions), ``extras`` (``Blob``, ``backup``), ``names`` (what a name, path or
``":memory:"`` means), ``constants`` (``SQLITE_*``). Design: docs/python-dbapi.md.
"""

from __future__ import annotations

from typing import Any

import apsw

import sqlkv
from sqlkv.dbapi2 import constants
from sqlkv.dbapi2.columns import PARSE_COLNAMES, PARSE_DECLTYPES
from sqlkv.dbapi2.connection import LEGACY_TRANSACTION_CONTROL, Connection
from sqlkv.dbapi2.constants import *  # noqa: F403 - the SQLITE_* constants, as sqlite3's
from sqlkv.dbapi2.cursor import Cursor
from sqlkv.dbapi2.exceptions import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
)
from sqlkv.dbapi2.extras import Blob
from sqlkv.dbapi2.statement import complete_statement
from sqlkv.dbapi2.types import (
    Binary,
    Date,
    DateFromTicks,
    PrepareProtocol,
    Row,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
    adapt,
    adapters,
    converters,
    register_adapter,
    register_converter,
)

apilevel = "2.0"
paramstyle = "qmark"
# the stdlib's mapping of SQLite's threading mode: serialized (THREADSAFE=1) is level 3
threadsafety = {0: 0, 1: 3, 2: 1}.get(
    next(
        (int(o.split("=")[1]) for o in apsw.compile_options if o.startswith("THREADSAFE=")),
        1,
    ),
    0,
)
sqlite_version: str = apsw.sqlite_lib_version()
sqlite_version_info: tuple[int, ...] = tuple(int(p) for p in sqlite_version.split("."))
version: str = sqlkv.__version__
version_info: tuple[int, ...] = tuple(int(p) for p in version.split("."))


def connect(
    database: Any,
    timeout: float = 5.0,
    detect_types: int = 0,
    isolation_level: str | None = "",
    check_same_thread: bool = True,
    factory: type[Connection] | None = Connection,
    cached_statements: int = 128,
    uri: bool = False,
    *,
    autocommit: bool | int = LEGACY_TRANSACTION_CONTROL,
    store: Any = None,
    engine: Any = None,
    token: str | None = None,
    **options: Any,
) -> Connection:
    """Open the sqlkv database ``database`` (a name; ``":memory:"`` is a private in-process
    database; a file path is refused with a hint) and return a DB-API connection to it.

    ``store``, ``engine`` and ``token`` are resolved as by ``sqlkv.connect`` (explicit value,
    then ``SQLKV_STORE``/``SQLKV_ENGINE``/``SQLKV_TOKEN``, then ``./sqlkv-data``); the other
    arguments are the stdlib's. Further keywords (``cache_size=``...) go to ``sqlkv.connect``.
    """
    cls = Connection if factory is None else factory
    return cls(
        database,
        timeout=timeout,
        detect_types=detect_types,
        isolation_level=isolation_level,
        check_same_thread=check_same_thread,
        factory=factory,
        cached_statements=cached_statements,
        uri=uri,
        autocommit=autocommit,
        store=store,
        engine=engine,
        token=token,
        **options,
    )


def enable_callback_tracebacks(flag: bool, /) -> None:
    """Accepted for compatibility; callback errors are not printed."""


def enable_shared_cache(enable: int) -> None:
    raise NotSupportedError("sqlkv connections do not share a page cache")


__all__ = [
    "LEGACY_TRANSACTION_CONTROL",
    "PARSE_COLNAMES",
    "PARSE_DECLTYPES",
    "Binary",
    "Blob",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "PrepareProtocol",
    "ProgrammingError",
    "Row",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "Warning",
    "adapt",
    "adapters",
    "apilevel",
    "complete_statement",
    "connect",
    "converters",
    "enable_callback_tracebacks",
    "enable_shared_cache",
    "paramstyle",
    "register_adapter",
    "register_converter",
    "sqlite_version",
    "sqlite_version_info",
    "threadsafety",
    "version",
    "version_info",
]
__all__ += constants.__all__
