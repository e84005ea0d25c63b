"""A throwaway PostgreSQL cluster for the postgres sink tests: one per session, a fresh database per test.

Uses the distribution's server binaries (Debian: ``apt-get install postgresql``, which
scripts/test.sh does). PostgreSQL refuses to run as root, so as root the cluster runs as the
``postgres`` user (created by that package) or ``nobody``, in a folder that user owns. It
listens on 127.0.0.1 only, trusts loopback, and keeps fsync on.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import free_port

HOW_TO_FIX = "run bash scripts/test.sh, which installs them (apt-get install postgresql; pip install -r " \
             "requirements-postgres.txt)"


def find_bindir() -> Path | None:
    """The newest PostgreSQL server bin folder (``initdb``, ``pg_ctl``), or None."""
    found = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    if found:
        return Path(max(found, key=lambda p: int(Path(p).parent.parent.name))).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path and shutil.which("initdb") else None


class Cluster:
    """One PostgreSQL server in a temporary folder."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.user = None
        if os.geteuid() == 0:
            name = "postgres" if _user_exists("postgres") else "nobody"
            self.user = pwd.getpwnam(name)
        self.folder = Path(tempfile.mkdtemp(prefix="whc-pg-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "sock"
        self.socket_dir.mkdir()
        self.logfile = self.folder / "postgres.log"
        if self.user is not None:
            for path in (self.folder, self.socket_dir):
                os.chown(path, self.user.pw_uid, self.user.pw_gid)
        self.port = free_port()
        self._databases = itertools.count(1)

    def run(self, tool: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a server tool as the cluster's user; fail the test run with its output if it fails."""
        user = {} if self.user is None else {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        result = subprocess.run([str(self.bindir / tool), *args], cwd=self.folder, stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=timeout, **user)
        if result.returncode != 0:
            log = self.logfile.read_text()[-3000:] if self.logfile.exists() else ""
            pytest.fail(f"{tool} {' '.join(args)} failed ({result.returncode}): {result.stdout}{result.stderr}{log}")
        return result

    def init(self) -> None:
        self.run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync",
                 "--no-instructions")

    def start(self) -> None:
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.socket_dir} "
                   "-c fsync=on -c synchronous_commit=on -c max_connections=200")
        self.run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.logfile), "-w", "-t", "60", "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """``fast``: clean shutdown, clients disconnected; ``immediate``: like a crash (recovery at next start)."""
        self.run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w", "-t", "60")

    def running(self) -> bool:
        user = {} if self.user is None else {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        return subprocess.run([str(self.bindir / "pg_ctl"), "status", "-D", str(self.data)], capture_output=True,
                              **user).returncode == 0

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def connect(self, dbname: str = "postgres", **kwargs: Any) -> Any:
        import psycopg

        return psycopg.connect(self.dsn(dbname), **kwargs)

    def new_database(self) -> str:
        name = f"test_{next(self._databases)}"
        with self.connect(autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return name

    def destroy(self) -> None:
        try:
            if self.data.exists() and self.running():
                self.stop("fast")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


class Database:
    """A fresh database in the cluster, with a DSN for servers and a query helper for assertions."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.dsn = cluster.dsn(name)

    def query(self, statement: str, *params: Any) -> list[tuple]:
        with self.cluster.connect(self.name, autocommit=True) as conn:
            return conn.execute(statement, params or None).fetchall()

    def count(self, table: str = "whc_readings") -> int:
        """Rows in ``table``; 0 while it does not exist yet (or the database is down)."""
        import psycopg

        try:
            return self.query(f"SELECT count(*) FROM {table}")[0][0]
        except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
            return 0


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """The session's PostgreSQL cluster; the tests fail (not skip) if PostgreSQL or psycopg is missing."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.fail(f"psycopg is not installed in this Python: {HOW_TO_FIX}")
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(f"PostgreSQL server binaries (initdb, pg_ctl) not found: {HOW_TO_FIX}")
    cluster = Cluster(bindir)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg(pg_cluster: Cluster) -> Database:
    """A fresh database; the cluster is (re)started first if a test left it stopped."""
    if not pg_cluster.running():
        pg_cluster.start()
    return Database(pg_cluster, pg_cluster.new_database())
