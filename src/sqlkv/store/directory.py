"""The directory a local store (embedded, LMDB) lives in: created if missing, and checked
to be a directory this process can write before the driver opens its files there.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from sqlkv.errors import ConfigError


def make_store_directory(path: Path, what: str) -> Path:
    """Create ``path`` (and parents) if missing; ``ConfigError`` if it cannot hold a store."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(
            f"{what} path {str(path)!r} exists and is not a directory; "
            "give the path of a directory (it is created if missing)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot create the {what} directory {str(path)!r}: {exc.strerror}; "
            "choose a directory this process can create and write"
        ) from None
    try:  # a probe file of our own: processes opening the store at once must not collide
        fd, probe = tempfile.mkstemp(prefix=".sqlkv-write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"the {what} directory {str(path)!r} is not writable: {exc.strerror}; "
            "fix its permissions or choose another directory"
        ) from None
    return path.resolve()
