"""The 3.12 ``autocommit`` attribute (LEGACY_TRANSACTION_CONTROL, True, False), differentially
against the stdlib: live on Python >= 3.12, else against the events the stdlib of 3.12
recorded (``stdlib_autocommit.json``, made by ``record_stdlib.py``)."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
from differential import Scenario, record, stdlib_connect
from scenarios_autocommit import AUTOCOMMIT_SCENARIOS

import sqlkv.dbapi2 as dbapi2
from sqlkv.store import MemoryStore

GOLDEN = json.loads((Path(__file__).parent / "stdlib_autocommit.json").read_text())


def _reference(scenario: Scenario, tmp_path: Path) -> list[Any]:
    recorded: list[Any] = GOLDEN["scenarios"][scenario.__name__]
    if sys.version_info >= (3, 12):
        live = record(scenario, sqlite3, stdlib_connect(tmp_path))
        assert live == recorded, "stdlib_autocommit.json is stale: rerun record_stdlib.py"
    return recorded


@pytest.mark.parametrize("scenario", AUTOCOMMIT_SCENARIOS, ids=lambda s: s.__name__)
def test_autocommit_modes_behave_as_the_stdlib(
    scenario: Scenario, tmp_path: Path, memory_store: MemoryStore
) -> None:
    reference = _reference(scenario, tmp_path)
    ours = record(
        scenario, dbapi2, lambda name, **kw: dbapi2.connect(name, store=memory_store, **kw)
    )
    assert json.loads(json.dumps(ours)) == reference
    assert len(reference) > 5
