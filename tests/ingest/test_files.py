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
    bad = write_intent(  # no row loads: the file is rejected whole
        landing,
        "bad.csv",
        [("beta.io", "crm", "low", "2025-02-24"), ("c.com", "crm", "high", "2025-02-24")],
    )
    write_engagement(landing, "nocol.parquet", engagement_frame(["y1"]).drop("occurred_at"))
    write_engagement(landing, "ok.parquet", engagement_frame(["y2"]))

    with caplog.at_level(logging.ERROR, logger="ingest.files"):
        stats = run_file_ingest(landing, wh, loaded_at=STAMP)
    assert sorted(stats.loaded) == ["engagement/ok.parquet", "intent/good.csv"]
    assert set(stats.rejected) == {"intent/bad.csv", "engagement/nocol.parquet"}
    assert (
        "row 1" in stats.rejected["intent/bad.csv"]
        and "'score'" in stats.rejected["intent/bad.csv"]
        and "no loadable row" in stats.rejected["intent/bad.csv"]
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


def _quarantine(wh: Path) -> list[tuple]:
    con = duckdb.connect(str(wh), read_only=True)
    try:
        return con.execute(
            "select stage, object, file_name, row_number, column_name, value, reason, run_id, rule "
            "from ops.quarantine order by all"
        ).fetchall()
    finally:
        con.close()


def test_one_bad_row_of_51_is_quarantined_and_the_50_others_load(tmp_path, caplog):
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    rows = [(f"d{i}.com", "crm", i, "2025-02-24") for i in range(51)]
    rows[36] = ("d36.com", "crm", "n/a", "2025-02-24")  # data row 37
    write_intent(landing, "w9.csv", rows)

    with caplog.at_level(logging.WARNING, logger="ingest.files"):
        stats = run_file_ingest(landing, wh, loaded_at=STAMP, run_id="run-9")
    assert stats.loaded == ["intent/w9.csv"] and stats.rejected == {}
    assert stats.rows_loaded["intent_surges"] == 50
    assert stats.quarantined == {"intent/w9.csv": 1}
    loaded = {r[0] for r in table_rows(wh, "intent_surges")}
    assert loaded == {f"d{i}.com" for i in range(51)} - {"d36.com"}
    assert _quarantine(wh) == [
        ("landing", "intent", "intent/w9.csv", 37, "score", "n/a",
         "'n/a' not a valid double", "run-9", "score.unparseable"),
    ]  # fmt: skip
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "intent/w9.csv row 37 column 'score'" in logged

    # a re-run loads and quarantines nothing again
    again = run_file_ingest(landing, wh, loaded_at=STAMP, run_id="run-10")
    assert again.already_loaded == ["intent/w9.csv"] and again.quarantined == {}
    assert len(_quarantine(wh)) == 1


def test_bad_engagement_rows_each_named_by_row_and_column(tmp_path):
    """A key left empty and a timestamp that does not parse: both rows held back, by name."""
    landing, wh = tmp_path / "landing", tmp_path / "wh.duckdb"
    frame = engagement_frame(["e1", "", "e3", "e4"]).with_columns(
        pl.Series("occurred_at", ["2025-02-01T12:00:00Z", "2025-02-01T12:00:00Z",
                                  "yesterday", "2025-02-02T09:30:00Z"])
    )  # fmt: skip
    write_engagement(landing, "e.parquet", frame)
    stats = run_file_ingest(landing, wh, loaded_at=STAMP, run_id="run-1")
    assert stats.rows_loaded["engagement_activities"] == 2
    assert [r[0] for r in table_rows(wh, "engagement_activities")] == ["e1", "e4"]
    held = [(r[3], r[4]) for r in _quarantine(wh)]
    assert held == [(2, "activity_id"), (3, "occurred_at")]
