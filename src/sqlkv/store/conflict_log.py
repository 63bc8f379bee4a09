"""The write-range conflict log of the embedded and LMDB stores, and the check against it.

Conflicts are found the way the memory store (and FoundationDB's resolver) finds them, but
the log lives in the store's own file, so processes sharing the directory see each other's
writes. Each write commit logs its write ranges (``encode_ranges``) under its version, with
its wall-clock time. A snapshot records its read version; its commit, holding the store's
write lock, refuses with ``ConflictError`` if a logged commit after that version wrote into
its read ranges (``check_conflicts``). Rows older than the conflict window are pruned
(every ``prune_interval`` seconds) and the store's ``floor`` moves past them; a commit
whose read version is below ``floor`` cannot be checked any more and raises
``TransactionTooOld`` (retryable). Invariant: ``floor <= version``, and no log row with
``version <= floor`` is left. How rows are stored and pruned is each driver's.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

from sqlkv.errors import ConflictError, TransactionTooOld
from sqlkv.store.ranges import KeyRange, ranges_intersect

DEFAULT_CONFLICT_WINDOW_S = 10.0
PRUNE_EVERY_S = 1.0
_U32 = struct.Struct(">I")


def encode_ranges(ranges: Sequence[KeyRange]) -> bytes:
    """Key ranges as bytes: a u32 count, then each bound as a u32 length and its bytes."""
    u32 = _U32.pack
    parts = [u32(len(ranges))]
    append = parts.append  # a commit of many pages logs hundreds of ranges
    for begin, end in ranges:
        append(u32(len(begin)))
        append(begin)
        append(u32(len(end)))
        append(end)
    return b"".join(parts)


def decode_ranges(data: bytes) -> list[KeyRange]:
    """The inverse of ``encode_ranges``."""
    (count,) = struct.unpack_from(">I", data, 0)
    pos = 4
    out: list[KeyRange] = []
    for _ in range(count):
        bounds = []
        for _ in range(2):
            (n,) = struct.unpack_from(">I", data, pos)
            bounds.append(bytes(data[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        out.append((bounds[0], bounds[1]))
    return out


def check_conflicts(
    read_version: int,
    floor: int,
    read_ranges: list[KeyRange],
    later_writes: Iterable[bytes],
    *,
    window_s: float,
) -> None:
    """Refuse a commit whose serializable reads at ``read_version`` a later commit wrote to.

    ``later_writes``: the encoded write ranges of the logged commits after
    ``read_version``, in version order. It is iterated only after the ``floor`` check and
    only as far as the first conflict: pass a generator, so the log is read only as needed.
    """
    if read_version < floor:
        raise TransactionTooOld(
            f"this transaction began at version {read_version}, before the conflict "
            f"history kept ({window_s:g} s, from version {floor}); "
            "it will be retried"
        )
    for ranges in later_writes:
        if ranges_intersect(read_ranges, decode_ranges(ranges)):
            raise ConflictError(
                "another transaction changed keys this one read; it will be retried"
            )


def prune_interval(window_s: float) -> float:
    """Seconds from one prune of the log to the next, for a conflict window of ``window_s``."""
    return min(PRUNE_EVERY_S, window_s / 4)
