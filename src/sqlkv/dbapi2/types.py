"""Values in and out of ``sqlkv.dbapi2``: ``Row``, the PEP 249 type constructors, and the
adapter/converter registries with the stdlib ``sqlite3``'s defaults (``date`` and
``datetime`` adapted to ISO text; ``"date"`` and ``"timestamp"`` converted back).

Registries are module-wide, as in the stdlib: ``register_adapter(type, fn)`` changes every
connection of the process.
"""

from __future__ import annotations

import datetime
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, SupportsIndex, overload

from sqlkv.dbapi2 import statement
from sqlkv.dbapi2.exceptions import ProgrammingError

# --------------------------------------------------------------------------- constructors

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = memoryview


def DateFromTicks(ticks: float) -> datetime.date:
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:
    return Timestamp(*time.localtime(ticks)[:6])


# --------------------------------------------------------------------------- adapters


class PrepareProtocol:
    """The protocol object of ``adapt`` and ``__conform__`` (as ``sqlite3.PrepareProtocol``)."""


Adapter = Callable[[Any], Any]
Converter = Callable[[bytes], Any]

adapters: dict[tuple[type, Any], Adapter] = {}
converters: dict[str, Converter] = {}

# types apsw binds itself (so its convert_binding hook never sees them)
NATIVE = (int, float, str, bytes, bytearray, memoryview, type(None))


class FLAGS:
    """``native_adapted``: an adapter is registered for a type apsw binds itself, so every
    parameter must be adapted in Python before apsw sees it (the slow path)."""

    native_adapted = False


_MISSING: Any = object()
_UNADAPTED: Any = object()


def register_adapter(type_: type, adapter: Adapter, /) -> None:
    """Bind values of exactly ``type_`` as ``adapter(value)``."""
    if issubclass(type_, NATIVE):
        FLAGS.native_adapted = True
        statement.native_adapted = True  # the hot paths (which do not adapt) go unused
        statement.kinds.clear()
    adapters[(type_, PrepareProtocol)] = adapter


def register_converter(typename: str, converter: Converter, /) -> None:
    """Convert columns declared (or named ``[typename]``) as ``typename``; case-insensitive."""
    converters[typename.upper()] = converter


def adapt(obj: Any, proto: Any = PrepareProtocol, alt: Any = _MISSING, /) -> Any:
    """The stdlib's ``adapt``: a registered adapter, ``proto.__adapt__``, ``obj.__conform__``,
    else ``alt``, else ``ProgrammingError``."""
    adapter = adapters.get((type(obj), proto))
    if adapter is not None:
        return adapter(obj)
    adapt_method = getattr(proto, "__adapt__", None)
    if adapt_method is not None:
        adapted = adapt_method(obj)
        if adapted is not None:
            return adapted
    conform = getattr(obj, "__conform__", None)
    if conform is not None:
        adapted = conform(proto)
        if adapted is not None:
            return adapted
    if alt is not _MISSING:
        return alt
    raise ProgrammingError("can't adapt")


def bind_value(number: int, value: Any) -> Any:
    """``value`` (parameter ``number``, from 1) adapted to what SQLite can store.

    After this module's adapters, those registered with the stdlib ``sqlite3`` module are
    tried too: libraries register there (pandas adapts ``datetime.time`` that way)."""
    adapted = adapt(value, PrepareProtocol, _UNADAPTED)
    if adapted is _UNADAPTED:
        stdlib_adapter = sqlite3.adapters.get((type(value), sqlite3.PrepareProtocol))
        adapted = value if stdlib_adapter is None else stdlib_adapter(value)
    if adapted is None or isinstance(adapted, NATIVE):
        if isinstance(adapted, bool):
            return int(adapted)
        return adapted
    raise ProgrammingError(
        f"Error binding parameter {number}: type '{type(value).__name__}' is not supported"
    )


def adapt_parameters(parameters: Any) -> Any:
    """Every parameter adapted in Python (only when an adapter for a native type exists)."""
    if isinstance(parameters, dict):
        return {k: bind_value(i, v) for i, (k, v) in enumerate(parameters.items(), 1)}
    return [bind_value(i, v) for i, v in enumerate(parameters, 1)]


def _adapt_date(value: datetime.date) -> str:
    return value.isoformat()


def _adapt_datetime(value: datetime.datetime) -> str:
    return value.isoformat(" ")


def _convert_date(value: bytes) -> datetime.date:
    return datetime.date(*map(int, value.split(b"-")))


def _convert_timestamp(value: bytes) -> datetime.datetime:
    datepart, timepart = value.split(b" ")
    year, month, day = map(int, datepart.split(b"-"))
    timepart_full = timepart.split(b".")
    hours, minutes, seconds = map(int, timepart_full[0].split(b":"))
    micro = int(f"{timepart_full[1].decode():0<6.6}") if len(timepart_full) == 2 else 0
    return datetime.datetime(year, month, day, hours, minutes, seconds, micro)


register_adapter(datetime.date, _adapt_date)
register_adapter(datetime.datetime, _adapt_datetime)
register_converter("date", _convert_date)
register_converter("timestamp", _convert_timestamp)


# --------------------------------------------------------------------------- Row


class Row:
    """A result row addressable by index and, case-insensitively, by column name."""

    __slots__ = ("_data", "_description")

    def __init__(self, cursor: Any, data: tuple[Any, ...], /) -> None:
        if not isinstance(data, tuple):
            raise TypeError("tuple required for the second argument")
        self._description: tuple[tuple[Any, ...], ...] = tuple(cursor.description or ())
        self._data = data

    def keys(self) -> list[str]:
        return [str(d[0]) for d in self._description]

    @overload
    def __getitem__(self, key: SupportsIndex | str) -> Any: ...

    @overload
    def __getitem__(self, key: slice) -> tuple[Any, ...]: ...

    def __getitem__(self, key: SupportsIndex | str | slice) -> Any:
        if isinstance(key, str):
            folded = key.casefold()
            for i, d in enumerate(self._description):
                if str(d[0]).casefold() == folded:
                    return self._data[i]
            raise IndexError("No item with that key")
        return self._data[key]

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return self._description == other._description and self._data == other._data

    def __hash__(self) -> int:
        return hash(self._description) ^ hash(self._data)

    def __repr__(self) -> str:
        return f"<sqlkv.dbapi2.Row object at {id(self):#x}>"


def convert_row(
    values: Sequence[Any], converters_by_column: Sequence[Converter | None], text: Any
) -> tuple[Any, ...]:
    """Apply column converters (to the value's bytes) and the text factory to one row."""
    out: list[Any] = []
    for value, convert in zip(values, converters_by_column, strict=False):
        if value is None:
            out.append(None)
        elif convert is not None:
            out.append(convert(_as_bytes(value)))
        elif isinstance(value, str) and text is not str:
            out.append(text(value.encode()))
        else:
            out.append(value)
    return tuple(out)


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return repr(value).encode()  # an INTEGER or REAL, as SQLite renders it as text
