"""Shared fixtures: a fresh store of every driver kind, parametrised; the run's test order
and hypothesis profile (docs/testing.md, "CI layout and timings")."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))

from drivers import DRIVERS, StoreFactory, drop_store, server_url, store_opener

from sqlkv.store import Limits, Store

# CI runs on a loaded machine (two pytest workers next to PostgreSQL and etcd): the same
# examples, without hypothesis's per-example deadline, which times the machine, not the code.
settings.register_profile("ci", deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


LONG_TESTS = {
    # Not marked slow, but among the longest of a CI run (durations profile, docs/testing.md).
    "test_interleaved_transactions_match_the_serial_model",
    "test_writers_readers_and_compactor_never_lose_or_rewind",
    "test_hot_rows_keep_live_deltas_bounded",
    "test_every_flipped_byte_class_of_every_key_is_caught",
    "test_a_50_mib_transaction_commits_through_stage_and_finalize",
    "test_compaction_racing_with_commits_never_rewinds_the_head",
    "test_counter_stays_exact_while_backends_are_killed_at_random",
    "test_restore_and_fork_at_a_txid",
    "test_the_readme_time_travel_commands_work_as_written",
    "test_checkpoint_history_restore_and_fork_at_a_label",
    "test_fork_gives_an_equal_database_that_then_evolves_on_its_own",
    "test_a_round_trip_through_postgresql",
    "test_the_dbapi_tests_pass_on_the_pure_python_code",
}


def _expected_length(item: pytest.Item) -> int:
    """0 for the longest tests (``slow`` or in ``LONG_TESTS``), then those on the etcd
    cluster, then on PostgreSQL, then the rest: an ordering hint, never a selection."""
    name = getattr(item, "originalname", item.name)
    if item.get_closest_marker("slow") is not None or name in LONG_TESTS:
        return 0
    ids = set(getattr(getattr(item, "callspec", None), "id", "").split("-"))
    return 1 if "etcd" in ids else 2 if "postgres" in ids else 3


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist the longest tests go first (a stable sort: the same order on every
    worker), so the workers finish together instead of one running a long test alone at the
    end. A run in one process keeps the file order."""
    if config.pluginmanager.hasplugin("xdist") and (
        getattr(config.option, "numprocesses", None) or hasattr(config, "workerinput")
    ):
        items.sort(key=_expected_length)


SUMMARY: dict[str, list[str]] = {}
"""Lines for the run's summary, by section: a test's report carries them as
``("summary", (section, line))`` user properties (pytest-xdist sends those to the main process)."""


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for name, value in report.user_properties:
        if name == "summary":
            section, line = value  # type: ignore[misc]
            SUMMARY.setdefault(section, []).append(line)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for section, lines in SUMMARY.items():
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if server_url(kind) is None:
        pytest.skip(
            f"{kind} tests need a server URL (SQLKV_TEST_PG_URL / SQLKV_TEST_ETCD_URL, set "
            "by scripts/test; required in CI)"
        )
    return kind


@pytest.fixture
def store_factory(driver: str, tmp_path: Path) -> Iterator[StoreFactory]:
    """``store_factory(limits=None)`` opens the test's one store (again, for reopen tests)."""
    opened: list[Store] = []
    openers: dict[Limits | None, Callable[[], Store]] = {}

    def factory(limits: Limits | None = None) -> Store:
        if limits not in openers:
            openers[limits] = store_opener(driver, tmp_path, limits)
        store = openers[limits]()
        opened.append(store)
        return store

    yield factory
    for store in reversed(opened):
        drop_store(driver, store)
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()
