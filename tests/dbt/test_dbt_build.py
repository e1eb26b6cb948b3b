"""dbt build of the staging and intermediate layers on a generated world, checked independently."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.dbt.conftest import AS_OF, OWN_LAYERS, BuiltWorld
from tests.dbt.dbt_helpers import failures, run_dbt

pytestmark = pytest.mark.slow

STATES = {"ready", "resting", "review", "retired", "working", "stale", "converted", "excluded"}


def _rows(warehouse: Path, sql: str) -> list[tuple]:
    # same (read-write) config as the connection dbt-duckdb keeps open in this process
    with duckdb.connect(str(warehouse)) as con:
        return con.execute(sql).fetchall()


def _one(warehouse: Path, sql: str):
    return _rows(warehouse, sql)[0][0]


def test_dbt_build_passes_on_generated_world(built_world: BuiltWorld) -> None:
    assert built_world.build_failures == []


def test_every_live_account_has_exactly_one_state(built_world: BuiltWorld) -> None:
    wh = built_world.warehouse
    live_raw = _one(
        wh,
        """
        select count(*) from (
            select id, is_deleted, row_number() over (
                partition by id order by system_modstamp desc, _dlt_load_id desc) as rn
            from raw_salesforce.account
        ) where rn = 1 and not is_deleted
        """,
    )
    classified = _rows(
        wh, "select count(*), count(distinct account_id) from intermediate.int_accounts_classified"
    )[0]
    assert classified == (live_raw, live_raw)
    states = {
        r[0] for r in _rows(wh, "select distinct state from intermediate.int_accounts_classified")
    }
    assert states <= STATES
    # a generated world exercises the main lifecycle branches
    assert {"ready", "working", "stale", "converted"} <= states


def test_working_and_stale_agree_with_raw_activities(built_world: BuiltWorld) -> None:
    """Re-derive 'owner touched within the window' from raw tasks/events, independently."""
    wh = built_world.warehouse
    policy = built_world.dbt_vars["policy"]
    window = policy["lifecycle"]["working_window_days"]
    types = ", ".join(f"'{t}'" for t in policy["meaningful_activity"]["types"])
    excluded = ", ".join(f"'{s}'" for s in policy["meaningful_activity"]["excluded_sources"])
    touched = f"""
        with acts as (
            select coalesce(account_id, what_id) as account_id, owner_id,
                   coalesce(activity_date, cast(created_date as date)) as d, type, direction_c,
                   is_automated_c, source_c, status
            from raw_salesforce.task where not is_deleted
            union all
            select coalesce(account_id, what_id), owner_id,
                   coalesce(activity_date, cast(created_date as date)), type, direction_c,
                   is_automated_c, source_c, 'Completed'
            from raw_salesforce.event where not is_deleted
        )
        select distinct acts.account_id
        from acts join raw_salesforce.account a on a.id = acts.account_id and not a.is_deleted
        where acts.owner_id = a.owner_id
          and acts.type in ({types})
          and coalesce(acts.status, 'Completed') <> 'Open'
          and acts.d between date '{AS_OF}' - {window} and date '{AS_OF}'
          and (acts.direction_c = 'Inbound'
               or (coalesce(acts.source_c, '') not in ({excluded})
                   and not coalesce(acts.is_automated_c, false)
                   and coalesce(acts.source_c, '') <> 'Sequence'))
    """
    independent = {r[0] for r in _rows(wh, touched)}
    by_reason = _rows(
        wh,
        "select account_id, state_reason from intermediate.int_accounts_classified "
        "where state in ('working', 'stale')",
    )
    touched_ids = {a for a, reason in by_reason if reason == "touched_within_window"}
    stale_ids = {a for a, reason in by_reason if reason == "no_touch_in_window"}
    assert touched_ids, "the generated world should have worked accounts"
    assert stale_ids, "the generated world should have stale accounts"
    # engagement-file touches may add to the CRM's, never contradict them
    assert touched_ids >= (independent & (touched_ids | stale_ids))
    assert not (stale_ids & independent)


def test_dirty_firmographics_and_cycles_are_flagged(built_world: BuiltWorld) -> None:
    wh = built_world.warehouse
    missing_employees = _one(
        wh, "select count(*) from raw_salesforce.account where number_of_employees is null"
    )
    flagged_missing = _one(
        wh,
        "select count(*) from intermediate.int_accounts_fit_scored "
        "where fit_data_quality_flags like '%missing_employee_count%' and fit_confidence < 1",
    )
    assert missing_employees > 0 and flagged_missing == missing_employees
    cycles_raw = _one(
        wh,
        "select count(*) from raw_salesforce.account a join raw_salesforce.account b "
        "on a.parent_id = b.id and b.parent_id = a.id",
    )
    cycles_flagged = _one(
        wh,
        "select count(*) from intermediate.int_accounts_hierarchy_resolved "
        "where is_in_hierarchy_cycle",
    )
    assert cycles_raw > 0 and cycles_flagged == cycles_raw


def test_lead_matching_reproduces_generator_ground_truth(built_world: BuiltWorld) -> None:
    """The generator knows which leads belong to one account, to several, or to none."""
    wh = built_world.warehouse
    truth = built_world.summary.leads_by_category
    statuses = dict(
        _rows(wh, "select match_status, count(*) from intermediate.int_leads_matched group by 1")
    )
    assert statuses == {
        "matched": truth["domain"] + truth["name_only"],
        "ambiguous": truth["ambiguous"],
        "unmatched": truth["unmatched"] + truth["free_mail_unmatched"],
    }
    free_mail_matched_by_domain = _one(
        wh,
        "select count(*) from intermediate.int_leads_matched "
        "where is_free_mail_domain and match_method in ('domain', 'subdomain')",
    )
    assert free_mail_matched_by_domain == 0


def test_engagement_file_touches_count(built_world: BuiltWorld) -> None:
    """The export's lower-case types (`call`, `email`) are compared as the policy's `Call`,
    `Email`: every manual engagement row of a counted type on a known account is meaningful."""
    wh = built_world.warehouse
    types = ", ".join(
        f"'{t.lower()}'" for t in built_world.dbt_vars["policy"]["meaningful_activity"]["types"]
    )
    raw_types = {
        r[0]
        for r in _rows(wh, "select distinct activity_type from raw_files.engagement_activities")
    }
    assert {"call", "email"} <= raw_types, "the export writes lower-case types"
    by_type = dict(
        _rows(
            wh,
            "select lower(raw.activity_type), count(*) "
            "from raw_files.engagement_activities as raw "
            "join intermediate.int_activities_classified as classified "
            "  on classified.activity_id = 'file:' || raw.activity_id "
            "where classified.is_meaningful group by 1",
        )
    )
    assert by_type.get("call", 0) > 0 and by_type.get("email", 0) > 0
    wrongly_rejected = _one(
        wh,
        "select count(*) from raw_files.engagement_activities as raw "
        "join intermediate.int_activities_classified as classified "
        "  on classified.activity_id = 'file:' || raw.activity_id "
        f"where lower(trim(raw.activity_type)) in ({types}) "
        "and classified.not_meaningful_reason = 'type_not_counted'",
    )
    assert wrongly_rejected == 0


def test_reps_capacity_has_two_slot_rows_per_book_rep(built_world: BuiltWorld) -> None:
    wh = built_world.warehouse
    book_roles = [
        k
        for k, v in built_world.dbt_vars["policy"]["books"].items()
        if isinstance(v, dict) and "slots" in v
    ]
    roles = ", ".join(f"'{r}'" for r in book_roles)
    reps = _one(wh, f"select count(*) from raw_salesforce.user where book_role_c in ({roles})")
    rows = _rows(
        wh,
        "select slot_kind, count(*), sum(case when open_slots < 0 then 1 else 0 end) "
        "from intermediate.int_reps_capacity group by 1 order by 1",
    )
    assert rows == [("fit", reps, 0), ("intent", reps, 0)]


def test_deleted_records_are_counted_not_dropped(built_world: BuiltWorld, tmp_path: Path) -> None:
    wh = tmp_path / built_world.warehouse.name  # same file name: views name their catalog
    shutil.copy(built_world.warehouse, wh)
    with duckdb.connect(str(wh)) as con:
        victim = con.execute("select min(id) from raw_salesforce.account").fetchone()[0]
        con.execute(
            """
            insert into raw_salesforce.account
            select * replace (true as is_deleted,
                              system_modstamp + interval 1 hour as system_modstamp,
                              '9999999999.0' as _dlt_load_id)
            from raw_salesforce.account where id = ?
            """,
            [victim],
        )
    result = run_dbt(
        [
            "build",
            "--select",
            "stg_salesforce__accounts",
            "stg_salesforce__deleted_records",
            "--indirect-selection",
            "cautious",
        ],
        wh,
        built_world.dbt_vars,
        tmp_path,
    )
    assert failures(result) == []
    assert _rows(
        wh, "select object_name, record_id from staging.stg_salesforce__deleted_records"
    ) == [("Account", victim)]
    assert (
        _one(
            wh,
            f"select count(*) from staging.stg_salesforce__accounts where account_id = '{victim}'",
        )
        == 0
    )


@pytest.mark.parametrize(
    ("rule", "expected_in_sql"),
    [
        (
            {"name": "evil", "field": "Industry", "op": "=", "value": "x'); drop table t; --"},
            "(industry = 'x''); drop table t; --')",
        ),
        (
            {"name": "evil_list", "field": "BillingCountry", "op": "in", "value": ["a'b", "c"]},
            "(billing_country in ('a''b', 'c'))",
        ),
    ],
)
def test_hostile_policy_values_become_quoted_literals(
    built_world: BuiltWorld, tmp_path: Path, rule: dict, expected_in_sql: str
) -> None:
    dbt_vars = _with_fit_rules(built_world.dbt_vars, [rule])
    result = run_dbt(
        ["compile", "--select", "int_account_fit_components"],
        built_world.warehouse,
        dbt_vars,
        tmp_path,
    )
    assert failures(result) == []
    compiled = next((tmp_path / "target" / "compiled").rglob("int_account_fit_components.sql"))
    assert expected_in_sql in compiled.read_text()


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (
            {"name": "bad_op", "field": "Industry", "op": "; drop table t", "value": "x"},
            "not allowed",
        ),
        (
            {"name": "bad_field", "field": "1=1 or Industry", "op": "=", "value": "x"},
            "unknown Account field",
        ),
        (
            {
                "name": "bad_points",
                "field": "Industry",
                "op": "=",
                "value": "x",
                "points": "1; drop",
            },
            "expected a number",
        ),
    ],
)
def test_hostile_policy_structure_fails_compilation(
    built_world: BuiltWorld, tmp_path: Path, rule: dict, message: str
) -> None:
    dbt_vars = _with_fit_rules(built_world.dbt_vars, [{"points": 10, **rule}])
    result = run_dbt(
        ["compile", "--select", "int_account_fit_components"],
        built_world.warehouse,
        dbt_vars,
        tmp_path,
    )
    problems = failures(result)
    assert problems and message in " ".join(problems)


def _with_fit_rules(dbt_vars: dict, rules: list[dict]) -> dict:
    policy = dict(dbt_vars["policy"])
    policy["fit"] = {
        **policy["fit"],
        "source": "rules",
        "rules": [{"points": 10, **r} for r in rules],
    }
    return {**dbt_vars, "policy": policy}


def test_docs_generate_works(built_world: BuiltWorld, tmp_path: Path) -> None:
    result = run_dbt(
        ["docs", "generate", "--select", *OWN_LAYERS],
        built_world.warehouse,
        built_world.dbt_vars,
        tmp_path,
    )
    assert result.success, failures(result)
    assert (tmp_path / "target" / "catalog.json").exists()
