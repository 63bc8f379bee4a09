"""User callbacks registered through ``sqlkv.dbapi2.Connection``, wrapped so that apsw sees
them with the stdlib ``sqlite3``'s contract: a function, aggregate or window method that
raises makes the statement fail with ``OperationalError`` ("user-defined function raised
exception"); an authorizer or progress handler that raises denies or interrupts; a trace
callback that raises is ignored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import apsw

from sqlkv.dbapi2.constants import SQLITE_DENY

_RESULT_TYPES = (int, float, str, bytes, bytearray, memoryview, type(None))


def _failed(message: str, cause: BaseException) -> apsw.SQLError:
    exc = apsw.SQLError(message)
    exc.__cause__ = cause
    return exc


def _result(value: Any, what: str) -> Any:
    if isinstance(value, _RESULT_TYPES):
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise apsw.SQLError(f"{what} raised exception")
        return value
    raise apsw.SQLError(f"{what} raised exception")


def scalar(func: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            value = func(*args)
        except BaseException as exc:
            raise _failed("user-defined function raised exception", exc) from exc
        return _result(value, "user-defined function")

    return call


class _Lazy:
    """The aggregate instance, made at the first call that needs it: like the stdlib, an
    aggregate over no rows never instantiates its class and its result is NULL."""

    def __init__(self, cls: Callable[[], Any]) -> None:
        self.cls = cls
        self.instance: Any = None

    def get(self) -> Any:
        if self.instance is None:
            try:
                self.instance = self.cls()
            except BaseException as exc:
                raise _failed(
                    "user-defined aggregate's '__init__' method raised error", exc
                ) from exc
        return self.instance

    def call(self, name: str, *args: Any) -> Any:
        instance = self.get()
        try:
            return getattr(instance, name)(*args)
        except BaseException as exc:
            raise _failed(f"user-defined aggregate's '{name}' method raised error", exc) from exc

    def result(self, name: str) -> Any:
        if self.instance is None and name == "finalize":
            return None
        return _result(self.call(name), f"user-defined aggregate's '{name}' method")


def aggregate(cls: Callable[[], Any]) -> Callable[[], Any]:
    """apsw's aggregate factory for a class with ``step(*args)`` and ``finalize()``."""

    def factory() -> Any:
        lazy = _Lazy(cls)
        return (
            None,
            lambda _ctx, *args: lazy.call("step", *args),
            lambda _ctx: lazy.result("finalize"),
        )

    return factory


def window(cls: Callable[[], Any]) -> Callable[[], Any]:
    """apsw's window factory for a class with ``step``, ``inverse``, ``value``, ``finalize``."""

    def factory() -> Any:
        lazy = _Lazy(cls)
        return (
            None,
            lambda _ctx, *args: lazy.call("step", *args),
            lambda _ctx: lazy.result("finalize"),
            lambda _ctx: lazy.result("value"),
            lambda _ctx, *args: lazy.call("inverse", *args),
        )

    return factory


def collation(func: Callable[[str, str], Any]) -> Callable[[str, str], int]:
    def compare(a: str, b: str) -> int:
        try:
            result = func(a, b)
        except Exception:
            return 0
        return int(result) if isinstance(result, int) else 0

    return compare


def authorizer(func: Callable[..., Any]) -> Callable[..., int]:
    def authorize(*args: Any) -> int:
        try:
            result = func(*args)
        except Exception:
            return SQLITE_DENY
        return result if isinstance(result, int) and not isinstance(result, bool) else SQLITE_DENY

    return authorize


def progress(func: Callable[[], Any]) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return bool(func())
        except Exception:
            return True  # abort, as the stdlib does

    return check


def tracer(func: Callable[[str], Any]) -> Callable[[apsw.Cursor, str, Any], bool]:
    """An apsw exec tracer that hands the statement's expanded SQL to ``func``."""

    def trace(cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        try:
            text = cursor.expanded_sql
        except apsw.Error:
            text = sql
        with contextlib.suppress(Exception):
            func(text)
        return True

    return trace
