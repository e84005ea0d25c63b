"""The PostgreSQL sink: rows go to one table, shared by any number of servers (``sink: postgres``).

Each commit is one transaction. The staged rows (COPY text lines, made as readings arrive)
are COPYed straight into the readings table; if that hits its unique key on (sh_id, session,
seq), the batch holds resends and goes the careful way instead: COPY into a temporary table,
then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``. So a resend is absorbed whichever server
stored the first copy, and several servers can share one table. Rows are acknowledged only
after the transaction has committed; a failed commit keeps them staged for the retry.

Needs psycopg 3 (requirements-postgres.txt); the CSV server never imports this module.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ...columns import NAMES
from ...exc import ConfigError, StorageError, one_line
from ...protocol import Reading
from .. import Row
from . import Sink, cells, row_encoder

if TYPE_CHECKING:
    from ...config import Config
    from ..rejects import RejectsLog

try:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from .pg_schema import Statements, create_stage, create_tables
except ImportError:  # optional dependency: only a server with ``sink: postgres`` needs it
    psycopg = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

PSYCOPG_PIN = "psycopg[binary]==3.3.9"  # keep in step with requirements-postgres.txt
START_CONNECT_TIMEOUT = 3  # seconds; a server starts (and retries later) rather than wait long for the database
# Client-side defaults a DSN may override: a database that vanishes mid-commit is noticed in
# seconds, not after the kernel's retransmission timeout (~15 min), so the committer can retry.
CLIENT_DEFAULTS = {"connect_timeout": "10", "keepalives": "1", "keepalives_idle": "10", "keepalives_interval": "5",
                   "keepalives_count": "3", "tcp_user_timeout": "30000", "application_name": "whc-server"}
# Per-session settings. synchronous_commit=on: an ack must mean the WAL is flushed, whatever the
# database's default. The rest make the database end a transaction of ours whose server died or
# lost the network, so a retry elsewhere never waits long on the rows it had locked.
SESSION_SETTINGS = {"synchronous_commit": "on", "idle_in_transaction_session_timeout": "60000",
                    "tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3"}

_EXTRA_AT = NAMES.index("extra")
_NULL = "\\N"
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_line(reading: Reading) -> str:
    """One line of COPY text format: tab-separated cells in column order, ``\\N`` for NULL.

    Numbers, times and ids go in as the text they arrived as (the protocol allows no tab,
    newline or backslash in them); only ``extra`` (JSON, whose strings may hold backslashes)
    needs COPY escaping.
    """
    values = cells(reading, _NULL)
    extra = values[_EXTRA_AT]
    if extra is not _NULL and "\\" in extra:
        values[_EXTRA_AT] = extra.translate(_COPY_ESCAPES)
    return "\t".join(values) + "\n"


def _lock_order(row: Row) -> tuple[str, str, int]:
    """Python's order of (sh_id, session, seq) is PostgreSQL's ``COLLATE "C"`` order for these ASCII ids."""
    key, seq, _line = row
    return (key[0], key[1], seq) if key is not None else ("", "", -1)


def describe_dsn(dsn: str) -> str:
    """``host H port P dbname D`` from a connection string, never its password."""
    params = conninfo_to_dict(dsn)
    host = params.get("host") or params.get("hostaddr") or "(local socket)"
    return f"host {host} port {params.get('port') or 5432} dbname {params.get('dbname') or '(default)'}"


class PostgresSink(Sink):
    """Rows go to a PostgreSQL table (created if missing); exactly-once through its unique key."""

    name = "postgres"

    def __init__(self, dsn: str | None, table: str) -> None:
        if psycopg is None:
            raise ConfigError(f"sink 'postgres' needs psycopg 3: pip install '{PSYCOPG_PIN}'")
        if not dsn:
            raise ConfigError("sink 'postgres' needs key 'postgres_dsn' or 'postgres_dsn_file'")
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.Error:  # libpq's message may quote part of the string, so it is not repeated here
            raise ConfigError("key 'postgres_dsn': not a valid PostgreSQL connection string; use key=value pairs "
                              "(host=db.lab dbname=whc user=whc) or a postgresql:// URI") from None
        for key, value in CLIENT_DEFAULTS.items():
            if key != "tcp_user_timeout" or psycopg.pq.version() >= 120000:  # older libpq lacks it
                params.setdefault(key, value)
        self._conninfo = make_conninfo(**params)
        self.table = table
        self.where = describe_dsn(dsn)
        self._conn: Any = None
        self._connected_once = False
        self._lines: list[Row] = []
        self._sorted = True
        self._unsure: tuple[int, int, int] | None = None  # (xid, inserted, quarantined) of a COMMIT lost midway
        self.commit_duplicates = 0  # resends the last commit found already in the table
        self._sql = Statements.for_table(table)
        try:
            self._connect(START_CONNECT_TIMEOUT)
        except StorageError as exc:
            log.error("%s; starting anyway: nothing is acknowledged until it is reachable", exc)

    # --- the Sink interface ---------------------------------------------------------------
    encode = staticmethod(row_encoder(copy_line))

    @classmethod
    def from_config(cls, config: Config, rejects: RejectsLog) -> PostgresSink:
        return cls(config.secret("postgres_dsn"), config["postgres_table"])

    def stage(self, rows: Iterable[Row]) -> int:
        self._lines.extend(rows)  # type: ignore[arg-type]
        self._sorted = False
        return 0  # duplicates are known only when the database has seen them (``commit_duplicates``)

    def commit(self) -> int:
        """One transaction for everything staged; StorageError (rows kept staged) if it did not commit."""
        if not self._lines:
            self.commit_duplicates = 0
            return 0
        try:
            conn = self._connection()
            if self._unsure is not None:
                landed = self._outcome_of_lost_commit(conn)
                if landed is not None:
                    return self._done(*landed)
            xid = conn.execute("SELECT txid_current()").fetchone()[0]
            if not self._sorted:
                # Every server inserts in the same key order (the unique index's lock order), so two
                # storing the same resent rows at once wait for each other instead of deadlocking.
                self._lines.sort(key=_lock_order)
                self._sorted = True
            inserted, quarantined = self._write(conn, [row[2] for row in self._lines])
            # If the connection breaks after COMMIT is sent, we cannot know whether it landed.
            # Remember the transaction id: the next attempt asks the database (txid_status)
            # instead of guessing. Retrying blindly would be safe for readings with session and
            # seq anyway (the unique key absorbs those that landed), but it could store a reading
            # without them twice.
            self._unsure = (xid, inserted, quarantined)
            conn.commit()
        except psycopg.Error as exc:
            self._drop_connection()
            raise StorageError(f"postgres {self.where}: commit failed: {one_line(exc)}") from None
        self._unsure = None
        return self._done(inserted, quarantined)

    def describe(self) -> str:
        return f"postgres table {self.table} on {self.where}"

    def close(self) -> None:
        if self._lines:
            log.warning("closing with %d rows not committed; senders resend them", len(self._lines))
        self._drop_connection()

    # --- helpers ----------------------------------------------------------------------------
    def _done(self, inserted: int, quarantined: int) -> int:
        self.commit_duplicates = len(self._lines) - inserted - quarantined
        self._lines = []
        return inserted

    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._connect(None)
        return self._conn

    def _connect(self, timeout: int | None) -> None:
        """A new connection, with the table created if missing and our session settings."""
        self._drop_connection()
        options = {} if timeout is None else {"connect_timeout": timeout}
        try:
            conn = psycopg.connect(self._conninfo, autocommit=False, **options)
        except psycopg.Error as exc:
            raise StorageError(f"postgres {self.where}: cannot connect: {one_line(exc)}") from None
        try:
            for name, value in SESSION_SETTINGS.items():
                conn.execute("SELECT set_config(%s, %s, false)", (name, value))
            create_tables(conn, self.table)  # at every connect: cheap, and it comes back if someone dropped it
            create_stage(conn, self.table)
            conn.commit()
        except psycopg.Error as exc:
            conn.close()
            raise StorageError(f"postgres {self.where}: setting up table {self.table}: {one_line(exc)}") from None
        self._conn = conn
        if not self._connected_once:
            log.info("connected to %s", self.describe())
        self._connected_once = True

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except psycopg.Error:
                pass

    def _outcome_of_lost_commit(self, conn: Any) -> tuple[int, int] | None:
        """(inserted, quarantined) if the earlier, interrupted COMMIT did land; None if it did not (so: redo it)."""
        xid, inserted, quarantined = self._unsure  # type: ignore[misc]
        status = conn.execute("SELECT txid_status(%s)", (xid,)).fetchone()[0]
        conn.commit()
        if status == "committed":
            log.info("the commit interrupted earlier did land (transaction %d); not writing it again", xid)
            self._unsure = None
            return inserted, quarantined
        if status == "in progress":  # its server process has not noticed the lost connection yet
            raise StorageError(f"postgres {self.where}: the outcome of an interrupted commit is not known yet "
                               f"(transaction {xid} still in progress)")
        self._unsure = None  # aborted, or too old to tell: write again (the unique key absorbs repeats)
        return None

    def _write(self, conn: Any, lines: list[str], clear: bool = False) -> tuple[int, int]:
        """Insert ``lines`` (COPY text) in the open transaction; returns (inserted, quarantined).

        First straight into the table with COPY: all there is to do unless the batch holds a
        resend. A unique violation (a resend, which only follows a reconnect or a failover), or a
        refused value, rolls that back to its savepoint and takes the careful way: COPY into the
        stage table, then INSERT ... ON CONFLICT DO NOTHING, which skips rows already stored
        (also rows another server's transaction stores meanwhile: it waits for that one).

        A row the database refuses (a value out of its range, a character jsonb cannot hold)
        would fail every retry of the whole batch and stop all acknowledgements; so on a data
        error the batch is split in halves, each in a savepoint, until the refused rows are
        found. Those go to ``<table>_rejects`` in the same transaction, with the reason.
        """
        data = "".join(lines)
        try:
            with conn.transaction(), conn.cursor() as cur, cur.copy(self._sql.copy_direct) as copy:
                copy.write(data)
            return len(lines), 0
        except (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.DeadlockDetected):
            pass  # a resend, a refused value, or a deadlock with another server's COPY of the same resends
        try:
            with conn.transaction(), conn.cursor() as cur:
                if clear:  # the stage table empties at commit; within one, earlier parts are still in it
                    cur.execute(self._sql.clear_stage)
                with cur.copy(self._sql.copy_stage) as copy:
                    copy.write(data)
                cur.execute(self._sql.insert_from_stage)
                return cur.rowcount, 0
        except (psycopg.DataError, psycopg.IntegrityError) as exc:  # this batch's content, not the database
            if len(lines) == 1:
                reason = one_line(exc)
                conn.execute(self._sql.insert_reject, (reason, lines[0]))
                log.warning("the database refused a reading (kept in table %s_rejects): %s", self.table, reason)
                return 0, 1
        half = len(lines) // 2
        first = self._write(conn, lines[:half], True)
        second = self._write(conn, lines[half:], True)
        return first[0] + second[0], first[1] + second[1]
