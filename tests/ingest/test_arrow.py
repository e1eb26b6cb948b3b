"""Bulk CSV pages parse straight to the raw types; a record with a bad value is held back."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from ingest.arrow import csv_to_arrow
from ingest.fields import object_specs

SPEC = object_specs()["Account"]


def _page(**values: str) -> bytes:
    header = ",".join(f'"{n}"' for n in SPEC.field_names)
    row = ",".join(f'"{values.get(n, "")}"' for n in SPEC.field_names)
    return f"{header}\n{row}\n".encode()


def test_page_parses_to_the_raw_schema() -> None:
    rejected: list = []
    table = csv_to_arrow(
        SPEC,
        _page(
            Id="001Dy0000000001IAA",
            IsDeleted="true",
            SystemModstamp="2025-01-06T12:30:00.000+0000",
            NumberOfEmployees="42",
            AnnualRevenue="0.30000000000000004",
            Website="N/A",
            Last_Touch_Date__c="2025-01-03",
        ),
        rejected,
    )
    assert table.schema == SPEC.arrow_schema and rejected == []
    (row,) = table.to_pylist()
    assert row["is_deleted"] is True and row["number_of_employees"] == 42
    assert row["annual_revenue"] == 0.1 + 0.2
    assert row["system_modstamp"] == dt.datetime(2025, 1, 6, 12, 30, tzinfo=dt.UTC)
    assert row["last_touch_date_c"] == dt.date(2025, 1, 3)
    assert row["website"] == "N/A"  # text that looks like a null marker is data
    assert row["name"] is None  # an empty value is null


def test_a_record_with_an_unparseable_value_is_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    page = _page(Id="001Dy0000000001IAA", NumberOfEmployees="lots", Name="Acme")
    page += b'"001Dy0000000002IAA"' + b',""' * (len(SPEC.field_names) - 1) + b"\n"
    rejected: list = []
    table = csv_to_arrow(SPEC, page, rejected)
    assert table.column("id").to_pylist() == ["001Dy0000000002IAA"]
    (held,) = rejected
    assert (held.record_id, held.column, held.value) == (
        "001Dy0000000001IAA",
        "NumberOfEmployees",
        "lots",
    )
    assert "NumberOfEmployees" in caplog.text and "001Dy0000000001IAA" in caplog.text


def test_missing_column_is_an_error() -> None:
    page = b'"Id","Name"\n"001Dy0000000001IAA","Acme"\n'
    with pytest.raises(ValueError, match="lacks column"):
        csv_to_arrow(SPEC, page)
