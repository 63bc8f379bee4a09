"""``sqlkv fork`` (and, with the history calls, ``restore``, ``checkpoint``, ``history``)
as a user runs them, checked with ``sqlkv export`` against plain SQLite."""

from __future__ import annotations

import itertools
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest

from sqlkv.cli.timetravel import parse_state

from .cli_support import dump
from .conftest import Workdir


def test_fork_gives_an_equal_database_that_then_evolves_on_its_own(
    work: Workdir, source_small: Path
) -> None:
    assert work.run("import", str(source_small), "src").code == 0
    forked = work.run("fork", "src", "dst", "--progress")
    assert forked.code == 0, forked.err
    assert forked.out.startswith("forked 'src' at txid ") and "into 'dst'" in forked.out
    assert "fork src -> dst" in forked.err and "100%" in forked.err  # the bar
    assert work.run("export", "dst", "dst.db").code == 0
    assert dump(work.path / "dst.db") == dump(source_small)

    changed = work.run("shell", "dst", "CREATE TABLE only_in_dst(x)")
    assert changed.code == 0, changed.err
    assert work.run("export", "src", "src.db").code == 0
    assert dump(work.path / "src.db") == dump(source_small)
    assert work.run("export", "dst", "dst2.db").code == 0
    tables = sqlite3.connect(work.path / "dst2.db").execute(
        "SELECT name FROM sqlite_master WHERE name = 'only_in_dst'"
    )
    assert tables.fetchall() == [("only_in_dst",)]
    assert work.run("verify", "dst").code == 0


def test_fork_into_an_existing_database_or_from_a_missing_one_fails(
    work: Workdir, source_small: Path
) -> None:
    assert work.run("import", str(source_small), "src").code == 0
    assert work.run("import", str(source_small), "dst").code == 0
    taken = work.run("fork", "src", "dst")
    assert taken.code == 1
    assert taken.err_lines == [
        "sqlkv: error: database 'dst' already exists; choose another name, or delete it "
        "first ('sqlkv delete dst')"
    ]
    missing = work.run("fork", "nope", "new")
    assert missing.code == 1
    assert missing.err.startswith("sqlkv: error: database 'nope' does not exist in ")
    remote = work.run_bare("fork", "src", "x", "--engine", "sqlkv://127.0.0.1:9")
    assert remote.code == 2 and "works on the store itself" in remote.err


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("42", 42),
        ("before-migration", "before-migration"),
        ("label:2024", "2024"),
        ("2026-12-02T09:30:00Z", datetime.fromisoformat("2026-12-02T09:30:00+00:00")),
    ],
)
def test_a_state_is_a_txid_a_time_or_a_label(text: str, state: object) -> None:
    assert parse_state(text) == state


def test_a_time_without_a_zone_is_local_time() -> None:
    when = parse_state("2026-12-02T09:30:00")
    assert isinstance(when, datetime) and when.tzinfo is not None
    assert when.replace(tzinfo=None) == datetime(2026, 12, 2, 9, 30)


def _head_txid(work: Workdir, name: str) -> int:
    inspected = work.run("inspect", name, "--json")
    assert inspected.code == 0, inspected.err
    return int(json.loads(inspected.out)["head"]["head_txid"])


def test_restore_and_fork_at_a_txid(work: Workdir) -> None:
    made = work.run("shell", "--create", "db", "CREATE TABLE t(x); INSERT INTO t VALUES (1)")
    assert made.code == 0, made.err
    txid = _head_txid(work, "db")
    assert work.run("shell", "db", "INSERT INTO t VALUES (2)").code == 0

    forked = work.run("fork", "db", "old", "--at", str(txid))
    assert forked.code == 0, forked.err
    assert forked.out.startswith(f"forked 'db' at txid {txid} into 'old'")
    assert work.run("shell", "old", "SELECT count(*) FROM t").out.split() == ["1"]

    restored = work.run("restore", "db", "--to", str(txid), "--progress")
    assert restored.code == 0, restored.err
    assert f"restored 'db' to txid {txid} as txid " in restored.out
    assert "restore db" in restored.err  # the bar
    assert work.run("shell", "db", "SELECT count(*) FROM t").out.split() == ["1"]
    undo = restored.out.split("undo: ")[1].rstrip(")\n").split()
    assert undo[:3] == ["sqlkv", "restore", "db"]
    assert work.run(*undo[1:]).code == 0
    assert work.run("shell", "db", "SELECT count(*) FROM t").out.split() == ["2"]

    future = work.run("restore", "db", "--to", "999")
    assert future.code == 1 and "999" in future.err
    missing = work.run("restore", "nope", "--to", "2")
    assert missing.code == 1 and "'nope' does not exist" in missing.err


def test_checkpoint_history_restore_and_fork_at_a_label(work: Workdir) -> None:
    assert (
        work.run("shell", "--create", "db", "CREATE TABLE t(x); INSERT INTO t VALUES (1)").code == 0
    )
    cp = work.run("checkpoint", "db", "one-row")
    assert cp.code == 0, cp.err
    assert cp.out.startswith("checkpoint 'one-row' of 'db' is txid ")
    txid = int(cp.out.split()[-1])
    assert work.run("shell", "db", "INSERT INTO t VALUES (2)").code == 0

    listed = work.run("history", "db", "--json")
    assert listed.code == 0, listed.err
    entries = json.loads(listed.out)
    assert entries[0]["txid"] > txid and [e["labels"] for e in entries if e["txid"] == txid] == [
        ["one-row"]
    ]
    assert all(a["txid"] > b["txid"] for a, b in itertools.pairwise(entries))
    text = work.run("history", "db", "--limit", "1")
    assert text.code == 0 and len(text.out.splitlines()) == 2  # header + one commit

    forked = work.run("fork", "db", "old", "--at", "one-row")
    assert forked.code == 0, forked.err
    assert work.run("shell", "old", "SELECT count(*) FROM t").out.split() == ["1"]

    restored = work.run("restore", "db", "--to", "one-row")
    assert restored.code == 0, restored.err
    assert f"restored 'db' to txid {txid} as txid " in restored.out
    assert work.run("shell", "db", "SELECT count(*) FROM t").out.split() == ["1"]
    undo = restored.out.split("undo: ")[1].rstrip(")\n").split()
    assert work.run(*undo[1:]).code == 0
    assert work.run("shell", "db", "SELECT count(*) FROM t").out.split() == ["2"]

    unknown = work.run("restore", "db", "--to", "no-such-label")
    assert unknown.code == 1 and "no-such-label" in unknown.err
    assert work.run("history", "db", "--limit", "0").code == 2
