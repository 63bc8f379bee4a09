"""The top level of the key space: which format owns which prefix, and database names in keys.

Every key sqlkv writes starts with one format byte, then the database name encoded so
that two names can never produce overlapping key ranges (whatever bytes they contain),
and so that names sort in their natural order (``sqlkv list`` scans them in order):

    FORMAT_V2 | escape(name) | 0x00 | ...   the engine's layout (sqlkv.engine.keys)
    FORMAT_V1 | escape(name) | 0x00 | ...   the v1 chunked-file layout (sqlkv.vfs.v1)

``escape`` doubles every 0x00 byte as 0x00 0xFF (FoundationDB's tuple-layer byte
string), so the terminating 0x00 followed by anything other than 0xFF ends the name.
"""

from __future__ import annotations

from sqlkv.errors import ConfigError

FORMAT_V1 = b"\x01"
FORMAT_V2 = b"\x02"
MAX_NAME_BYTES = 512


def validate_name(name: str) -> bytes:
    """The UTF-8 bytes of a database name, or ConfigError saying why it is not allowed."""
    if not isinstance(name, str) or not name:
        raise ConfigError("database names are non-empty strings")
    raw = name.encode("utf-8")
    if len(raw) > MAX_NAME_BYTES:
        raise ConfigError(f"database name is {len(raw)} bytes; the limit is {MAX_NAME_BYTES}")
    return raw


def db_prefix(fmt: bytes, name: str) -> bytes:
    """The prefix of every key of database ``name`` in format ``fmt``."""
    return fmt + validate_name(name).replace(b"\x00", b"\x00\xff") + b"\x00"


def decode_db_prefix(key: bytes) -> tuple[bytes, str, int]:
    """(format byte, name, length of the prefix) of a key written under ``db_prefix``."""
    fmt, i, out = key[:1], 1, bytearray()
    while i < len(key):
        b = key[i]
        if b == 0:
            if i + 1 < len(key) and key[i + 1] == 0xFF:
                out.append(0)
                i += 2
                continue
            return fmt, out.decode("utf-8"), i + 1
        out.append(b)
        i += 1
    raise ValueError(f"key {key!r} has no database name terminator")
