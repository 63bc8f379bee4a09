"""The README's read-replica example runs as written, on a fresh embedded store, and
prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path
from typing import Any

import apsw
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- example: read-replicas -->"


def test_readme_read_replica_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text()
    assert MARKER in text, "README lost its read-replica example"
    match = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert match is not None
    monkeypatch.setenv("SQLKV_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("SQLKV_ENGINE", raising=False)
    namespace: dict[str, Any] = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(apsw.ReadOnlyError, match="readonly"):
        exec(compile(match.group(1), "README.md:read-replicas", "exec"), namespace)
    assert out.getvalue().split("\n")[:3] == ["[(1,)]", "[(3,)]", "False"]
    for name in ("past", "live", "writer"):
        namespace[name].close()
