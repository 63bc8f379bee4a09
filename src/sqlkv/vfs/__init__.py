"""The SQLite VFSs: ``v2`` (the client of the storage engine) and ``v1`` (the chunked-file
baseline format). ``sqlite_errors`` is what both raise to SQLite."""
