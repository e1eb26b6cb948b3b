"""The replicated raw layer (benchmarks/replica.py): each copy is a world of its own.

The end-to-end check (each copy builds the same marts as the source) is in test_smoke.py, on
the smoke benchmark's warehouse; these are the rules of one copy, on a hand-made raw layer.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from benchmarks.replica import replicate

ACC = ["001Dy0000000001IAA", "001Dy0000000002IAA"]
USR = ["005Dy0000000001IAA", "005Dy0000000002IAA"]
TASKS = [f"00TDy00000000{n:02d}IAA" for n in range(10, 50)]


def _source(path: Path, *, bad_id: str | None = None) -> Path:
    con = duckdb.connect(str(path))
    con.execute("create schema raw_salesforce; create schema raw_files")
    con.execute(
        "create table raw_salesforce.user (id varchar, email varchar, username varchar, "
        "manager_id varchar, _dlt_id varchar)"
    )
    con.executemany(
        "insert into raw_salesforce.user values (?, ?, ?, ?, ?)",
        [(USR[0], "ann@books.local", "ann@books.local", None, "u0"),
         (USR[1], "bob@books.local", "bob@books.local", USR[0], "u1")],
    )  # fmt: skip
    con.execute(
        "create table raw_salesforce.account (id varchar, owner_id varchar, parent_id varchar, "
        "name varchar, website varchar, _dlt_id varchar)"
    )
    con.executemany(
        "insert into raw_salesforce.account values (?, ?, ?, ?, ?, ?)",
        [(bad_id or ACC[0], USR[1], None, "Acme Robotics Inc.", "https://WWW.Acme.com/about", "a0"),
         (ACC[1], USR[1], ACC[0], "N/A", "www.acme", "a1")],
    )  # fmt: skip
    con.execute(
        "create table raw_salesforce.task (id varchar, what_id varchar, owner_id varchar, "
        "_dlt_id varchar)"
    )
    con.executemany(
        "insert into raw_salesforce.task values (?, ?, ?, ?)",
        [(t, ACC[i % 2], USR[1], f"t{i}") for i, t in enumerate(TASKS)],
    )
    con.execute("create table raw_salesforce.lead (id varchar, email varchar, company varchar)")
    con.executemany(
        "insert into raw_salesforce.lead values (?, ?, ?)",
        [("00QDy0000000001MAA", "Bob@Mail.Acme.com ", "ACME"),
         ("00QDy0000000002MAA", "ann@gmail.com", None)],
    )  # fmt: skip
    con.execute(
        "create table raw_files.engagement_activities (activity_id varchar, "
        "account_domain varchar, contact_email varchar, rep_email varchar)"
    )
    con.execute(
        "insert into raw_files.engagement_activities values "
        "('eng-1', 'acme.com', 'zoe@acme.com', 'bob@books.local')"
    )
    con.close()
    return path


def _rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def replica(tmp_path: Path) -> Path:
    target = tmp_path / "replica.duckdb"
    replicate(_source(tmp_path / "source.duckdb"), target, copies=4, user_groups=2,
              task_share=2, progress=lambda _: None)  # fmt: skip
    return target


def test_ids_carry_the_copy_and_keep_their_checksum(replica: Path) -> None:
    ids = [r[0] for r in _rows(replica, "select id from raw_salesforce.account order by id")]
    assert ids == sorted(f"001Dy{k}00000000{n}IAA" for k in range(4) for n in (1, 2))
    # the parent of account 2 in copy 3 is account 1 of copy 3
    assert _rows(replica, "select parent_id from raw_salesforce.account where id = "
                          "'001Dy3000000002IAA'") == [("001Dy3000000001IAA",)]  # fmt: skip


def test_reps_are_copied_per_group_and_own_their_groups_accounts(replica: Path) -> None:
    users = _rows(replica, "select id, email, manager_id from raw_salesforce.user order by id")
    assert users == [
        ("005Dy0000000001IAA", "ann@books.local", None),
        ("005Dy0000000002IAA", "bob@books.local", "005Dy0000000001IAA"),
        ("005Dy1000000001IAA", "ann@books.local.u1", None),
        ("005Dy1000000002IAA", "bob@books.local.u1", "005Dy1000000001IAA"),
    ]
    owners = _rows(replica, "select substr(id, 6, 1), owner_id from raw_salesforce.account "
                            "group by all order by all")  # fmt: skip
    assert owners == [("0", USR[1]), ("1", USR[1]),
                      ("2", "005Dy1000000002IAA"), ("3", "005Dy1000000002IAA")]  # fmt: skip
    rep_emails = _rows(replica, "select distinct rep_email from raw_files.engagement_activities "
                                "order by 1")  # fmt: skip
    assert rep_emails == [("bob@books.local",), ("bob@books.local.u1",)]


def test_domains_and_names_stay_within_their_copy(replica: Path) -> None:
    accounts = _rows(replica, "select name, website from raw_salesforce.account "
                              "where substr(id, 6, 1) = '2' order by id")  # fmt: skip
    assert accounts == [
        ("Xk2Acme Robotics Inc.", "https://WWW.Acme.com.k2/about"),
        ("Xk2N/A", "www.acme"),  # 'www.acme' is not a domain: left as it is
    ]
    leads = _rows(replica, "select email, company from raw_salesforce.lead "
                           "where substr(id, 6, 1) = '1' order by id")  # fmt: skip
    assert leads == [
        ("Bob@Mail.Acme.com.k1 ", "Xk1ACME"),
        ("ann.k1@gmail.com", None),  # free mail keeps its domain; the tag goes on the name
    ]
    engagement = _rows(replica, "select activity_id, account_domain, contact_email "
                                "from raw_files.engagement_activities order by 1")  # fmt: skip
    assert engagement[0] == ("eng-1", "acme.com", "zoe@acme.com")
    assert engagement[3] == ("eng-1-k3", "acme.com.k3", "zoe@acme.com.k3")


def test_task_share_splits_the_tasks_between_copies(replica: Path) -> None:
    per_copy = _rows(replica, "select substr(id, 6, 1) as k, list(substr(id, 7) order by id) "
                              "from raw_salesforce.task group by k order by k")  # fmt: skip
    assert [k for k, _ in per_copy] == ["0", "1", "2", "3"]
    halves = [set(ids) for _, ids in per_copy]
    every = {t[6:] for t in TASKS}
    assert halves[0] | halves[1] == every and not halves[0] & halves[1]
    assert halves[0] == halves[2] and halves[1] == halves[3]
    assert 0 < len(halves[0]) < len(every)
    orphans = _rows(replica, "select count(*) from raw_salesforce.task t left join "
                             "raw_salesforce.account a on a.id = t.what_id where a.id is null")  # fmt: skip
    assert orphans == [(0,)]


def test_an_id_without_room_for_the_copy_number_is_refused(tmp_path: Path) -> None:
    source = _source(tmp_path / "source.duckdb", bad_id="001Dy1000000001IAA")
    target = tmp_path / "replica.duckdb"
    with pytest.raises(
        ValueError, match=r"raw_salesforce\.\"account\"\.id: id '001Dy1000000001IAA'"
    ):
        replicate(source, target, copies=2, user_groups=1, progress=lambda _: None)
    assert not target.exists()  # nothing half-built is left behind
