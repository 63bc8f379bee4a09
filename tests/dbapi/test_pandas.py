"""pandas through the DB-API connection: ``DataFrame.to_sql`` and ``read_sql`` round trips
(numbers, text, booleans, NULLs, dates, datetimes, times, the index; ``if_exists`` fail,
replace and append), committed and durable.

pandas warns that it only tests sqlite3 connections among DB-API objects (it checks the
class); the warning is expected here and asserted, the behaviour is what is tested.
"""

from __future__ import annotations

import datetime
import sqlite3
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import sqlkv.dbapi2 as dbapi2
from sqlkv.store import MemoryStore


@pytest.fixture
def conn(memory_store: MemoryStore) -> Iterator[dbapi2.Connection]:
    c = dbapi2.connect("frames", store=memory_store)
    yield c
    c.close()


def _quiet(call: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call(*args, **kwargs)
    assert all("SQLAlchemy" in str(w.message) for w in caught), [str(w.message) for w in caught]
    return result


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "qty": [1, 2, 3],
            "price": [1.5, None, 3.25],
            "name": ["anvil", None, "cup"],
            "ok": [True, False, True],
            "at": pd.to_datetime(
                ["2024-01-01 09:00:00", "2024-02-29 12:30:45.123456", None], format="ISO8601"
            ),
            "day": [datetime.date(2024, 1, 1), datetime.date(2024, 1, 2), None],
            "clock": [datetime.time(9, 0), datetime.time(12, 30, 1, 5), None],
        },
        index=pd.Index([10, 20, 30], name="id"),
    )


def _stdlib(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "frames.db")


def test_to_sql_and_read_sql_round_trip(conn: dbapi2.Connection, tmp_path: Path) -> None:
    frame = _frame()
    reference = _stdlib(tmp_path)
    assert _quiet(frame.to_sql, "items", conn) == frame.to_sql("items", reference) == 3
    assert not conn.in_transaction  # to_sql committed
    query = "SELECT * FROM items ORDER BY id"
    dates = {"at": {"format": "ISO8601"}}
    back = _quiet(pd.read_sql, query, conn, index_col="id", parse_dates=dates)
    expected = pd.read_sql(query, reference, index_col="id", parse_dates=dates)
    pd.testing.assert_frame_equal(back, expected)  # exactly what the stdlib gives
    assert back.index.tolist() == [10, 20, 30]
    assert back["qty"].tolist() == [1, 2, 3]
    assert back["at"].tolist()[:2] == frame["at"].tolist()[:2]
    assert back["day"].tolist()[:2] == ["2024-01-01", "2024-01-02"]
    assert back["clock"].tolist()[:2] == ["09:00:00.000000", "12:30:01.000005"]
    schema = "SELECT sql FROM sqlite_master WHERE name = 'items'"
    assert conn.execute(schema).fetchall() == reference.execute(schema).fetchall()
    reference.close()


def test_read_sql_with_parameters_and_chunks(conn: dbapi2.Connection, tmp_path: Path) -> None:
    reference = _stdlib(tmp_path)
    _quiet(_frame().to_sql, "items", conn)
    _frame().to_sql("items", reference)
    query = "SELECT name, qty FROM items WHERE qty >= ?"
    pd.testing.assert_frame_equal(
        _quiet(pd.read_sql, query, conn, params=(2,)), pd.read_sql(query, reference, params=(2,))
    )
    chunks = list(_quiet(pd.read_sql, "SELECT qty FROM items ORDER BY qty", conn, chunksize=2))
    assert [c["qty"].tolist() for c in chunks] == [[1, 2], [3]]
    reference.close()


def test_if_exists_fail_replace_append(conn: dbapi2.Connection, memory_store: MemoryStore) -> None:
    frame = _frame()
    _quiet(frame.to_sql, "items", conn)
    with pytest.raises(ValueError, match="already exists"):
        _quiet(frame.to_sql, "items", conn, if_exists="fail")
    _quiet(frame.head(1).to_sql, "items", conn, if_exists="replace")
    assert conn.execute("SELECT count(*) FROM items").fetchone() == (1,)
    _quiet(frame.to_sql, "items", conn, if_exists="append")
    assert conn.execute("SELECT count(*) FROM items").fetchone() == (4,)
    conn.close()
    again = dbapi2.connect("frames", store=memory_store)  # durable: committed by to_sql
    assert again.execute("SELECT count(*) FROM items").fetchone() == (4,)
    again.close()


def test_a_failing_to_sql_rolls_back_and_leaves_no_partial_rows(conn: dbapi2.Connection) -> None:
    conn.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, qty INTEGER NOT NULL)")
    conn.commit()
    bad = pd.DataFrame({"id": [1, 2], "qty": [1, None]})
    with pytest.raises(dbapi2.IntegrityError):
        _quiet(bad.to_sql, "items", conn, if_exists="append", index=False)
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM items").fetchone() == (0,)
