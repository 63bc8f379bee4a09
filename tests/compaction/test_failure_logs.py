"""A failed compaction is logged with its reason: the exception's class and message in the
text (whatever the log format) and as the structured fields ``error_class`` and ``error``."""

from __future__ import annotations

import logging

import pytest

from sqlkv.engine import Engine
from sqlkv.engine.compaction import CompactionConfig
from sqlkv.errors import StoreUnavailable
from sqlkv.store import MemoryStore


def test_compaction_failure_log_carries_its_reason(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = Engine(MemoryStore(), compaction=CompactionConfig(idle_seconds=1))
    try:
        engine.open("db")

        def broken(db: str, **_: object) -> None:
            raise StoreUnavailable("the store went away")

        monkeypatch.setattr(engine, "compact_until_done", broken)
        assert engine.compactor is not None
        with caplog.at_level(logging.WARNING, logger="sqlkv.engine"):
            engine.compactor._work("db")
    finally:
        engine.close()
    [record] = [r for r in caplog.records if "compaction failed" in r.getMessage()]
    text = logging.Formatter("%(message)s").format(record)
    assert "StoreUnavailable" in text and "the store went away" in text
    assert record.__dict__["error_class"] == "StoreUnavailable"
    assert record.__dict__["error"] == "the store went away"
    assert record.__dict__["db"] == "db"


def test_every_failed_log_call_names_its_reason() -> None:
    """Source check: a logging call whose text says "failed" passes ``failure_fields``."""
    import re
    from pathlib import Path

    import sqlkv

    root = Path(sqlkv.__file__).parent
    call = re.compile(r"log\w*\.(?:debug|info|warning|error|exception|critical)\((.*?)\)\n", re.S)
    offenders = []
    for path in root.rglob("*.py"):
        for match in call.finditer(path.read_text()):
            args = match.group(1)
            if "failed" in args and "failure_fields" not in args:
                offenders.append(f"{path.relative_to(root)}: {args.splitlines()[0]}")
    assert offenders == []
