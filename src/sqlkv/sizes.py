"""Sizes written by people: ``"64MiB"``, ``"512 KiB"``, ``"1GB"``, ``"2000 pages"``.

One parser for every size setting (the client's ``cache_size``, the engine's ``*_bytes``
settings of ``sqlkv serve``), hand-written rather than a library: the parse is 15 lines,
and the README's dependency table records what a library would have cost at start-up.
"""

from __future__ import annotations

import re

from sqlkv.errors import ConfigError

KiB = 1024
MiB = 1024 * KiB
_UNITS = {
    "": 1,
    "b": 1,
    "k": KiB,
    "kb": 1000,
    "kib": KiB,
    "m": MiB,
    "mb": 1000**2,
    "mib": MiB,
    "g": 1024 * MiB,
    "gb": 1000**3,
    "gib": 1024 * MiB,
}
_PAGES = ("page", "pages", "p")
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_size(value: int | str, setting: str, *, page_size: int | None = None) -> int:
    """Bytes from an int (bytes) or a size string; ``page_size`` also allows ``"N pages"``.
    ``ConfigError`` naming ``setting`` otherwise."""
    if isinstance(value, bool):
        raise ConfigError(f"{setting} must be bytes or a size string, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ConfigError(f"{setting} must be >= 0 bytes, got {value}")
        return value
    if isinstance(value, str):
        m = _SIZE_RE.match(value.lower())
        if m:
            number, unit = float(m.group(1)), m.group(2)
            if unit in _PAGES and page_size is not None:
                return int(number) * page_size
            if unit in _UNITS:
                return int(number * _UNITS[unit])
    pages = " or '2000 pages'" if page_size is not None else ""
    raise ConfigError(
        f"{setting} {value!r} is not a size: give bytes (an int) or a string such as "
        f"'64MiB', '512KiB', '1GB'{pages}"
    )
