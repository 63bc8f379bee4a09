"""Fixtures of the etcd failure tests: a private cluster per module (so faults never touch
the shared test cluster), and a summary of every fault's numbers at the end of the run."""

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RESULTS:
        terminalreporter.section("etcd failure tests")
        for line in RESULTS:
            terminalreporter.write_line(line)
