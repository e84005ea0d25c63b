"""The snippets in docs/analysis.md read a CSV written by a real server with the right types."""

from __future__ import annotations

import contextlib
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from docsnippets import recipes
from harness import Client

from whc.columns import NAMES, SENSOR_COLUMNS

RECIPES = recipes("analysis.md")


@pytest.fixture
def csv_folder(server) -> Path:
    """A CSV from the server: no magnetometer at all, one reading without seq, one with extra, a unit named NA."""
    client = Client(server.port, acks=True)
    client.send({"sh_id": "rpi01", "session": "s1", "seq": 0, "time": "2026-11-24T12:00:00.123456Z", "acc_z": 0.998},
                {"sh_id": "rpi01", "session": "s1", "seq": 1, "time": "2026-11-24T12:00:01+01:00", "acc_z": 1.002},
                {"sh_id": "NA", "time": 1764072000.25, "acc_z": "1", "vibration": 2.5},
                {"sh_id": "rpi02", "session": "s9", "seq": 9223372036854775807, "acc_z": None})
    client.wait_ack(4)
    client.close()
    assert server.rejects() == [] and len(server.rows()) == 4
    return server.folder


def run(name: str, folder: Path, monkeypatch) -> tuple[dict, str]:
    """Execute a Python snippet in ``folder``; return its variables and what it printed."""
    monkeypatch.chdir(folder)
    namespace: dict = {"__name__": "__snippet__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(RECIPES[name], f"docs/analysis.md:{name}", "exec"), namespace)
    return namespace, out.getvalue()


def test_pandas_types(csv_folder: Path, monkeypatch) -> None:
    namespace, printed = run("pandas.py", csv_folder, monkeypatch)
    df: pd.DataFrame = namespace["df"]
    assert list(df.columns) == list(NAMES)
    assert str(df["time"].dtype).startswith("datetime64") and str(df["time"].dt.tz) == "UTC"
    assert str(df["recv_time"].dt.tz) == "UTC"
    assert all(df[name].dtype == "float64" for name in SENSOR_COLUMNS), "all-empty columns too"
    assert df["seq"].dtype == "Int64" and df["seq"].isna().sum() == 1
    assert df["seq"].max() == 9223372036854775807, "no float rounding"
    assert list(df["sh_id"]) == ["rpi01", "rpi01", "NA", "rpi02"]
    assert df["time"][1] == pd.Timestamp("2026-11-24T11:00:01Z")
    assert df["time"][2] == pd.Timestamp("2025-11-25T12:00:00.25Z")
    assert df["acc_z"].sum() == pytest.approx(3.0) and "rpi01" in printed


def test_duckdb_types(csv_folder: Path, monkeypatch) -> None:
    monkeypatch.chdir(csv_folder)
    statements = [s.strip() for s in RECIPES["duckdb.sql"].split(";") if s.strip()]
    columns = re.findall(r"'(\w+)': '(\w+)'", statements[0])
    assert [name for name, _ in columns] == list(NAMES), "every column, in the CSV's order"
    con = duckdb.connect()
    con.execute(statements[0])
    types = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                             "WHERE table_name = 'readings'").fetchall())
    assert {types[name] for name in SENSOR_COLUMNS} == {"DOUBLE"}
    assert (types["time"], types["seq"]) == ("TIMESTAMP WITH TIME ZONE", "BIGINT")
    result = con.execute(statements[1]).fetchall()
    assert [(r[0], r[1], r[3]) for r in result] == [("NA", 1, None), ("rpi01", 2, None), ("rpi02", 1, None)]
    assert result[1][2] == pytest.approx(1.0)
    assert result[1][4].astimezone(UTC) == datetime(2026, 11, 24, 11, 0, 1, tzinfo=UTC), "the +01:00 time, in UTC"
    extra = con.execute("SELECT extra FROM readings WHERE sh_id = 'NA'").fetchone()[0]
    assert json.loads(extra) == {"vibration": 2.5}


def test_plain_csv_types(csv_folder: Path, monkeypatch) -> None:
    namespace, printed = run("plain_csv.py", csv_folder, monkeypatch)
    rows = namespace["rows"]
    assert rows[0]["time"] == datetime(2026, 11, 24, 12, 0, 0, 123456, tzinfo=UTC)
    assert (rows[0]["seq"], rows[2]["seq"], rows[0]["mag_x"], rows[0]["acc_z"]) == (0, None, None, 0.998)
    assert rows[2]["sh_id"] == "NA" and json.loads(rows[2]["extra"]) == {"vibration": 2.5}
    assert printed.startswith("4 readings;")
