"""What sqlite+sqlkv:// supports, for SQLAlchemy's compliance suite.

``SuiteRequirements`` closes every optional feature; each property here opens one that
SQLite (and so sqlkv) has, or closes one with the reason written next to it. The README
lists the closed ones; none is closed without a reason.
"""

from __future__ import annotations

from sqlalchemy.testing import exclusions
from sqlalchemy.testing.requirements import SuiteRequirements

OPEN = exclusions.open
EXCLUDED: dict[str, str] = {}
"""Every requirement closed here on purpose (beyond the suite's defaults), with its reason."""


def closed(name: str, reason: str) -> exclusions.compound:
    EXCLUDED[name] = reason
    return exclusions.closed()


class Requirements(SuiteRequirements):
    # ---------------------------------------------------------------- SQL that SQLite has
    @property
    def ctes(self) -> exclusions.compound:
        return OPEN()

    @property
    def ctes_with_values(self) -> exclusions.compound:
        return OPEN()

    @property
    def ctes_on_dml(self) -> exclusions.compound:
        return OPEN()

    @property
    def intersect(self) -> exclusions.compound:
        return OPEN()

    @property
    def except_(self) -> exclusions.compound:
        return OPEN()

    @property
    def window_functions(self) -> exclusions.compound:
        return OPEN()

    @property
    def window_range(self) -> exclusions.compound:
        return OPEN()

    @property
    def window_range_numeric(self) -> exclusions.compound:
        return OPEN()

    @property
    def window_range_non_numeric(self) -> exclusions.compound:
        return closed(
            "window_range_non_numeric",
            "SQLite RANGE frames take numeric offsets only (fails the same on pysqlite)",
        )

    @property
    def parens_in_union_contained_select_wo_limit_offset(self) -> exclusions.compound:
        return closed(
            "parens_in_union_contained_select_wo_limit_offset",
            "SQLite's grammar has no parenthesized SELECT inside a UNION",
        )

    @property
    def parens_in_union_contained_select_w_limit_offset(self) -> exclusions.compound:
        return closed(
            "parens_in_union_contained_select_w_limit_offset",
            "SQLite's grammar has no parenthesized SELECT inside a UNION",
        )

    @property
    def views(self) -> exclusions.compound:
        return OPEN()

    @property
    def json_type(self) -> exclusions.compound:
        return OPEN()

    @property
    def update_from(self) -> exclusions.compound:
        return OPEN()

    @property
    def table_ddl_if_exists(self) -> exclusions.compound:
        return OPEN()

    @property
    def index_ddl_if_exists(self) -> exclusions.compound:
        return OPEN()

    @property
    def create_table_as(self) -> exclusions.compound:
        return OPEN()

    @property
    def boolean_col_expressions(self) -> exclusions.compound:
        return OPEN()

    @property
    def nullsordering(self) -> exclusions.compound:
        return OPEN()

    @property
    def computed_columns(self) -> exclusions.compound:
        return OPEN()

    @property
    def computed_columns_stored(self) -> exclusions.compound:
        return OPEN()

    @property
    def computed_columns_virtual(self) -> exclusions.compound:
        return OPEN()

    @property
    def computed_columns_reflect_persisted(self) -> exclusions.compound:
        return OPEN()

    @property
    def server_defaults(self) -> exclusions.compound:
        return OPEN()

    @property
    def expression_server_defaults(self) -> exclusions.compound:
        return OPEN()

    @property
    def regexp_match(self) -> exclusions.compound:
        # the pysqlite dialect registers a REGEXP function on every connection
        return OPEN()

    @property
    def supports_bitwise_or(self) -> exclusions.compound:
        return OPEN()

    @property
    def supports_bitwise_and(self) -> exclusions.compound:
        return OPEN()

    @property
    def supports_bitwise_not(self) -> exclusions.compound:
        return OPEN()

    @property
    def supports_bitwise_shift(self) -> exclusions.compound:
        return OPEN()

    @property
    def reflect_table_options(self) -> exclusions.compound:
        return OPEN()

    @property
    def foreign_key_constraint_option_reflection_ondelete(self) -> exclusions.compound:
        return OPEN()

    @property
    def foreign_key_constraint_option_reflection_onupdate(self) -> exclusions.compound:
        return OPEN()

    @property
    def fk_constraint_option_reflection_ondelete_restrict(self) -> exclusions.compound:
        return OPEN()

    @property
    def fk_constraint_option_reflection_ondelete_noaction(self) -> exclusions.compound:
        return OPEN()

    @property
    def fk_constraint_option_reflection_onupdate_restrict(self) -> exclusions.compound:
        return OPEN()

    @property
    def mod_operator_as_percent_sign(self) -> exclusions.compound:
        return OPEN()

    @property
    def autocommit(self) -> exclusions.compound:
        # pysqlite's AUTOCOMMIT isolation level (isolation_level = None), kept as is
        return OPEN()

    # ---------------------------------------------------------------- excluded, with reasons
    @property
    def schemas(self) -> exclusions.compound:
        return closed(
            "schemas",
            "the suite's 'test_schema' is a second database file ATTACHed to each connection; "
            "a sqlkv connection refuses ATTACH of a file (one database per connection, see "
            "README Configuration), so there is no second schema to test",
        )

    @property
    def temporary_tables(self) -> exclusions.compound:
        return closed(
            "temporary_tables",
            "the suite creates temporary tables on one connection and inspects them from "
            "another; temporary tables belong to their connection (SQLAlchemy's own "
            "requirements skip them on file SQLite databases for the same reason)",
        )

    @property
    def temp_table_reflection(self) -> exclusions.compound:
        return self.temporary_tables

    @property
    def temporary_views(self) -> exclusions.compound:
        return self.temporary_tables

    @property
    def create_temp_table_as(self) -> exclusions.compound:
        return self.temporary_tables

    @property
    def temp_table_names(self) -> exclusions.compound:
        return self.temporary_tables

    @property
    def has_temp_table(self) -> exclusions.compound:
        return self.temporary_tables

    @property
    def savepoints(self) -> exclusions.compound:
        return closed(
            "savepoints",
            "the pysqlite dialect (which sqlite+sqlkv subclasses unchanged) keeps the stdlib "
            "sqlite3 module's legacy transaction handling, under which SAVEPOINT does not "
            "nest in SQLAlchemy's transaction; SQLAlchemy excludes it for pysqlite too. The "
            "documented pysqlite event recipe (isolation_level=None + emit BEGIN) works the "
            "same with sqlkv (tests/sqla/test_orm_core.py)",
        )

    @property
    def two_phase_transactions(self) -> exclusions.compound:
        return closed("two_phase_transactions", "SQLite has no two-phase commit")

    @property
    def datetime_timezone(self) -> exclusions.compound:
        return closed("datetime_timezone", "SQLite stores no time zone with a DATETIME")

    @property
    def time_timezone(self) -> exclusions.compound:
        return closed("time_timezone", "SQLite stores no time zone with a TIME")
