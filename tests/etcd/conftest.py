"""Fixtures of the etcd failure tests: a private cluster per module (so faults never touch
the shared test cluster), and every fault's numbers for the run's summary."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from cluster import RESULTS, Cluster
from drivers import etcd_url


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("etcd") is None and etcd_url() is None and not os.environ.get("CI"):
        pytest.skip("etcd is not installed (scripts/test installs it; required in CI)")
    directory = tmp_path_factory.mktemp("etcd-cluster")
    c = Cluster(Path(directory))
    try:
        yield c
    finally:
        c.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Hands the fault lines recorded so far to the test's report (``summary`` property):
    tests/conftest.py prints them at the end, also from pytest-xdist workers."""
    outcome = yield
    if call.when == "teardown" and RESULTS:
        report = outcome.get_result()
        report.user_properties.extend(("summary", ("etcd failure tests", line)) for line in RESULTS)
        RESULTS.clear()
