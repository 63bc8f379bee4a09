"""pandas DataFrame.to_sql / read_sql round trips through a sqlite+sqlkv:// engine."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, create_engine


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "i": np.array([1, 2, 3], dtype="int64"),
            "f": [0.5, 1.25, -3.0],
            "s": ["a", "b", None],
            "b": [True, False, True],
            "t": pd.to_datetime(
                ["2024-01-01 10:00:00", "2024-02-29 23:59:59", "2025-12-31 00:00:00"]
            ),
            "d": [dt.date(2024, 1, 1), dt.date(2024, 6, 30), dt.date(1999, 12, 31)],
        },
        index=pd.Index([10, 20, 30], name="key"),
    )


def test_round_trip_keeps_types_and_index(engine: Engine, store_url: str) -> None:
    frame = _frame()
    assert frame.to_sql("items", engine) == 3
    engine.dispose()
    fresh = create_engine(f"sqlite+sqlkv:///orders?store={store_url}")
    back = pd.read_sql_table("items", fresh, index_col="key", parse_dates=["t"])
    fresh.dispose()
    assert list(back.columns) == list(frame.columns)
    pd.testing.assert_series_equal(back["i"], frame["i"])
    pd.testing.assert_series_equal(back["f"], frame["f"])
    assert back["s"].tolist()[:2] == ["a", "b"] and back["s"].isna().tolist()[2]
    assert back["b"].astype(bool).tolist() == [True, False, True]
    assert back["t"].tolist() == frame["t"].tolist()
    assert [pd.Timestamp(v).date() for v in back["d"]] == frame["d"].tolist()
    assert back.index.tolist() == [10, 20, 30] and back.index.name == "key"


def test_read_sql_query_with_parameters(engine: Engine) -> None:
    _frame().to_sql("items", engine)
    got = pd.read_sql("SELECT i, s FROM items WHERE f > ? ORDER BY i", engine, params=(0.0,))
    assert got.to_dict("list") == {"i": [1, 2], "s": ["a", "b"]}


@pytest.mark.parametrize(
    ("mode", "expected"), [("append", [1, 2, 3, 1, 2, 3]), ("replace", [1, 2, 3])]
)
def test_if_exists_modes(engine: Engine, mode: str, expected: list[int]) -> None:
    frame = _frame()
    frame.to_sql("items", engine)
    frame.to_sql("items", engine, if_exists=mode)  # type: ignore[arg-type]
    assert pd.read_sql("SELECT i FROM items", engine)["i"].tolist() == expected


def test_if_exists_fail_raises_and_leaves_the_table(engine: Engine) -> None:
    frame = _frame()
    frame.to_sql("items", engine)
    with pytest.raises(ValueError, match="already exists"):
        frame.to_sql("items", engine, if_exists="fail")
    assert len(pd.read_sql("SELECT * FROM items", engine)) == 3


def test_chunked_write_of_many_rows(engine: Engine) -> None:
    frame = pd.DataFrame({"n": range(5000), "sq": [n * n for n in range(5000)]})
    frame.to_sql("big", engine, index=False, chunksize=700, method="multi")
    back = pd.read_sql("SELECT n, sq FROM big ORDER BY n", engine)
    pd.testing.assert_frame_equal(back, frame)
