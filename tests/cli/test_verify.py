"""``sqlkv verify``: one line per problem, exit 1 when there is one, --json."""

from __future__ import annotations

import json

from sqlkv.engine.keys import DbKeys
from sqlkv.store.embedded import EmbeddedStore

from .conftest import Workdir
from .test_admin import make_v2


def test_verify_a_sound_database_exits_0(work: Workdir) -> None:
    with EmbeddedStore(work.store) as store:
        make_v2(store, "db")
    result = work.run("verify", "db")
    assert result.code == 0, result.err
    assert result.out.startswith("verified 'db': no problem in ")
    report = json.loads(work.run("verify", "db", "--json").out)
    assert report["ok"] is True and report["problems"] == []
    assert report["pidx_rows"] > 0 and report["delta_parts"] >= 3


def test_verify_reports_each_damaged_key_on_its_own_line_and_exits_1(work: Workdir) -> None:
    keys = DbKeys("db")
    with EmbeddedStore(work.store) as store:
        make_v2(store, "db")

        def damage(tr: object) -> None:
            rows = tr.get_range(*keys.pidx_range(), limit=1)  # type: ignore[attr-defined]
            ((key, value),) = rows
            tr.set(key, value[:-1] + bytes([value[-1] ^ 1]))  # type: ignore[attr-defined]
            x_key, x_value = tr.get_range(*keys.delta_dir_range(), limit=1)[0]  # type: ignore[attr-defined]
            tr.set(x_key, bytes([x_value[0] ^ 1]) + x_value[1:])  # type: ignore[attr-defined]

        store.transact(damage)
    result = work.run("verify", "db")
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0].startswith("PIDX pgno 1: checksum mismatch")
    assert lines[1].startswith("X txid ") and "checksum mismatch" in lines[1]
    assert lines[-1].startswith("verify 'db': 2 problems in ")
    report = json.loads(work.run("verify", "--json", "db").out)
    assert report["ok"] is False
    assert [p["kind"] for p in report["problems"]] == ["PIDX", "X"]


def test_verify_of_a_missing_database_fails_with_one_line(work: Workdir) -> None:
    with EmbeddedStore(work.store) as store:
        make_v2(store, "db")
    result = work.run("verify", "nope")
    assert result.code == 1
    assert result.err.strip() == (
        f"sqlkv: error: database 'nope' does not exist in {work.store}; "
        "'sqlkv list' shows the databases"
    )
