"""Data contracts: bad rows are quarantined exactly, bad tables block."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from contracts import ContractReport, record_overrides, row_rules, run_contracts
from local_crm.db import make_id
from local_crm.schema import OBJECTS
from tests.contracts.raw_world import build_good_world, insert_rows

RUN_AT = datetime(2024, 1, 3, tzinfo=UTC)


def _bad_rows(users: list[str], accounts: list[str], n: int) -> dict[str, list[dict]]:
    """`n` rows, each breaking exactly one row rule, spread over Account/Contact/User."""
    stamp = RUN_AT
    faults = [
        ("Account", "id.well_formed", lambda i: {"Id": f"001-not-an-id-{i}"}),
        ("Account", "id.well_formed", lambda i: {"Id": None}),
        ("Account", "id.well_formed", lambda i: {"Id": f"003{i:015d}"}),  # a Contact prefix
        ("Account", "owner_id.references_user", lambda i: {"OwnerId": "005" + "Z" * 15}),
        ("Account", "owner_id.well_formed_id", lambda i: {"OwnerId": "005'; drop table x"}),
        ("Account", "owner_id.not_null", lambda i: {"OwnerId": None}),
        ("Account", "name.not_null", lambda i: {"Name": None}),
        ("Account", "number_of_employees.range", lambda i: {"NumberOfEmployees": -5}),
        ("Account", "annual_revenue.range", lambda i: {"AnnualRevenue": -0.01}),
        ("Account", "book_status_c.picklist", lambda i: {"Book_Status__c": "hoarded"}),
        ("Account", "type.picklist", lambda i: {"Type": "prospect"}),  # picklists are exact
        ("Contact", "account_id.references_account", lambda i: {"AccountId": "001" + "Q" * 15}),
        ("Contact", "email.email", lambda i: {"Email": "not-an-email"}),
        ("User", "book_role_c.picklist", lambda i: {"Book_Role__c": "CEO"}),
        ("User", "is_active.not_null", lambda i: {"IsActive": None}),
    ]
    out: dict[str, list[dict]] = {"Account": [], "Contact": [], "User": []}
    for i in range(n):
        obj, rule, fault = faults[i % len(faults)]
        row = {
            "Id": make_id(OBJECTS[obj].key_prefix, 900_000 + i),
            "IsDeleted": False,
            "CreatedDate": stamp,
            "LastModifiedDate": stamp,
            "SystemModstamp": stamp,
        }
        if obj == "Account":
            row |= {"OwnerId": users[0], "Name": f"Bad {i}", "Type": "Prospect"}
        elif obj == "Contact":
            row |= {"OwnerId": users[0], "AccountId": accounts[0], "Email": f"b{i}@x.com"}
        else:
            row |= {"Username": f"u{i}@x.com", "Name": f"U {i}", "IsActive": True}
        out[obj].append(row | fault(i) | {"_rule": rule})
    return out


@pytest.fixture(scope="module")
def bad_data_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, ContractReport]:
    path = tmp_path_factory.mktemp("contracts") / "warehouse.duckdb"
    good = build_good_world(path, n_accounts=5990, n_contacts=4000)
    assert sum(good.counts.values()) == 10_000
    bad = _bad_rows(good.users, good.accounts, 1000)
    with duckdb.connect(str(path)) as con:
        for obj, rows in bad.items():
            insert_rows(con, obj, [{k: v for k, v in r.items() if k != "_rule"} for r in rows])
    report = run_contracts(path, "run-1", detected_at=RUN_AT)
    return path, bad, report


def test_exactly_the_malformed_rows_are_quarantined(bad_data_world) -> None:
    path, bad, report = bad_data_world
    expected = {(obj, r["Id"], r["_rule"]) for obj, rows in bad.items() for r in rows}
    with duckdb.connect(str(path), read_only=True) as con:
        got = con.execute(
            "select object, record_id, rule, reason from ops.quarantine where run_id = 'run-1'"
        ).fetchall()
        distinct_rows = con.execute(
            "select count(distinct dlt_id) from ops.quarantine where run_id = 'run-1'"
        ).fetchone()[0]
        clean_good = con.execute(
            "select count(*) from raw_salesforce.account as t where not exists (select 1 from "
            "ops.quarantined_ids as q where q.object = 'Account' and q.record_id = t.id) "
            "and t.id is not null"
        ).fetchone()[0]
    print(
        f"\nquarantined {distinct_rows} of 11,000 raw rows; by rule: {report.quarantined_by_rule}"
    )
    assert distinct_rows == 1000
    assert sum(report.quarantined.values()) == 1000
    # every malformed row is flagged by the rule it breaks; no good row is flagged at all
    assert expected <= {(o, rid, rule) for o, rid, rule, _ in got}
    assert {(o, rid) for o, rid, *_ in got} == {(o, rid) for o, rid, _ in expected}
    assert all(reason for *_, reason in got)
    # 0 good rows quarantined: what staging keeps of Account is exactly the good accounts
    assert clean_good == 5990
    assert report.passed, report.failures


def test_quarantine_values_and_rerun_replaces_the_run(bad_data_world) -> None:
    path, _bad, _report = bad_data_world
    with duckdb.connect(str(path), read_only=True) as con:
        value = con.execute(
            "select value from ops.quarantine where rule = 'book_status_c.picklist' limit 1"
        ).fetchone()[0]
        before = con.execute("select count(*) from ops.quarantine").fetchone()[0]
    assert value == "hoarded"
    again = run_contracts(path, "run-1", detected_at=RUN_AT)
    with duckdb.connect(str(path), read_only=True) as con:
        rows, distinct = con.execute(
            "select count(*), count(distinct dlt_id) from ops.quarantine"
        ).fetchone()
    assert (rows, distinct) == (before, 1000) and sum(again.quarantined.values()) == 1000


def _good_only(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    build_good_world(path, n_accounts=1000, n_contacts=200)
    first = run_contracts(path, "r1", detected_at=RUN_AT)
    assert first.passed and sum(first.quarantined.values()) == 0
    return path


def test_row_count_drop_without_deletes_blocks(tmp_path: Path) -> None:
    path = _good_only(tmp_path)
    with duckdb.connect(str(path)) as con:  # 2% of accounts vanish with no delete record
        con.execute("delete from raw_salesforce.account where id in "
                    "(select id from raw_salesforce.account order by id limit 20)")  # fmt: skip
    report = run_contracts(path, "r2", detected_at=RUN_AT)
    assert not report.passed
    assert any(
        f.startswith("account:") and "row_count" in f and "observed 980" in f
        for f in report.failures
    ), report.failures
    # a blocked load is not the next baseline: the drop keeps blocking until explained
    assert not run_contracts(path, "r3", detected_at=RUN_AT).passed


def _vanish(path: Path, table: str, n: int) -> None:
    """`n` rows disappear from a raw table with no delete record (a hard delete upstream)."""
    with duckdb.connect(str(path)) as con:
        con.execute(f"delete from raw_salesforce.{table} where id in "
                    f"(select id from raw_salesforce.{table} order by id limit {n})")  # fmt: skip


def _accept(path: Path, run_id: str, *objects: str) -> None:
    with duckdb.connect(str(path)) as con:
        record_overrides(con, run_id, objects, accepted_by="revops@acme.test",
                         reason="CRM clean-up hard-deleted duplicates",
                         requested_via="books run", requested_at=RUN_AT)  # fmt: skip


def test_accepted_row_drop_passes_for_that_object_and_that_run_only(tmp_path: Path) -> None:
    path = _good_only(tmp_path)
    _vanish(path, "account", 50)  # 5% of accounts
    blocked = run_contracts(path, "r2", detected_at=RUN_AT)
    assert [f.split(":")[0] for f in blocked.failures] == ["account"]

    # Accepted for Account in r3 only: r3 passes, the accepted count is the next baseline.
    _accept(path, "r3", "Account")
    accepted = run_contracts(path, "r3", detected_at=RUN_AT)
    assert accepted.passed, accepted.failures
    assert accepted.tables["Account"].accepted_drop == "revops@acme.test"
    with duckdb.connect(str(path), read_only=True) as con:
        audit = con.execute(
            "select run_id, object, accepted_by, reason, requested_via, observed_rows, floor_rows "
            "from ops.row_drop_overrides"
        ).fetchall()
    assert audit == [("r3", "Account", "revops@acme.test", "CRM clean-up hard-deleted duplicates",
                      "books run", 950, 990)]  # fmt: skip

    # The override does not reach another object in the same run ...
    _vanish(path, "contact", 10)  # 5% of contacts
    _accept(path, "r4", "Account")
    report = run_contracts(path, "r4", detected_at=RUN_AT)
    assert [f.split(":")[0] for f in report.failures] == ["contact"]
    # ... nor a later run of the same object: a new drop blocks again.
    _vanish(path, "account", 50)
    later = run_contracts(path, "r5", detected_at=RUN_AT)
    assert {f.split(":")[0] for f in later.failures} == {"account", "contact"}
    print(
        f"\nrow-drop override: r2 blocked {blocked.failures}; r3 accepted "
        f"{audit[0][5]} < floor {audit[0][6]} by {audit[0][2]}; r4 blocked {report.failures}; "
        f"r5 blocked {len(later.failures)} tables"
    )


def test_override_names_a_known_object_and_who_and_why(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        with pytest.raises(ValueError, match="unknown object\\(s\\) Acount"):
            record_overrides(con, "r1", ["Acount"], accepted_by="me", reason="why",
                             requested_via="books run", requested_at=RUN_AT)  # fmt: skip
        with pytest.raises(ValueError, match="needs who and why"):
            record_overrides(con, "r1", ["Account"], accepted_by="me", reason=" ",
                             requested_via="books run", requested_at=RUN_AT)  # fmt: skip


def test_row_count_drop_explained_by_deletes_passes(tmp_path: Path) -> None:
    path = _good_only(tmp_path)
    with duckdb.connect(str(path)) as con:
        con.execute("update raw_salesforce.account set is_deleted = true where id in "
                    "(select id from raw_salesforce.account order by id limit 50)")  # fmt: skip
    report = run_contracts(path, "r2", detected_at=RUN_AT)
    assert report.passed, report.failures
    assert report.tables["Account"].live_rows == 950


def test_small_drop_within_one_percent_passes(tmp_path: Path) -> None:
    path = _good_only(tmp_path)
    with duckdb.connect(str(path)) as con:
        con.execute("delete from raw_salesforce.account where id in "
                    "(select id from raw_salesforce.account order by id limit 10)")  # fmt: skip
    assert run_contracts(path, "r2", detected_at=RUN_AT).passed


def test_frozen_column_removed_or_retyped_blocks(tmp_path: Path) -> None:
    path = _good_only(tmp_path)
    with duckdb.connect(str(path)) as con:
        con.execute("alter table raw_salesforce.account drop column book_status_c")
        con.execute("alter table raw_salesforce.contact alter email type bigint using null")
    report = run_contracts(path, "r2", detected_at=RUN_AT)
    assert not report.passed
    text = " | ".join(report.failures)
    assert "account" in text and "book_status_c" in text
    assert "contact: column email has type BIGINT, contract says VARCHAR" in text


def test_missing_table_blocks(tmp_path: Path) -> None:
    path = _good_only(tmp_path)
    with duckdb.connect(str(path)) as con:
        con.execute("drop table raw_salesforce.opportunity")
    report = run_contracts(path, "r2", detected_at=RUN_AT)
    assert "opportunity: table raw_salesforce.opportunity is missing" in report.failures


def test_rules_follow_the_schema_picklists() -> None:
    for name, rules in row_rules().items():
        names = {r.name for r in rules}
        assert "id.well_formed" in names
        for f in OBJECTS[name].fields:
            if (
                f.type == "picklist"
                and f.picklist
                and any(r.column == _snake(f.name) for r in rules)
            ):
                assert f"{_snake(f.name)}.picklist" in names


def _snake(name: str) -> str:
    from ingest.fields import snake

    return snake(name)


def _no_gx(monkeypatch: pytest.MonkeyPatch) -> None:
    from contracts import gx_suites

    def fail() -> None:
        raise AssertionError("GX was needed for unchanged raw data")

    monkeypatch.setattr(gx_suites, "validator", fail)


def _quarantined_ids(path: Path) -> set[tuple[str, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return set(con.execute("select object, record_id from ops.quarantined_ids").fetchall())


def test_unchanged_raw_carries_the_previous_results_forward_without_gx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.duckdb"
    good = build_good_world(path, n_accounts=300, n_contacts=50)
    bad = _bad_rows(good.users, good.accounts, 30)
    with duckdb.connect(str(path)) as con:
        insert_rows(con, "Account", [{k: v for k, v in r.items() if k != "_rule"}
                                     for r in bad["Account"]])  # fmt: skip
    first = run_contracts(path, "r1", detected_at=RUN_AT)
    assert first.passed and not first.carried_forward
    before = _quarantined_ids(path)
    assert first.quarantined["Account"] == len(bad["Account"])
    assert len(before) == sum(1 for r in bad["Account"] if r["Id"])  # null ids: no record id
    _no_gx(monkeypatch)
    second = run_contracts(path, "r2", detected_at=RUN_AT)
    assert second.carried_forward and second.passed
    assert second.quarantined == first.quarantined
    assert second.quarantined_by_rule == first.quarantined_by_rule
    assert {n: t.live_rows for n, t in second.tables.items()} == {
        n: t.live_rows for n, t in first.tables.items()
    }
    assert _quarantined_ids(path) == before  # the latest run (r2) excludes the same rows


def test_any_change_or_a_failed_run_means_a_full_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import contracts.engine as engine

    path = tmp_path / "w.duckdb"
    good = build_good_world(path, n_accounts=300, n_contacts=50)
    assert run_contracts(path, "r1", detected_at=RUN_AT).passed
    # one new bad row, same load id as every other row: the row count tells
    bad = _bad_rows(good.users, good.accounts, 11)["Account"][-1]
    with duckdb.connect(str(path)) as con:
        insert_rows(con, "Account", [{k: v for k, v in bad.items() if k != "_rule"}])
    second = run_contracts(path, "r2", detected_at=RUN_AT)
    assert not second.carried_forward
    assert second.quarantined_by_rule == {f"Account.{bad['_rule']}": 1}
    # same counts, but a newer load replaced a row: the newest load id tells
    with duckdb.connect(str(path)) as con:
        con.execute("update raw_salesforce.contact set _dlt_load_id = '1800000000.1', "
                    "email = 'not-an-email' where id = (select min(id) from "
                    "raw_salesforce.contact)")  # fmt: skip
    third = run_contracts(path, "r3", detected_at=RUN_AT)
    assert not third.carried_forward and third.quarantined["Contact"] == 1
    # changed rules: nothing carried forward either
    monkeypatch.setattr(engine, "RULES_VERSION", "changed")
    assert not run_contracts(path, "r4", detected_at=RUN_AT).carried_forward
    assert run_contracts(path, "r5", detected_at=RUN_AT).carried_forward
    # a blocked run is never carried forward: unchanged raw is checked (and blocks) again
    with duckdb.connect(str(path)) as con:
        con.execute("alter table raw_salesforce.user drop column book_role_c")
    assert not run_contracts(path, "r6", detected_at=RUN_AT).passed
    again = run_contracts(path, "r7", detected_at=RUN_AT)
    assert not again.carried_forward and not again.passed
    assert "user: column book_role_c is missing from raw_salesforce.user" in again.failures


def _quarantine(path: Path, run_id: str) -> set[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return set(
            con.execute(
                "select object, record_id, rule, value, dlt_id from ops.quarantine "
                "where run_id = ?",
                [run_id],
            ).fetchall()
        )


def test_a_new_load_is_checked_incrementally_with_a_full_checks_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    import contracts.engine as engine

    path = tmp_path / "w.duckdb"
    good = build_good_world(path, n_accounts=300, n_contacts=50)
    bad = _bad_rows(good.users, good.accounts, 31)
    rows = [{k: v for k, v in r.items() if k != "_rule"} for r in bad["Account"]]
    with duckdb.connect(str(path)) as con:
        insert_rows(con, "Account", rows[:-1])
    assert run_contracts(path, "r1", detected_at=RUN_AT).passed
    with duckdb.connect(str(path)) as con:  # one more load: r2 sees two loads, checks this one
        extra = {"Id": make_id("001", 990_000), "IsDeleted": False, "CreatedDate": RUN_AT,
                 "LastModifiedDate": RUN_AT, "SystemModstamp": RUN_AT,
                 "OwnerId": good.users[0], "Name": "Extra", "Type": "Prospect"}  # fmt: skip
        insert_rows(con, "Account", [extra], load_id="1750000000.1")
    assert run_contracts(path, "r2", detected_at=RUN_AT).passed
    dangling = next(r for r in bad["Account"] if r["_rule"] == "owner_id.references_user")
    fixed = next(r for r in bad["Account"] if r["_rule"] == "name.not_null")
    later = "1800000000.1"
    with duckdb.connect(str(path)) as con:
        # the missing owner arrives in a later load: its accounts become valid
        owner = {"Id": dangling["OwnerId"], "IsDeleted": False, "CreatedDate": RUN_AT,
                 "LastModifiedDate": RUN_AT, "SystemModstamp": RUN_AT,
                 "Username": "late@books.local", "Name": "Late", "IsActive": True}  # fmt: skip
        insert_rows(con, "User", [owner], load_id=later)
        # a merge replaces a good contact by a bad version, and a bad account by a fixed one
        con.execute(
            "update raw_salesforce.contact set email = 'not-an-email', _dlt_load_id = ? "
            "where id = (select min(id) from raw_salesforce.contact)",
            [later],
        )
        con.execute(
            "update raw_salesforce.account set name = 'Fixed', _dlt_load_id = ? where id = ?",
            [later, fixed["Id"]],
        )
        insert_rows(con, "Account", rows[-1:], load_id=later)  # a new bad account
    with caplog.at_level(logging.INFO, logger="contracts.engine"):
        second = run_contracts(path, "r3", detected_at=RUN_AT)
    assert "latest run's and its quarantined rows only: Account, Contact, User" in caplog.text
    monkeypatch.setattr(engine, "_incremental_since", lambda *args: None)  # a full check
    monkeypatch.setattr(engine, "_unchanged_since", lambda *args: None)
    full = run_contracts(path, "r4", detected_at=RUN_AT)
    assert second.passed and full.passed and not second.carried_forward
    assert _quarantine(path, "r3") == _quarantine(path, "r4")
    assert second.quarantined_by_rule == full.quarantined_by_rule
    ids = {record_id for _, record_id, *_ in _quarantine(path, "r3")}
    assert dangling["Id"] not in ids and fixed["Id"] not in ids
    assert bad["Account"][-1]["Id"] in ids
    assert second.quarantined["Contact"] == 1
