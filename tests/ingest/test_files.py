"""Landing-file ingestion: each file once, re-deliveries not double-counted, bad files held back."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl

from ingest.files import run_file_ingest

STAMP = datetime(2025, 3, 3, tzinfo=UTC)


def write_intent(landing: Path, name: str, rows: list[tuple]) -> Path:
    path = landing / "intent" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["domain,topic,score,week_start_date"]
    lines += [",".join(str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def engagement_frame(ids: list[str]) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(
        {
            "activity_id": ids,
            "account_domain": ["acme.com"] * n,
            "contact_email": ["a@acme.com"] * n,
            "rep_email": ["rep1@books.local"] * n,
            "activity_type": ["Email"] * n,
            "direction": ["Outbound"] * n,
            "is_automated": [False] * n,
            "occurred_at": [datetime(2025, 2, 1, 12, tzinfo=UTC)] * n,
        }
    )


def write_engagement(landing: Path, name: str, frame: pl.DataFrame) -> Path:
    path = landing / "engagement" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    return path


def table_rows(wh: Path, table: str) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(f"select * from raw_files.{table} order by all").fetchall()
    finally:
        con.close()


def test_each_file_loads_once_and_types_are_right(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    write_intent(landing, "w1.csv", [("acme.com", "crm", 71.5, "2025-02-24")])
    write_intent(
        landing, "w2.csv", [("beta.io", "crm", 40, "2025-02-24"), ("c.com", "bi", 9, "2025-02-24")]
    )
    write_engagement(landing, "e1.parquet", engagement_frame(["x1", "x2", "x3"]))

    first = run_file_ingest(landing, wh, loaded_at=STAMP)
    assert sorted(first.loaded) == ["engagement/e1.parquet", "intent/w1.csv", "intent/w2.csv"]
    assert first.rows_loaded == {"intent_surges": 3, "engagement_activities": 3}
    con = duckdb.connect(str(wh), read_only=True)
    types = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = 'raw_files' and table_name in ('intent_surges', "
            "'engagement_activities')"
        ).fetchall()
    )
    con.close()
    assert types["score"] == "DOUBLE" and types["week_start_date"] == "DATE"
    assert types["occurred_at"] == "TIMESTAMP WITH TIME ZONE"
    assert types["is_automated"] == "BOOLEAN"

    before = (table_rows(wh, "intent_surges"), table_rows(wh, "engagement_activities"))
    second = run_file_ingest(landing, wh, loaded_at=datetime(2025, 3, 4, tzinfo=UTC))
    assert second.loaded == [] and len(second.already_loaded) == 3
    assert second.rows_loaded == {"intent_surges": 0, "engagement_activities": 0}
    assert (table_rows(wh, "intent_surges"), table_rows(wh, "engagement_activities")) == before


def test_redelivered_and_overlapping_files_are_not_double_counted(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    e1 = write_engagement(landing, "e1.parquet", engagement_frame(["x1", "x2"]))
    run_file_ingest(landing, wh, loaded_at=STAMP)
    # the same bytes delivered again under a new name
    (landing / "engagement" / "e1_resent.parquet").write_bytes(e1.read_bytes())
    # an export overlapping the first one by one activity
    write_engagement(landing, "e2.parquet", engagement_frame(["x2", "x3"]))
    stats = run_file_ingest(landing, wh, loaded_at=STAMP)
    assert stats.duplicates == {"engagement/e1_resent.parquet": "engagement/e1.parquet"}
    assert stats.loaded == ["engagement/e2.parquet"]
    assert stats.rows_loaded["engagement_activities"] == 1
    ids = [r[0] for r in table_rows(wh, "engagement_activities")]
    assert ids == ["x1", "x2", "x3"]


def test_malformed_file_is_rejected_reported_and_held_back(tmp_path, caplog):
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    write_intent(landing, "good.csv", [("acme.com", "crm", 50, "2025-02-24")])
    bad = write_intent(
        landing,
        "bad.csv",
        [("beta.io", "crm", 12, "2025-02-24"), ("c.com", "crm", "high", "2025-02-24")],
    )
    write_engagement(landing, "nocol.parquet", engagement_frame(["y1"]).drop("occurred_at"))
    write_engagement(landing, "ok.parquet", engagement_frame(["y2"]))

    with caplog.at_level(logging.ERROR, logger="ingest.files"):
        stats = run_file_ingest(landing, wh, loaded_at=STAMP)
    assert sorted(stats.loaded) == ["engagement/ok.parquet", "intent/good.csv"]
    assert set(stats.rejected) == {"intent/bad.csv", "engagement/nocol.parquet"}
    assert (
        "row 2" in stats.rejected["intent/bad.csv"]
        and "'score'" in stats.rejected["intent/bad.csv"]
    )
    assert "occurred_at" in stats.rejected["engagement/nocol.parquet"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "intent/bad.csv" in logged and "engagement/nocol.parquet" in logged
    con = duckdb.connect(str(wh), read_only=True)
    rejected = con.execute(
        "select feed, file_name, reason from raw_files._rejected_files order by all"
    ).fetchall()
    con.close()
    assert [(f, n) for f, n, _ in rejected] == [
        ("engagement", "nocol.parquet"),
        ("intent", "bad.csv"),
    ]
    assert [r[0] for r in table_rows(wh, "intent_surges")] == ["acme.com"]

    # unchanged: still held back; corrected: loaded and no longer listed as rejected
    again = run_file_ingest(landing, wh, loaded_at=STAMP)
    assert "intent/bad.csv" in again.rejected and again.loaded == []
    write_intent(
        landing,
        bad.name,
        [("beta.io", "crm", 12, "2025-02-24"), ("c.com", "crm", 80, "2025-02-24")],
    )
    fixed = run_file_ingest(landing, wh, loaded_at=STAMP)
    assert fixed.loaded == ["intent/bad.csv"] and fixed.rows_loaded["intent_surges"] == 2
    con = duckdb.connect(str(wh), read_only=True)
    left = con.execute("select file_name from raw_files._rejected_files").fetchall()
    con.close()
    assert left == [("nocol.parquet",)]


def test_corrected_intent_file_replaces_its_rows(tmp_path):
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    write_intent(
        landing, "w1.csv", [("acme.com", "crm", 10, "2025-02-24"), ("b.io", "crm", 5, "2025-02-24")]
    )
    run_file_ingest(landing, wh, loaded_at=STAMP)
    write_intent(landing, "w1.csv", [("acme.com", "crm", 90, "2025-02-24")])
    run_file_ingest(landing, wh, loaded_at=STAMP)
    assert [(r[0], r[2]) for r in table_rows(wh, "intent_surges")] == [("acme.com", 90.0)]
