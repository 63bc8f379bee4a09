"""The README's "Restore points, restore and fork" commands, run as written on a database
with rows: the checkpoint, the history, the accidental DELETE, the restore, the forks."""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

from sqlkv.engine import Engine
from sqlkv.store.embedded import EmbeddedStore

from .conftest import Workdir

README = Path(__file__).resolve().parents[2] / "README.md"


def _commands() -> list[list[str]]:
    text = README.read_text()
    section = text[text.index("### Restore points, restore and fork") :]
    block = section[: section.index("\n\nA state is")]
    return [
        shlex.split(line.split("#")[0])
        for line in block.splitlines()
        if line.strip().startswith("sqlkv ")
    ]


def test_the_readme_time_travel_commands_work_as_written(work: Workdir) -> None:
    made = work.run(
        "shell",
        "--create",
        "orders",
        "CREATE TABLE orders(id INTEGER PRIMARY KEY, amount REAL); "
        "INSERT INTO orders(amount) VALUES (1), (2), (3)",
    )
    assert made.code == 0, made.err
    commands = _commands()
    assert [c[1] for c in commands] == [
        "retention",
        "checkpoint",
        "history",
        "shell",
        "restore",
        "fork",
        "fork",
    ]
    for command in commands:
        if command[1] == "retention":  # helper history's command; set through the engine
            with EmbeddedStore(work.store) as store:
                Engine(store).set_retention("orders", 24 * 3600)
            continue
        if "--at" in command:  # the README's date is an example: fork the state of now
            command[-1] = datetime.now(UTC).isoformat()
        result = work.run(*command[1:])
        assert result.code == 0, (command, result.err)
        if command[1] == "restore":
            assert re.search(r"undo: sqlkv restore orders --to \d+", result.out)
    for name in ("orders", "orders-test", "orders-monday"):
        counted = work.run("shell", name, "SELECT count(*) FROM orders")
        assert counted.out.split() == ["3"], name
