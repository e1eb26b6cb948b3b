"""R12 on a generated world: coverage_audit's TAM, NBTAM and engaged-in-30-days counts equal an
independent query over the staging tables, written here from the policy's words, not the marts'
SQL. Also: every mart builds and passes its dbt tests, and each table carries the run's id."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pytest

from policy import load_policy
from tests.dbt.conftest import AS_OF
from tests.dbt.dbt_helpers import POLICY_FILE, run_dbt
from tests.marts.conftest import MartsWorld

pytestmark = pytest.mark.slow

PUBLIC_TABLES = [
    "accounts",
    "account_fit_components",
    "reps",
    "ownership_history",
    "coverage_audit",
    "coverage_ownership",
    "capacity_plan",
    "rep_kpis",
    "rep_activity_weekly",
    "book_balance",
    "return_reasons_daily",
    "distribution_cohorts",
    "hoarding_flags",
]


def _sql_list(values: list[str]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def _independent_counts(con: duckdb.DuckDBPyConnection, as_of: date) -> dict[str, int]:
    """TAM / NBTAM / engaged_30d straight from staging, following docs/domain.md and books.yml."""
    policy = load_policy(POLICY_FILE).model_dump()
    pool_users = [user.lower() for user in policy["crm"]["pool_users"]]
    book_roles = [
        role for role, book in policy["books"].items() if isinstance(book, dict) and "slots" in book
    ]
    meaningful = policy["meaningful_activity"]
    types = [kind.lower() for kind in meaningful["types"]]
    window_start = as_of - timedelta(days=30)  # inclusive: 30 days back is still 'in the last 30'
    inbound_counts = "direction = 'Inbound'" if meaningful["count_inbound_replies"] else "false"
    automated = "(is_automated or source = 'Sequence')" if meaningful["manual_only"] else "false"
    con.execute(f"""
        create or replace temp view t_accounts as
        select
            a.account_id,
            a.account_type = 'Customer' as is_customer,
            case
                when u.user_id is null then 'unknown'
                when u.book_role = 'Pool' or lower(u.username) in ({_sql_list(pool_users)})
                    or lower(u.email) in ({_sql_list(pool_users)}) then 'pool'
                when u.book_role in ({_sql_list(book_roles)}) and u.is_active then 'rep'
                else 'other'
            end as owner_class
        from staging.stg_salesforce__accounts a
        left join staging.stg_salesforce__users u on u.user_id = a.owner_id
    """)
    con.execute(f"""
        create or replace temp view t_touches as
        with crm as (
            select account_id, activity_type, direction, is_automated,
                   activity_source as source, activity_date, coalesce(task_status, '') = 'Open'
                   as is_open
            from staging.stg_salesforce__tasks
            union all
            select account_id, activity_type, direction, is_automated, activity_source,
                   activity_date, false
            from staging.stg_salesforce__events
        ),
        unique_domains as (
            select web_domain, min(account_id) as account_id
            from staging.stg_salesforce__accounts
            where web_domain is not null
            group by web_domain
            having count(*) = 1
        ),
        files as (
            select d.account_id, f.activity_type, f.direction, f.is_automated,
                   case when f.is_automated then 'Sequence' else 'Integration' end,
                   f.activity_date, false
            from staging.stg_files__engagement_activities f
            join unique_domains d on d.web_domain = f.web_domain
        )
        select distinct account_id
        from (select * from crm union all select * from files) x
        where account_id is not null
          and not is_open
          and activity_date between DATE '{window_start}' and DATE '{as_of}'
          and lower(activity_type) in ({_sql_list(types)})
          and (
              {inbound_counts}
              or (coalesce(direction, 'Outbound') in ({_sql_list(meaningful["directions"])})
                  and coalesce(source, '') not in ({_sql_list(meaningful["excluded_sources"])})
                  and not {automated})
          )
    """)
    tam, nbtam, engaged = con.execute("""
        select
            count(*),
            count(*) filter (where not coalesce(is_customer, false) and owner_class in ('pool', 'rep')),
            count(*) filter (where not coalesce(is_customer, false) and owner_class in ('pool', 'rep')
                             and account_id in (select account_id from t_touches))
        from t_accounts
    """).fetchone()
    return {"tam_accounts": tam, "nbtam_accounts": nbtam, "nbtam_engaged_30d": engaged}


def test_marts_build_and_pass_their_tests(marts_world: MartsWorld) -> None:
    assert marts_world.mart_failures == []


def test_coverage_counts_match_an_independent_query(marts_world: MartsWorld) -> None:
    with duckdb.connect(str(marts_world.world.warehouse)) as con:
        expected = _independent_counts(con, AS_OF)
        row = con.execute(
            "select tam_accounts, nbtam_accounts, nbtam_engaged_30d "
            "from marts.coverage_audit where segment_key = 'all'"
        ).fetchone()
        per_segment = con.execute(
            "select sum(tam_accounts), sum(nbtam_accounts), sum(nbtam_engaged_30d) "
            "from marts.coverage_audit where segment_key <> 'all'"
        ).fetchone()
    actual = dict(zip(expected, row, strict=True))
    assert (
        expected["nbtam_engaged_30d"] > 0 and expected["nbtam_accounts"] < expected["tam_accounts"]
    )
    assert actual == expected
    assert tuple(per_segment) == tuple(row), "segment rows must add up to the 'all' row"


def test_every_public_table_carries_the_run_id(marts_world: MartsWorld) -> None:
    run_id = marts_world.world.dbt_vars["run_id"]
    with duckdb.connect(str(marts_world.world.warehouse)) as con:
        for table in PUBLIC_TABLES:
            run_ids = con.execute(f"select distinct run_id from marts.{table}").fetchall()
            assert run_ids in ([(run_id,)], []), f"marts.{table} has run ids {run_ids}"


def test_ownership_history_appends_only_changes(marts_world: MartsWorld) -> None:
    """Runs last: it edits the classified accounts to fake a later day with one owner change."""
    world = marts_world.world

    def run_history(as_of: date) -> None:
        result = run_dbt(
            ["run", "--select", "ownership_history"],
            world.warehouse,
            {**world.dbt_vars, "as_of_date": as_of.isoformat(), "run_id": f"run-{as_of}"},
            world.work_dir,
        )
        assert result.success, result.exception

    def history() -> list[tuple]:
        with duckdb.connect(str(world.warehouse)) as con:
            return con.execute(
                "select account_id, as_of_date, owner_id, run_id from marts.ownership_history"
            ).fetchall()

    first = history()
    run_history(AS_OF)  # same day again: nothing new
    assert sorted(history()) == sorted(first)
    with duckdb.connect(str(world.warehouse)) as con:
        account_id, new_owner = con.execute(
            "select min(account_id), 'NEW-OWNER' from intermediate.int_accounts_classified"
        ).fetchone()
        con.execute(
            "update intermediate.int_accounts_classified set owner_id = ? where account_id = ?",
            [new_owner, account_id],
        )
    later = AS_OF + timedelta(days=7)
    run_history(later)
    added = sorted(set(history()) - set(first))
    assert added == [(account_id, later, new_owner, f"run-{later}")]
