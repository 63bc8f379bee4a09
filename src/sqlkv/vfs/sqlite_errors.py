"""SQLite errors raised by the VFSs: apsw maps each exception class back to its SQLite code."""

from __future__ import annotations

import apsw

from sqlkv.errors import dual_error, sqlkv_kind


def sqlite_error(code: int, message: str, cause: BaseException | None = None) -> apsw.Error:
    """The apsw exception for SQLite (extended) ``code``, carrying ``message`` (and ``cause``
    as its ``__cause__``): what a VFS method raises so that SQLite sees that code.

    With a sqlkv ``cause`` (``QuotaExceeded``, ``TransportError``, ...) the exception is also
    of the cause's class (``errors.dual_error``), so ``except QuotaExceeded`` catches the
    ``apsw.FullError`` that a refused commit raises from ``execute`` or ``with conn:``.
    """
    exc = apsw.exception_for(code)
    if cause is not None and sqlkv_kind(cause) is not None:
        dual = dual_error(type(exc), cause, message)
        assert isinstance(dual, apsw.Error)
        # what apsw reads to tell SQLite the error code
        setattr(dual, "result", code & 0xFF)  # noqa: B010
        setattr(dual, "extendedresult", code)  # noqa: B010
        exc = dual
    assert isinstance(exc, apsw.Error)
    exc.args = (message,)
    exc.__cause__ = cause
    return exc
