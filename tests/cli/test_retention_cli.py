"""``sqlkv retention NAME [--window DURATION]``: show and set the history window."""

from __future__ import annotations

import json

from sqlkv.engine import Engine
from sqlkv.store.embedded import EmbeddedStore

from .conftest import Workdir
from .test_admin import make_v2


def test_retention_shows_sets_and_refuses_a_bad_duration(work: Workdir) -> None:
    with EmbeddedStore(work.store) as store:
        make_v2(store, "db")
    shown = work.run("retention", "db")
    assert shown.code == 0, shown.err
    assert "none (0)" in shown.out
    assert work.run("retention", "db", "--window", "24h").code == 0
    assert json.loads(work.run("retention", "db", "--json").out) == {
        "db": "db",
        "window_s": 86_400.0,
    }
    with EmbeddedStore(work.store) as store:
        assert Engine(store).retention("db") == 86_400
    bad = work.run("retention", "db", "--window", "3 fortnights")
    assert bad.code == 2 and "is not a duration" in bad.err
    missing = work.run("retention", "nope")
    assert missing.code == 1 and "does not exist" in missing.err
    assert work.run("retention", "db", "--window", "0").code == 0
    assert work.run("verify", "db").code == 0
