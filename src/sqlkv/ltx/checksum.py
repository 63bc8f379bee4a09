"""LTX checksums: the CRC-64 primitive, page checksums and the rolling database checksum.

All of them use CRC-64/GO-ISO (Go ``hash/crc64`` with the ``crc64.ISO`` table): poly 0x1B reflected,
init and xorout 0xFFFFFFFFFFFFFFFF, check("123456789") = 0xB90956C775A41001. It runs in anycrc's
C extension (0.8 us for a 4 KiB page where crcmod's took 11 us: the CRC of every page encoded or
decoded is on the commit and read paths). ``crc64(data, prev)`` continues a CRC, so
``crc64(b, crc64(a)) == crc64(a + b)``; the tests check it against crcmod.

Every stored checksum has bit 63 (``CHECKSUM_FLAG``) set so that it is never zero:

- page checksum: ``CHECKSUM_FLAG | crc64(u32be(pgno) || page)``;
- database checksum: ``CHECKSUM_FLAG | XOR of the page checksums of pages 1..Commit``, lock page
  excluded; the empty database has checksum ``CHECKSUM_FLAG``;
- file checksum (computed by the encoder and decoder): ``CHECKSUM_FLAG | crc64(covered bytes)``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

import anycrc

__all__ = [
    "CHECKSUM_FLAG",
    "EMPTY_DB_CHECKSUM",
    "PENDING_BYTE",
    "crc64",
    "lock_pgno",
    "page_checksum",
    "rolling_checksum",
    "update_checksum",
]

CHECKSUM_FLAG = 1 << 63
"""Bit 63, set on every non-zero checksum the format stores."""

EMPTY_DB_CHECKSUM = CHECKSUM_FLAG
"""Rolling checksum of a database with no pages (Commit = 0)."""

PENDING_BYTE = 0x40000000
"""Offset of SQLite's pending byte; the page holding it (the lock page) is never stored."""

BytesLike = bytes | bytearray | memoryview

crc64: Callable[[BytesLike, int], int] = anycrc.Model("CRC64-GO-ISO").calc
"""``crc64(data, prev=0) -> int``: CRC-64/GO-ISO of ``data``, continuing from ``prev``."""

_U32 = struct.Struct(">I")


def lock_pgno(page_size: int) -> int:
    """The SQLite lock page for ``page_size``: the page holding byte 0x40000000 (1 GiB)."""
    return PENDING_BYTE // page_size + 1


def page_checksum(pgno: int, page: BytesLike) -> int:
    """``CHECKSUM_FLAG | crc64(u32be(pgno) || page)``, the checksum of one database page."""
    return CHECKSUM_FLAG | crc64(page, crc64(_U32.pack(pgno), 0))


def rolling_checksum(pages: Iterable[tuple[int, BytesLike]]) -> int:
    """The database checksum of a whole database given as ``(pgno, page)`` pairs (any order).

    The lock page is skipped if present (its number is derived from each page's length), as the
    reference decoder and ``ChecksumPages`` do. No pages at all gives ``EMPTY_DB_CHECKSUM``.
    """
    acc = 0
    for pgno, page in pages:
        if pgno != lock_pgno(len(page)):
            acc ^= page_checksum(pgno, page)
    return CHECKSUM_FLAG | acc


def update_checksum(
    db_checksum: int, *, remove: Iterable[int] = (), add: Iterable[int] = ()
) -> int:
    """Roll ``db_checksum``: XOR out the page checksums in ``remove``, XOR in those in ``add``.

    For a page rewritten by a commit, pass its old page checksum in ``remove`` and its new one in
    ``add``; for pages dropped by a truncation, pass their checksums in ``remove``. Bit 63 of the
    result is always set.
    """
    acc = db_checksum
    for value in remove:
        acc ^= value
    for value in add:
        acc ^= value
    return CHECKSUM_FLAG | acc
