"""What sqlite+sqlkv:// supports, for SQLAlchemy's compliance suite.

``SuiteRequirements`` closes every optional feature; each property here opens one that
SQLite (and so sqlkv) has, or closes one with the reason written next to it. The README
lists the closed ones; none is closed without a reason.
"""

from __future__ import annotations

from typing import Any

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
            "test_window_range_dates binds a timedelta(days=7) as the RANGE offset, which "
            "SQLAlchemy's SQLite types send as the text '1970-01-08 00:00:00.000000'; SQLite "
            "takes only a non-negative number there ('frame starting offset must be a "
            "non-negative number'), and SQLite stores dates as text, not as a type a "
            "numeric offset could step through. pysqlite fails it identically",
        )

    @property
    def parens_in_union_contained_select_wo_limit_offset(self) -> exclusions.compound:
        return closed(
            "parens_in_union_contained_select_wo_limit_offset",
            "SQLite's grammar has no parenthesized SELECT as a UNION operand: '(SELECT ... "
            "LIMIT ?) UNION (SELECT ...)' is 'near \"UNION\": syntax error' "
            "(CompoundSelectTest's three *_in_unions tests, pysqlite identically)",
        )

    @property
    def parens_in_union_contained_select_w_limit_offset(self) -> exclusions.compound:
        return closed(
            "parens_in_union_contained_select_w_limit_offset",
            "SQLite's grammar has no parenthesized SELECT as a UNION operand: '(SELECT ... "
            "LIMIT ?) UNION (SELECT ...)' is 'near \"UNION\": syntax error' "
            "(CompoundSelectTest's three *_in_unions tests, pysqlite identically)",
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
    def reflects_pk_names(self) -> exclusions.compound:
        # the SQLite dialect reads a primary key's CONSTRAINT name from the CREATE TABLE text
        return OPEN()

    @property
    def autocommit(self) -> exclusions.compound:
        # pysqlite's AUTOCOMMIT isolation level (isolation_level = None), kept as is
        return OPEN()

    def get_isolation_levels(self, config: Any) -> dict[str, Any]:
        """The dialect's levels, read from the dialect as SQLAlchemy's own requirements do
        for SQLite: the suite's default asks a connection for them, a second checkout
        while the test holds the pool's one connection (pool timeout)."""
        levels = set(config.db.dialect._isolation_lookup) | {"AUTOCOMMIT"}
        return {"default": "SERIALIZABLE", "supported": sorted(levels)}

    # ---------------------------------------------------------------- excluded, with reasons
    @property
    def independent_connections(self) -> exclusions.compound:
        return closed(
            "independent_connections",
            "a sqlkv database has one owner connection at a time: a second one takes it "
            "over and fences the first. Closed, the reflection classes (ComponentReflectionTest, "
            "HasTableTest, ...) run on the main engine instead of a StaticPool engine of "
            "their own next to it; no test is skipped by it (SQLAlchemy's own requirements "
            "close it for SQLite as well)",
        )

    @property
    def implicitly_named_constraints(self) -> exclusions.compound:
        return closed(
            "implicitly_named_constraints",
            "SQLite gives no name to a constraint declared without CONSTRAINT <name>, so "
            "reflection answers name None for it (and the suite then compares such "
            "constraints sorted, not by name); SQLAlchemy's own requirements close it for "
            "SQLite, pysqlite included",
        )

    @property
    def schemas(self) -> exclusions.compound:
        return closed(
            "schemas",
            "SQLAlchemy's SQLite provisioning makes 'test_schema' a second database file "
            "ATTACHed to each connection; a sqlkv connection refuses ATTACH of a file (one "
            "database per connection, README Configuration), and an ATTACHed ':memory:' "
            "would lose the tables the suite creates there in class setup whenever the "
            "harness reopens the connection, so there is no second schema to test",
        )

    @property
    def temporary_tables(self) -> exclusions.compound:
        return closed(
            "temporary_tables",
            "a temporary table or view lives only on the connection that made it; the suite "
            "creates them in class setup and inspects them in later tests, and this harness "
            "closes the main engine's connection after every test (so that a test that took "
            "the database over leaves the next one an owner), so they are gone (opened, the "
            "27 temporary-object tests find no user_tmp_* objects). SQLAlchemy's own "
            "requirements close them for file SQLite databases too",
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
            "sqlite3 module's legacy transaction control, whose implicit BEGIN/COMMIT do not "
            "cooperate with SAVEPOINT, so begin_nested() needs SQLAlchemy's documented "
            "pysqlite recipe (isolation_level=None, emit BEGIN), tested with sqlkv in "
            "tests/sqla/test_orm_core_alembic.py. SuiteRequirements closes it by default; no "
            "test of SQLAlchemy 2.1.9's suite requires it, so closing it skips nothing",
        )

    @property
    def two_phase_transactions(self) -> exclusions.compound:
        return closed(
            "two_phase_transactions",
            "SQLite has no PREPARE TRANSACTION / XA: the SQLite dialect implements no "
            "do_prepare_twophase (so does pysqlite's)",
        )

    @property
    def datetime_timezone(self) -> exclusions.compound:
        return closed(
            "datetime_timezone",
            "SQLAlchemy's SQLite DATETIME is text without a UTC offset, so a timezone-aware "
            "value reads back naive (DateTimeTZTest: 12:57:18 != 12:57:18+00:00); pysqlite "
            "fails the same three tests identically",
        )

    @property
    def time_timezone(self) -> exclusions.compound:
        return closed(
            "time_timezone",
            "SQLAlchemy's SQLite TIME is text without a UTC offset, so a timezone-aware "
            "value reads back naive (TimeTZTest); pysqlite fails the same three tests "
            "identically",
        )
