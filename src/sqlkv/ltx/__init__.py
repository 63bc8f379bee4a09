"""LTX v3 page codec: encode a set of pages into one LTX file, and read it back.

The byte format is described in ``docs/ltx-v3-format.md``; files are what superfly/ltx >= v0.5.2
writes (LZ4 block pages, page index, CRC-64 file checksum) and are read by Litestream and the ltx
tools. Legacy v0.5.0/v0.5.1 LZ4-frame pages are read too. Every error is ``sqlkv.errors.LtxError``.

- ``encode(header, pages, post_apply_checksum=None) -> bytes``
- ``decode(data) -> LtxFile``: whole file, fully verified
- ``read_header(data)``, ``read_page_index(data)``, ``read_page(data, pgno, index)``,
  ``decode_frame(frame, page_size)``: header only, or one page without decompressing the others
- ``page_checksum``, ``rolling_checksum``, ``update_checksum``: database checksums
"""

from sqlkv.ltx.checksum import (
    CHECKSUM_FLAG,
    EMPTY_DB_CHECKSUM,
    crc64,
    lock_pgno,
    page_checksum,
    rolling_checksum,
    update_checksum,
)
from sqlkv.ltx.decoder import decode, decode_frame, read_header, read_page, read_page_index
from sqlkv.ltx.encoder import encode
from sqlkv.ltx.header import (
    HEADER_FLAG_NO_CHECKSUM,
    HEADER_SIZE,
    MAGIC,
    MAX_PAGE_SIZE,
    MIN_PAGE_SIZE,
    PAGE_HEADER_FLAG_SIZE,
    PAGE_HEADER_SIZE,
    TRAILER_SIZE,
    LtxFile,
    LtxHeader,
    LtxTrailer,
    PageIndexEntry,
)

__all__ = [
    "CHECKSUM_FLAG",
    "EMPTY_DB_CHECKSUM",
    "HEADER_FLAG_NO_CHECKSUM",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_PAGE_SIZE",
    "MIN_PAGE_SIZE",
    "PAGE_HEADER_FLAG_SIZE",
    "PAGE_HEADER_SIZE",
    "TRAILER_SIZE",
    "LtxFile",
    "LtxHeader",
    "LtxTrailer",
    "PageIndexEntry",
    "crc64",
    "decode",
    "decode_frame",
    "encode",
    "lock_pgno",
    "page_checksum",
    "read_header",
    "read_page",
    "read_page_index",
    "rolling_checksum",
    "update_checksum",
]
