"""sqlkv: SQLite databases whose durable pages live in a transactional key-value store."""

__version__ = "0.1.0"
