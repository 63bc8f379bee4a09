"""``sqlkv.dbapi2.Connection``: the stdlib ``sqlite3.Connection`` over the apsw connection
that ``sqlkv.connect`` returns (``sqlkv_connection``), with the stdlib's transaction control.

- ``autocommit=LEGACY_TRANSACTION_CONTROL`` (the default): before an INSERT, UPDATE, DELETE
  or REPLACE outside a transaction, ``BEGIN <isolation_level>`` runs (none when
  ``isolation_level`` is None); ``commit()``/``rollback()`` end an open transaction;
  ``executescript`` commits first.
- ``autocommit=False`` (PEP 249): a transaction is always open; ``commit()`` and
  ``rollback()`` end it and open the next; ``close()`` rolls back.
- ``autocommit=True``: SQLite's own autocommit; ``commit()``/``rollback()`` do nothing.

``with conn:`` commits (or rolls back after an exception) and does not close; a commit that
fails there rolls back and raises the commit's own error, which for a fenced, over-quota or
unreachable database is an ``OperationalError`` that is also ``ConnectionFenced``,
``QuotaExceeded`` or the transport error (``exceptions.translate``).

Every SQLite transaction is one engine commit, as on the apsw connection.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from threading import get_ident
from typing import Any, Final, Literal

import apsw

from sqlkv.dbapi2 import callbacks, exceptions, extras, names, new_cursor
from sqlkv.dbapi2 import cursor as cursor_module
from sqlkv.dbapi2.cursor import Cursor
from sqlkv.dbapi2.exceptions import NotSupportedError, ProgrammingError, translate
from sqlkv.dbapi2.types import bind_value
from sqlkv.errors import SqlkvError, dual_error
from sqlkv.logs import failure_fields

log = logging.getLogger("sqlkv.dbapi2")

LEGACY_TRANSACTION_CONTROL: Final = -1
_LEVELS = ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE")


def _check_level(level: Any) -> str | None:
    if level is None:
        return None
    if not isinstance(level, str):
        raise TypeError(f"isolation_level must be str or None, not {type(level).__name__}")
    upper = level.upper()
    if upper not in _LEVELS:
        raise ValueError(
            "isolation_level string must be '', 'DEFERRED', 'IMMEDIATE', or 'EXCLUSIVE'"
        )
    return upper


def _check_autocommit(value: Any) -> bool | int:
    if value is True or value is False or value == LEGACY_TRANSACTION_CONTROL:
        return value if isinstance(value, bool) else LEGACY_TRANSACTION_CONTROL
    raise ValueError("autocommit must be True, False, or sqlite3.LEGACY_TRANSACTION_CONTROL")


def _convert_binding(cursor: apsw.Cursor, number: int, value: Any) -> Any:
    # apsw asks only for values it cannot bind itself (dates, adapted classes, ...)
    return bind_value(number, value)


# with the C hot paths, the attributes they read are the C base type's fields (§8)
_Base: Any = object if cursor_module._speedups is None else cursor_module._speedups.ConnectionBase


class Connection(_Base):  # type: ignore[misc]
    """A DB-API connection to one sqlkv database (see the module docstring)."""

    Warning = exceptions.Warning
    Error = exceptions.Error
    InterfaceError = exceptions.InterfaceError
    DatabaseError = exceptions.DatabaseError
    DataError = exceptions.DataError
    OperationalError = exceptions.OperationalError
    IntegrityError = exceptions.IntegrityError
    InternalError = exceptions.InternalError
    ProgrammingError = exceptions.ProgrammingError
    NotSupportedError = exceptions.NotSupportedError

    def __init__(
        self,
        database: Any,
        timeout: float = 5.0,
        detect_types: int = 0,
        isolation_level: str | None = "",
        check_same_thread: bool = True,
        factory: Any = None,
        cached_statements: int = 128,
        uri: bool = False,
        *,
        autocommit: bool | int = LEGACY_TRANSACTION_CONTROL,
        store: Any = None,
        engine: Any = None,
        token: str | None = None,
        **options: Any,
    ) -> None:
        """Open ``database`` (a sqlkv name; see ``names``). ``timeout`` and
        ``cached_statements`` are accepted for compatibility: one owner per database means
        no lock waits, and apsw keeps its own statement cache. ``options`` go to
        ``sqlkv.connect`` (``cache_size=``, ``format=``, ...)."""
        self._apsw: apsw.Connection | None = None
        # the hot paths' one check: the owner's thread id while the connection is open and
        # checks threads (check_same_thread=True), else None (the full checks run)
        self._fast_thread: int | None = None
        self._isolation_level = _check_level(isolation_level)
        self._autocommit = _check_autocommit(autocommit)
        if not isinstance(detect_types, int):
            raise TypeError("detect_types must be int")
        self._detect_types = detect_types
        self._check_same_thread = bool(check_same_thread)
        self._thread = threading.get_ident()
        # one apsw call at a time: with check_same_thread=False, threads take turns here
        # (apsw would refuse a second concurrent call rather than wait, as SQLite's would)
        self._lock = threading.RLock()
        self.row_factory: Callable[[Cursor, tuple[Any, ...]], Any] | None = None
        self._text_factory: Any = str
        # rows go out as apsw builds them (no text factory, no converters)
        self._plain_text = not detect_types
        # the legacy mode opens a transaction before DML (isolation_level is not None)
        self._begins = self._isolation_level is not None and self._legacy
        # a user callback was registered: it could run SQL of its own in a statement
        self._callbacks = False
        name = names.resolve(database, uri)
        try:
            conn = names.open_apsw(name, store, engine, token, options)
        except exceptions.Error:
            raise
        except apsw.Error as exc:
            raise translate(exc) from exc
        except SqlkvError as exc:
            raise dual_error(exceptions.OperationalError, exc, str(exc)) from exc
        conn.convert_binding = _convert_binding
        self._apsw = conn
        self._fast_thread = self._thread if self._check_same_thread else None
        if self._autocommit is False:
            try:
                self._execute_control("BEGIN")
            except BaseException:
                self._apsw = self._fast_thread = None
                conn.close()
                raise

    # ------------------------------------------------------------------ checks

    def _check(self) -> apsw.Connection:
        """The apsw connection, after the stdlib's thread and closed checks."""
        if self._check_same_thread and get_ident() != self._thread:
            raise ProgrammingError(
                "SQLite objects created in a thread can only be used in that same thread. "
                f"The object was created in thread id {self._thread} and this is thread id "
                f"{get_ident()}."
            )
        conn = self._apsw
        if conn is None:
            raise ProgrammingError("Cannot operate on a closed database.")
        return conn

    def _check_open(self) -> apsw.Connection:
        conn = self._apsw
        if conn is None:
            raise ProgrammingError("Cannot operate on a closed database.")
        return conn

    @property
    def sqlkv_connection(self) -> apsw.Connection:
        """The apsw connection underneath (``sqlkv_stats``, ``sqlkv_head()``, ...)."""
        return self._check_open()

    # ------------------------------------------------------------------ transactions

    def _execute_control(self, sql: str) -> None:
        try:
            with self._lock:
                self._check_open().execute(sql)
        except apsw.Error as exc:
            raise translate(exc) from exc

    def _begin_implicitly(self) -> None:
        """Before DML, in the legacy mode: open the transaction the stdlib opens."""
        level = self._isolation_level
        if level is not None and self._legacy and not self._check_open().in_transaction:
            self._execute_control("BEGIN " + level)

    def _commit_before_script(self) -> None:
        if self._legacy and self._check_open().in_transaction:
            self._execute_control("COMMIT")

    @property
    def _legacy(self) -> bool:
        """Whether transactions follow the legacy (pre-3.12) implicit control."""
        return not isinstance(self._autocommit, bool)

    def _end(self, sql: str, reopen: bool = True) -> None:
        mode = self._autocommit
        if mode is True:
            return
        with self._lock:  # the check and the statement as one step for shared connections
            if mode is False:
                self._execute_control(sql)
                if reopen:
                    self._execute_control("BEGIN")
            elif self._check_open().in_transaction:
                self._execute_control(sql)

    def commit(self) -> None:
        self._check()
        self._end("COMMIT")

    def rollback(self) -> None:
        self._check()
        self._end("ROLLBACK")

    @property
    def text_factory(self) -> Any:
        return self._text_factory

    @text_factory.setter
    def text_factory(self, value: Any) -> None:
        self._text_factory = value
        self._plain_text = value is str and not self._detect_types

    def _update_begins(self) -> None:
        self._begins = self._isolation_level is not None and self._legacy

    @property
    def in_transaction(self) -> bool:
        return bool(self._check_open().in_transaction)

    @property
    def total_changes(self) -> int:
        return int(self._check_open().total_changes())

    @property
    def isolation_level(self) -> str | None:
        self._check_open()
        return self._isolation_level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        level = _check_level(value)
        if level is None:
            self._check_open()
            self._isolation_level = None
            self._update_begins()
            self._end("COMMIT")  # the stdlib commits to re-enable autocommit
            return
        self._isolation_level = level
        self._update_begins()

    @property
    def autocommit(self) -> bool | int:
        self._check()
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: bool | int) -> None:
        self._check()
        mode = _check_autocommit(value)
        with self._lock:
            if mode is True and self._check_open().in_transaction:
                self._execute_control("COMMIT")
            self._autocommit = mode
            self._update_begins()
            if mode is False and not self._check_open().in_transaction:
                self._execute_control("BEGIN")

    def __enter__(self) -> Connection:
        self._check_open()
        return self

    def __exit__(self, etype: type[BaseException] | None, *exc: object) -> Literal[False]:
        if etype is not None:
            self.rollback()
            return False
        try:
            self.commit()
        except BaseException:
            # the commit failed: roll back to unlock, and report the commit's own error
            try:
                self.rollback()
            except Exception as exc:
                log.debug(
                    "rollback after a failed commit failed: %s: %s",
                    type(exc).__name__,
                    exc,
                    extra=failure_fields(exc),
                )
            raise
        return False

    # ------------------------------------------------------------------ statements

    def cursor(self, factory: Callable[[Connection], Cursor] = Cursor) -> Cursor:
        self._check()
        cursor = factory(self)
        if type(cursor) is not Cursor and not isinstance(cursor, Cursor):
            raise TypeError("factory must return a cursor, not " + type(cursor).__name__)
        return cursor

    # as the stdlib's, these make a plain Cursor (not through an overridden cursor())
    execute = new_cursor.execute_on_new_cursor

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor:
        self._check()
        return Cursor(self).executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> Cursor:
        self._check()
        return Cursor(self).executescript(sql_script)

    # ------------------------------------------------------------------ user functions

    def create_function(
        self, name: str, narg: int, func: Callable[..., Any] | None, *, deterministic: bool = False
    ) -> None:
        conn = self._check()
        self._callbacks = True
        try:
            if func is None:
                conn.create_scalar_function(name, None, narg)
            else:
                conn.create_scalar_function(
                    name, callbacks.scalar(func), narg, deterministic=deterministic
                )
        except apsw.Error as exc:
            raise translate(exc) from exc

    def create_aggregate(self, name: str, n_arg: int, aggregate_class: Any) -> None:
        conn = self._check()
        self._callbacks = True
        factory = None if aggregate_class is None else callbacks.aggregate(aggregate_class)
        try:
            conn.create_aggregate_function(name, factory, n_arg)
        except apsw.Error as exc:
            raise translate(exc) from exc

    def create_window_function(self, name: str, num_params: int, aggregate_class: Any, /) -> None:
        conn = self._check()
        self._callbacks = True
        factory = None if aggregate_class is None else callbacks.window(aggregate_class)
        try:
            conn.create_window_function(name, factory, num_params)
        except apsw.Error as exc:
            raise translate(exc) from exc

    def create_collation(self, name: str, callable: Callable[[str, str], Any] | None, /) -> None:
        conn = self._check()
        self._callbacks = True
        if not isinstance(name, str):
            raise TypeError(f"create_collation() argument 1 must be str, not {type(name).__name__}")
        if callable is not None and not hasattr(callable, "__call__"):  # noqa: B004
            raise TypeError("parameter must be callable")
        conn.create_collation(name, None if callable is None else callbacks.collation(callable))

    def set_authorizer(self, authorizer_callback: Callable[..., Any] | None) -> None:
        """Runs after sqlkv's own safety authorizer (unsafe pragmas), never instead of it."""
        conn = self._check()
        self._callbacks = True
        conn.authorizer = (
            None if authorizer_callback is None else callbacks.authorizer(authorizer_callback)
        )

    def set_progress_handler(self, progress_handler: Callable[[], Any] | None, n: int) -> None:
        conn = self._check()
        self._callbacks = True
        if progress_handler is None:
            conn.set_progress_handler(None)
        else:
            conn.set_progress_handler(callbacks.progress(progress_handler), n)

    def set_trace_callback(self, trace_callback: Callable[[str], Any] | None) -> None:
        """Called with each statement's SQL (bound values expanded), as it starts."""
        conn = self._check()
        conn.exec_trace = None if trace_callback is None else callbacks.tracer(trace_callback)

    def interrupt(self) -> None:
        self._check_open().interrupt()

    def getlimit(self, category: int, /) -> int:
        return int(self._check().limit(category))

    def setlimit(self, category: int, limit: int, /) -> int:
        return int(self._check().limit(category, limit))

    def enable_load_extension(self, enabled: bool, /) -> None:
        self._check()
        raise NotSupportedError("sqlkv connections do not load SQLite extensions")

    def load_extension(self, name: str, /, *, entrypoint: str | None = None) -> None:
        self._check()
        raise NotSupportedError("sqlkv connections do not load SQLite extensions")

    def serialize(self, *, name: str = "main") -> bytes:
        try:
            return bytes(self._check().serialize(name))
        except apsw.Error as exc:
            raise translate(exc) from exc

    def deserialize(self, data: bytes, /, *, name: str = "main") -> None:
        self._check()
        raise NotSupportedError(
            "deserialize() would replace the database with an in-memory image that sqlkv "
            "does not store; load a file with `sqlkv import` or copy rows instead"
        )

    # ------------------------------------------------------------------ copies

    def iterdump(self, *, filter: str | None = None) -> Iterator[str]:
        """The database as SQL text, by the stdlib's own dump code (``filter=``, a LIKE
        pattern of table names, where the stdlib has it: Python 3.13+)."""
        self._check()
        from sqlite3 import dump

        iterdump: Callable[..., Iterator[str]] = dump._iterdump  # type: ignore[attr-defined]
        if filter is None:
            return iterdump(self)
        try:
            return iterdump(self, filter=filter)
        except TypeError:
            raise NotSupportedError("iterdump(filter=) needs Python 3.13 or later") from None

    def backup(
        self,
        target: Any,
        *,
        pages: int = -1,
        progress: extras.Progress | None = None,
        name: str = "main",
        sleep: float = 0.250,
    ) -> None:
        """Copy this database into ``target``: a ``sqlkv.dbapi2.Connection``, a
        ``sqlite3.Connection``, or the path of a plain SQLite file (see ``extras``)."""
        conn = self._check()
        if target is self:
            raise ValueError("target cannot be the same connection instance")
        if progress is not None and not callable(progress):
            raise TypeError("progress argument must be a callable")
        extras.backup(conn, target, pages=pages, progress=progress, name=name, sleep=sleep)

    def blobopen(
        self, table: str, column: str, row: int, /, *, readonly: bool = False, name: str = "main"
    ) -> extras.Blob:
        conn = self._check()
        try:
            blob = conn.blob_open(name, table, column, row, not readonly)
        except apsw.Error as exc:
            raise translate(exc) from exc
        return extras.Blob(self, blob)

    # ------------------------------------------------------------------ lifetime

    def close(self) -> None:
        self._check_thread_only()
        conn = self._apsw
        if conn is None:
            return
        with self._lock:
            try:
                if self._autocommit is False and conn.in_transaction:
                    self._execute_control("ROLLBACK")
            finally:
                self._apsw = self._fast_thread = None
                conn.close()

    def _check_thread_only(self) -> None:
        if self._check_same_thread and threading.get_ident() != self._thread:
            self._check()


cursor_module.connection_class = Connection
if cursor_module._speedups is not None:  # Connection.execute in C (docs/python-dbapi.md §8)
    cursor_module._speedups.install(
        Cursor,
        Connection,
        cursor_module._KINDS,
        new_cursor.execute_general,
        new_cursor.raise_mapped,
        exceptions.translate,
        exceptions.binding_error,
    )
