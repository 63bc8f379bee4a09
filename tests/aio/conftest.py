"""An embedded store in the test's temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return str(tmp_path / "store")
