"""The PEP 249 exception hierarchy of ``sqlkv.dbapi2``, and the one table that maps apsw's
exceptions onto it the way the stdlib ``sqlite3`` maps SQLite result codes.

``Error`` also derives from ``sqlkv.errors.SqlkvError`` so that one ``except SqlkvError``
still catches everything sqlkv raises. A failure whose cause is a sqlkv error keeps that
class too (``errors.dual_error``): a fenced connection raises an exception that is an
``OperationalError`` and a ``ConnectionFenced``, a refused commit one that is an
``OperationalError`` and a ``QuotaExceeded``, an unreachable engine one that is an
``OperationalError`` and the ``TransportError``/``StoreUnavailable`` that caused it.
"""

from __future__ import annotations

import apsw

from sqlkv.errors import ConfigError, SqlkvError, dual_error, sqlkv_kind


class Warning(Exception):
    """PEP 249 ``Warning`` (unused by sqlite3, as in the stdlib)."""


class Error(SqlkvError):
    """Base of every DB-API error."""

    sqlite_errorcode: int = -1
    sqlite_errorname: str = ""


class InterfaceError(Error):
    """The module was misused (SQLite's MISUSE and RANGE codes)."""


class DatabaseError(Error):
    """An error reported by the database."""


class DataError(DatabaseError):
    """A value is too big (SQLite's TOOBIG)."""


class OperationalError(DatabaseError):
    """The database could not do what was asked (I/O, full, locked, syntax, interrupted ...)."""


class IntegrityError(DatabaseError):
    """A constraint was violated."""


class InternalError(DatabaseError):
    """SQLite's INTERNAL and NOTFOUND codes."""


class ProgrammingError(DatabaseError):
    """The program used the API wrongly (closed object, wrong bindings, wrong thread ...)."""


class NotSupportedError(DatabaseError):
    """A feature this database does not offer."""


# SQLite primary result code -> DB-API class, as CPython's Modules/_sqlite/util.c
_BY_CODE: dict[int, type[Error]] = {
    apsw.SQLITE_INTERNAL: InternalError,
    apsw.SQLITE_NOTFOUND: InternalError,
    apsw.SQLITE_CORRUPT: DatabaseError,
    apsw.SQLITE_TOOBIG: DataError,
    apsw.SQLITE_CONSTRAINT: IntegrityError,
    apsw.SQLITE_MISMATCH: IntegrityError,
    apsw.SQLITE_MISUSE: InterfaceError,
    apsw.SQLITE_RANGE: InterfaceError,
}
for _code in [
    "ERROR",
    "PERM",
    "ABORT",
    "BUSY",
    "LOCKED",
    "READONLY",
    "INTERRUPT",
    "IOERR",
    "FULL",
    "CANTOPEN",
    "PROTOCOL",
    "EMPTY",
    "SCHEMA",
]:
    _BY_CODE[getattr(apsw, f"SQLITE_{_code}")] = OperationalError

# apsw's own exceptions that are not SQLite result codes
_BY_APSW_CLASS: tuple[tuple[type[BaseException], type[Error]], ...] = (
    (apsw.BindingsError, ProgrammingError),
    (apsw.ConnectionClosedError, ProgrammingError),
    (apsw.CursorClosedError, ProgrammingError),
    (apsw.ThreadingViolationError, ProgrammingError),
    (apsw.ExecutionCompleteError, ProgrammingError),
    (apsw.IncompleteExecutionError, ProgrammingError),
    (apsw.ExecTraceAbort, OperationalError),
    (apsw.VFSNotImplementedError, NotSupportedError),
)


# apsw's class for each primary code (an exception built in Python carries no code)
_CODE_BY_CLASS: dict[type[BaseException], int] = {
    type(apsw.exception_for(code)): code for code in range(1, 27)
}


def _error_name(extended: int) -> str:
    name = apsw.mapping_result_codes.get(extended)
    if name is None:
        name = apsw.mapping_extended_result_codes.get(extended)
    if name is None:
        name = apsw.mapping_result_codes.get(extended & 0xFF, "")
    return str(name)


def translate(exc: BaseException) -> BaseException:
    """The DB-API exception for ``exc`` raised by apsw (anything else is returned as is)."""
    if isinstance(exc, Error) or not isinstance(exc, apsw.Error):
        return exc
    cls: type[Error] | None = None
    for apsw_cls, mapped in _BY_APSW_CLASS:
        if isinstance(exc, apsw_cls):
            cls = mapped
            break
    code = getattr(exc, "result", _CODE_BY_CLASS.get(type(exc), -1))
    extended = getattr(exc, "extendedresult", code)
    if cls is None:
        cls = _BY_CODE.get(code if isinstance(code, int) else -1, DatabaseError)
    message = str(exc.args[0]) if exc.args else str(exc)
    out = dual_error(cls, exc, message) if sqlkv_kind(exc) is not None else cls(message)
    if isinstance(extended, int) and extended >= 0:
        out.sqlite_errorcode = extended  # type: ignore[attr-defined]
        out.sqlite_errorname = _error_name(extended)  # type: ignore[attr-defined]
    out.__cause__ = exc
    return out


def config_error(message: str) -> BaseException:
    """An ``OperationalError`` that is also a ``sqlkv.errors.ConfigError`` (bad connect args)."""
    return dual_error(OperationalError, ConfigError(message), message)


def binding_error(exc: BaseException) -> BaseException:
    """What the stdlib raises where apsw raised ``exc`` while binding or running."""
    if isinstance(exc, Error):
        return exc
    if isinstance(exc, KeyError) and exc.args:
        return ProgrammingError(f"You did not supply a value for binding parameter :{exc.args[0]}.")
    if isinstance(exc, TypeError) and "dict or a sequence" in str(exc):
        return ProgrammingError("parameters are of unsupported type")
    return translate(exc)
