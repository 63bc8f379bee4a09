"""Record the stdlib's events for the autocommit scenarios (needs Python >= 3.12):

python3.12 tests/dbapi/record_stdlib.py     # rewrites tests/dbapi/stdlib_autocommit.json
"""

from __future__ import annotations

import json
import sqlite3
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from differential import record  # noqa: E402
from scenarios_autocommit import AUTOCOMMIT_SCENARIOS  # noqa: E402

GOLDEN = HERE / "stdlib_autocommit.json"


def main() -> int:
    if sys.version_info < (3, 12):
        print("the stdlib has autocommit from Python 3.12 on", file=sys.stderr)
        return 2
    out = {}
    for scenario in AUTOCOMMIT_SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:

            def connect(name: str, directory: str = tmp, **kwargs: object) -> sqlite3.Connection:
                return sqlite3.connect(Path(directory) / f"{name}.db", **kwargs)  # type: ignore[arg-type]

            out[scenario.__name__] = record(scenario, sqlite3, connect)
    meta = {"python": sys.version.split()[0], "sqlite": sqlite3.sqlite_version}
    GOLDEN.write_text(json.dumps({"recorded_with": meta, "scenarios": out}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
