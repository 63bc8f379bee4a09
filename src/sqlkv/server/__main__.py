"""``python -m sqlkv.server ARGS``: the same as ``sqlkv serve ARGS`` (used by the tests)."""

from __future__ import annotations

import sys

from sqlkv.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
