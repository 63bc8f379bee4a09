"""SQLite errors raised by the VFSs: apsw maps each exception class back to its SQLite code."""

from __future__ import annotations

import apsw


def sqlite_error(code: int, message: str, cause: BaseException | None = None) -> apsw.Error:
    """The apsw exception for SQLite (extended) ``code``, carrying ``message`` (and
    ``cause`` as its ``__cause__``): what a VFS method raises so SQLite sees that code."""
    exc = apsw.exception_for(code)
    assert isinstance(exc, apsw.Error)
    exc.args = (message,)
    exc.__cause__ = cause
    return exc
