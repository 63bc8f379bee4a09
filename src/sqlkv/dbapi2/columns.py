"""The result columns of a ``sqlkv.dbapi2`` statement: reading them from a statement that
has finished (``probe``), names as ``description`` shows them (``strip_colname`` with
``PARSE_COLNAMES``), and the converters ``detect_types`` picks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import apsw

from sqlkv.dbapi2.types import Converter, converters

if TYPE_CHECKING:
    from sqlkv.dbapi2.connection import Connection

PARSE_DECLTYPES = 1
PARSE_COLNAMES = 2


class _Probe(Exception):
    pass


def probe(connection: Connection, sql: str, params: Any) -> tuple[tuple[str, str | None], ...]:
    """(name, declared type) of each result column of ``sql``, a statement that has
    finished: it is prepared again with the same bindings, never run."""
    conn = connection._check()
    probe = conn.cursor()
    found: list[tuple[tuple[str, str | None], ...]] = []

    def capture(traced: apsw.Cursor, sql_text: str, bindings: Any) -> bool:
        found.append(tuple(traced.get_description()))
        raise _Probe

    probe.exec_trace = capture
    try:
        with connection._lock:
            probe.execute(sql, params)
    except (_Probe, apsw.Error, TypeError, KeyError):
        pass
    finally:
        probe.close()
    return found[0] if found else ()


def strip_colname(name: str) -> str:
    cut = name.find("[")
    if cut < 0:
        return name
    if cut > 0 and name[cut - 1] == " ":
        cut -= 1
    return name[:cut]


def converters_for(
    columns: tuple[tuple[str, str | None], ...], detect_types: int
) -> list[Converter | None]:
    out: list[Converter | None] = []
    for name, decltype in columns:
        convert: Converter | None = None
        if detect_types & PARSE_COLNAMES:
            start = name.find("[")
            end = name.find("]", start + 1)
            if start >= 0 and end > start:
                convert = converters.get(name[start + 1 : end].upper())
        if convert is None and detect_types & PARSE_DECLTYPES and decltype:
            word = decltype.split("(", 1)[0].split(" ", 1)[0]
            convert = converters.get(word.upper())
        out.append(convert)
    return out
