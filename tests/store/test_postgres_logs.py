"""Conflicts the PostgreSQL driver handles leave no noise: psycopg's ``error ignored
terminating <psycopg.Pipeline [INERROR]>`` warning came from leaving a pipeline with an
error still pending; the driver now settles the pipeline before it translates the error."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from drivers import postgres_url_or_skip

from sqlkv.errors import ConflictError
from sqlkv.store import RetryPolicy
from sqlkv.store.postgres import PostgresStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg() -> Iterator[PostgresStore]:
    url = postgres_url_or_skip()
    store = PostgresStore(
        url, table=f"kv_test_{uuid.uuid4().hex[:12]}", retry=RetryPolicy(max_attempts=1)
    )
    yield store
    store.drop()
    store.close()


def noise(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> list[str]:
    records = [r.getMessage() for r in caplog.records if r.name.startswith("psycopg")]
    return records + [line for line in capfd.readouterr().err.splitlines() if "psycopg" in line]


def test_serialization_conflicts_leave_no_pipeline_warnings(
    pg: PostgresStore, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    pg.transact(lambda tr: tr.set(b"k", b"0"))
    conflicts = 0
    for n in range(20):
        first, second = pg.begin(), pg.begin()
        try:
            first.get(b"k")
            second.get(b"k")
            first.set(b"k", b"first %d" % n)
            second.set(b"k", b"second %d" % n)
            first.commit()
            with pytest.raises(ConflictError):
                second.commit()
            conflicts += 1
        finally:
            first.close()
            second.close()
    assert conflicts == 20
    assert pg.transact(lambda tr: tr.get(b"k")) == b"first 19"  # the store still works
    assert noise(caplog, capfd) == []
