"""Key ranges: half-open ``[begin, end)`` spans of ordered byte keys, and the small
algorithms on them that the transaction layer and the conflict resolvers share."""

from __future__ import annotations

KeyRange = tuple[bytes, bytes]
"""A half-open key range ``[begin, end)``."""

RangeRead = tuple[bytes, bytes, int, bool]
"""One range read: ``(begin, end, limit, reverse)``; limit 0 means no limit."""


def key_after(key: bytes) -> bytes:
    """The first key that sorts after ``key``: the end of the range holding only ``key``."""
    return key + b"\x00"


def prefix_end(prefix: bytes) -> bytes:
    """The first key after every key starting with ``prefix`` (``prefix`` must not be all 0xff)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        raise ValueError("a prefix of only 0xff bytes has no end key")
    return stripped[:-1] + bytes([stripped[-1] + 1])


def range_read(
    begin: bytes, end: bytes, limit: int, reverse: bool, rows: list[tuple[bytes, bytes]]
) -> KeyRange:
    """The part of ``[begin, end)`` a range read really covered (all of it unless the
    limit cut it short), which is what joins the read-conflict set."""
    if limit and len(rows) == limit:
        last = rows[-1][0]
        return (last, end) if reverse else (begin, key_after(last))
    return (begin, end)


def merge_sorted(
    a: list[tuple[bytes, bytes]], b: list[tuple[bytes, bytes | None]], reverse: bool
) -> list[tuple[bytes, bytes | None]]:
    """Merge two key-sorted lists with distinct keys (``b`` wins, but keys never repeat)."""
    out: list[tuple[bytes, bytes | None]] = []
    i = j = 0
    while i < len(a) and j < len(b):
        if (a[i][0] < b[j][0]) != reverse:
            out.append(a[i])
            i += 1
        else:
            out.append(b[j])
            j += 1
    out.extend(a[i:])
    out.extend(b[j:])
    return out


def coalesce(ranges: list[KeyRange]) -> list[KeyRange]:
    """Sort ranges and merge the overlapping or touching ones."""
    out: list[KeyRange] = []
    for b, e in sorted(ranges):
        if out and b <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((b, e))
    return out


def ranges_intersect(a: list[KeyRange], b: list[KeyRange]) -> bool:
    """True when some range of ``a`` overlaps some range of ``b`` (both coalesced and sorted)."""
    i = j = 0
    while i < len(a) and j < len(b):
        ab, ae = a[i]
        bb, be = b[j]
        if ab < be and bb < ae:
            return True
        if ae <= be:
            i += 1
        else:
            j += 1
    return False
