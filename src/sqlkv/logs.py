"""Structured fields of log records: what every "failed" record carries besides its text.

A record that says something failed names the reason twice: in its message (read by
people, whatever the log format) and as fields (read by log pipelines): ``error_class``
(the exception's class name) and ``error`` (its message), plus the caller's own fields.
"""

from __future__ import annotations


def failure_fields(exc: BaseException, **fields: object) -> dict[str, object]:
    """``extra=`` for a log record about ``exc``."""
    return {**fields, "error_class": type(exc).__name__, "error": str(exc)}
