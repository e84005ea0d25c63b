"""The PostgreSQL sink's table as a report stream: the same rows, as text, that the CSV would hold.

A server-side cursor fetches a few thousand rows at a time, so memory stays bounded whatever the
table's size. Rows come in the order they were received (``recv_time``, then unit, session and seq),
which is the CSV's order for every unit. Needs psycopg 3 (requirements-postgres.txt).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..columns import NAMES
from ..exc import ReportError
from .stream import Invalid, Layout

FETCH_ROWS = 5000
_TIMES = frozenset({"time", "recv_time"})
_ISO = """'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'"""


def _cell(name: str) -> str:
    column = f'"{name}"'
    if name in _TIMES:
        return f"coalesce(to_char({column} AT TIME ZONE 'UTC', {_ISO}), '')"
    return f"coalesce({column}::text, '')"


class PostgresStream:
    """The rows of one table, read again on each call to ``rows`` (one query per pass)."""

    def __init__(self, dsn: str, table: str) -> None:
        try:
            import psycopg
            from psycopg import sql
        except ImportError:
            raise ReportError("--postgres needs psycopg 3: pip install -r requirements-postgres.txt") from None
        self._psycopg, self._sql = psycopg, sql
        self.dsn = dsn
        self.table = table
        self.layout = Layout(NAMES, True)
        self.invalid = Invalid()
        self.line = 0
        try:
            with self._connect() as conn:
                found = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]
                if not found:
                    raise ReportError(f"PostgreSQL: no table {table!r} in this database")
                self.rows_estimate, self.size = conn.execute(
                    "SELECT greatest(reltuples, 0)::bigint, pg_total_relation_size(oid) FROM pg_class "
                    "WHERE oid = to_regclass(%s)", (table,)).fetchone()
                self.where = " ".join(f"{k}={v}" for k, v in conn.info.get_parameters().items()
                                      if k in ("host", "port", "dbname"))
        except psycopg.Error as exc:
            raise ReportError(f"PostgreSQL: {' '.join(str(exc).split())}") from None
        self.path = Path(f"{self.where or 'postgres'} table {table}")

    def _connect(self) -> Any:
        return self._psycopg.connect(self.dsn, connect_timeout=10, application_name="whc-report")

    def query(self) -> Any:
        sql = self._sql
        cells = sql.SQL(", ").join(sql.SQL(_cell(name)) for name in NAMES)
        return sql.SQL("SELECT {} FROM {} ORDER BY recv_time, sh_id, session, seq").format(
            cells, sql.Identifier(self.table))

    def rows(self, on_progress: Callable[[int], None] | None = None) -> Iterator[list[str]]:
        """Every row as the CSV's text cells, in receive order; ``on_progress`` gets an estimate of bytes read."""
        self.invalid = Invalid()
        per_row = self.size / self.rows_estimate if self.rows_estimate else 0
        try:
            with self._connect() as conn, conn.transaction(), conn.cursor(name="whc_report") as cursor:
                cursor.itersize = FETCH_ROWS
                cursor.execute(self.query())
                count = 0
                while batch := cursor.fetchmany(FETCH_ROWS):
                    for row in batch:
                        count += 1
                        self.line = count
                        yield list(row)
                    if on_progress is not None:
                        on_progress(int(count * per_row))
        except self._psycopg.Error as exc:
            raise ReportError(f"PostgreSQL: {' '.join(str(exc).split())}") from None
