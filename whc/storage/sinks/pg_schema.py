"""The PostgreSQL sink's tables: the readings and rejects tables created if missing, its per-session stage table,
and the SQL statements that write to them.

Needs psycopg 3; only ``postgres.py`` imports it, and only when psycopg is installed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from ...columns import COLUMNS, NAMES, SENSOR_COLUMNS
from ...exc import one_line

log = logging.getLogger("whc.storage.sinks.postgres")  # the sink's logger: its messages keep their source

STAGE = "whc_stage"
COLUMN_TYPES = {"time": "timestamptz NOT NULL", "sh_id": "text NOT NULL", "seq": "bigint", "session": "text",
                "recv_time": "timestamptz NOT NULL", "src_ip": "text NOT NULL", "extra": "jsonb"}
COLUMN_TYPES.update({name: "double precision" for name in SENSOR_COLUMNS})
assert set(COLUMN_TYPES) == set(NAMES), "every column has a SQL type"


@dataclass(frozen=True)
class Statements:
    """The composed statements for one readings table (and its ``_rejects`` table)."""

    copy_direct: sql.Composed  # COPY straight into the readings table
    copy_stage: sql.Composed  # COPY into the stage table
    insert_from_stage: sql.Composed  # stage -> readings, skipping rows already stored
    clear_stage: sql.Composed
    insert_reject: sql.Composed  # (reason, line) into <table>_rejects

    @classmethod
    def for_table(cls, table: str) -> Statements:
        ident, stage = sql.Identifier(table), sql.Identifier(STAGE)
        columns = sql.SQL(", ").join(sql.Identifier(name) for name in NAMES)
        return cls(
            copy_direct=sql.SQL("COPY {} ({}) FROM STDIN").format(ident, columns),
            copy_stage=sql.SQL("COPY {} ({}) FROM STDIN").format(stage, columns),
            # Rows go in key order, the same in every server's transactions: two servers inserting
            # the same resent rows then wait for each other instead of deadlocking.
            insert_from_stage=sql.SQL(
                "INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} "
                'ORDER BY sh_id COLLATE "C", session COLLATE "C", seq ON CONFLICT DO NOTHING'
            ).format(table=ident, columns=columns, stage=stage),
            clear_stage=sql.SQL("TRUNCATE {}").format(stage),
            insert_reject=sql.SQL("INSERT INTO {} (reason, line) VALUES (%s, %s)").format(
                sql.Identifier(table + "_rejects")),
        )


def create_stage(conn: Any, table: str) -> None:
    """This session's stage table, shaped like ``table`` and emptied at every commit."""
    conn.execute(sql.SQL("CREATE TEMPORARY TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS").format(
        sql.Identifier(STAGE), sql.Identifier(table)))


def create_tables(conn: Any, table: str) -> None:
    """CREATE TABLE IF NOT EXISTS, serialised between servers starting at once (it races otherwise)."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"whc table {table}",))
    # Existence is checked first: a role without CREATE may use tables an administrator made.
    if not exists(conn, table + "_rejects"):
        conn.execute(sql.SQL("CREATE TABLE {} (stored_at timestamptz NOT NULL DEFAULT now(), "
                             "reason text NOT NULL, line text NOT NULL)").format(sql.Identifier(table + "_rejects")))
    if exists(conn, table):
        return
    hypertable = timescaledb(conn)
    # On a hypertable every unique index must include the partitioning column. A resent
    # reading carries the same time as the first copy, so the wider key dedups just the same.
    key = ["sh_id", "session", "seq"] + (["time"] if hypertable else [])
    columns = [sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(COLUMN_TYPES[c.name])) for c in COLUMNS]
    columns.append(sql.SQL("CONSTRAINT {} UNIQUE ({})").format(
        sql.Identifier(table + "_key"), sql.SQL(", ").join(map(sql.Identifier, key))))
    conn.execute(sql.SQL("CREATE TABLE {} ({})").format(sql.Identifier(table), sql.SQL(", ").join(columns)))
    if hypertable:
        conn.execute("SELECT create_hypertable(%s, 'time')", (table,))
    else:
        conn.execute(sql.SQL("CREATE INDEX {} ON {} USING brin (time)").format(
            sql.Identifier(table + "_time_brin"), sql.Identifier(table)))
    log.info("created table %s (%s)", table, "TimescaleDB hypertable on time" if hypertable else
             "plain table, BRIN index on time")


def exists(conn: Any, name: str) -> bool:
    """True if a table (or other relation) ``name`` is visible on the search path."""
    return conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None


def timescaledb(conn: Any) -> bool:
    """True if TimescaleDB is (or can be made) available in this database. UNTESTED here: see docs/postgres.md."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return True
    if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone():
        return False
    try:
        with conn.transaction():  # a savepoint: a refusal leaves the outer transaction usable
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        return True
    except psycopg.Error as exc:
        log.warning("timescaledb is available but CREATE EXTENSION failed (%s); using a plain table",
                    one_line(exc))
        return False
