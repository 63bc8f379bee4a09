"""The top level of the key space: which format owns which prefix, and database names in keys.

Every key sqlkv writes starts with one format byte, then the database name encoded so
that two names can never produce overlapping key ranges (whatever bytes they contain),
and so that names sort in their natural order (``sqlkv list`` scans them in order):

    FORMAT_V2 | escape(name) | 0x00 | ...   the engine's layout (sqlkv.engine.keys)
    FORMAT_V1 | escape(name) | 0x00 | ...   the v1 chunked-file layout (sqlkv.vfs.v1)

``escape`` doubles every 0x00 byte as 0x00 0xFF (FoundationDB's tuple-layer byte
string), so the terminating 0x00 followed by anything other than 0xFF ends the name.
The encoding works for any string; which names a user may create is the name rule below.

The database-name rule (``check_database_name``), enforced by ``sqlkv.connect``, every
engine operation (so the server too) and the command line: a name is 1 to 255 bytes of
UTF-8, every character printable (no control or invisible format characters: a newline
would break ``sqlkv list``, a bidi override would make two names look alike), without
``/`` or ``\\`` and not ``.`` or ``..`` (names end up in file names, URLs and logs, so
``../etc`` must not look like a path), and without spaces at either end (invisible in a
listing). 255 bytes is a file name's limit on common file systems, so
``sqlkv export NAME NAME.db`` always works, and keeps the prefix every key repeats short.
The rule for users: docs/cli.md §3.
"""

from __future__ import annotations

from sqlkv.errors import ConfigError, InvalidDatabaseName

FORMAT_V1 = b"\x01"
FORMAT_V2 = b"\x02"
MAX_NAME_BYTES = 255
NAME_RULE = (
    f"a database name is 1 to {MAX_NAME_BYTES} bytes (UTF-8) of printable characters, "
    "without '/', '\\', control characters or spaces at either end, and not '.' or '..'"
)


def check_database_name(name: object) -> str:
    """``name`` if it follows the database-name rule (module docstring), else
    ``InvalidDatabaseName`` saying which part of the rule it breaks."""
    if not isinstance(name, str):
        raise InvalidDatabaseName(f"database names are strings, got {type(name).__name__}")
    reason = _broken_rule(name)
    if reason:
        raise InvalidDatabaseName(f"invalid database name {name!r}: {reason}; {NAME_RULE}")
    return name


def _broken_rule(name: str) -> str:
    size = len(name.encode("utf-8", "surrogatepass"))
    if size == 0:
        return "it is empty"
    if size > MAX_NAME_BYTES:
        return f"it is {size} bytes long"
    bad = next((c for c in name if not c.isprintable()), None)
    if bad is not None:
        return f"it contains the unprintable character U+{ord(bad):04X}"
    for c in "/\\":
        if c in name:
            return f"it contains {c!r}"
    if name in (".", ".."):
        return "it is a path component"
    if name != name.strip():
        return "it starts or ends with a space"
    return ""


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
