"""Lead routing reaches the CRM through `books_cycle`: the dbt sync model, the dry-run plan,
the write-back step and its per-object summary, on a small generated world."""

from __future__ import annotations

import sqlite3
from datetime import date

import dagster as dg
import duckdb
import pytest

from local_crm.generator import generate_world
from orchestration.runner import run_cycle
from policy import resolve_paths
from tests.homes import home_env

AS_OF = date(2025, 6, 2)

pytestmark = pytest.mark.slow


def _lead_plan(warehouse: str, run_id: str) -> list[tuple]:
    with duckdb.connect(warehouse, read_only=True) as con:
        return con.execute(
            "select record_id, before_json, after_json from ops.write_ledger "
            "where run_id = ? and sobject = 'Lead' and state <> 'superseded' order by record_id",
            [run_id],
        ).fetchall()


def _run_decisions(warehouse: str, run_id: str) -> list[tuple]:
    """This run's decisions (dec_run_decisions) and what the history recorded (book_decisions)."""
    with duckdb.connect(warehouse, read_only=True) as con:
        return [
            con.execute(
                f"select account_id, decision_kind, coalesce(lead_id, ''), to_owner_id "
                f"from decisions.{table} where run_id = ? order by 1, 2, 3",
                [run_id],
            ).fetchall()
            for table in ("dec_run_decisions", "book_decisions")
        ]


def _lead_routes(warehouse: str, run_id: str) -> dict[str, tuple[str, str]]:
    """This cycle's lead_route decisions (dec_lead_routes)."""
    with duckdb.connect(warehouse, read_only=True) as con:
        rows = con.execute(
            "select lead_id, from_owner_id, to_owner_id from decisions.dec_lead_routes "
            "where run_id = ?",
            [run_id],
        ).fetchall()
    return {lead: (before, after) for lead, before, after in rows}


def test_dry_run_shows_lead_changes_apply_writes_them_and_a_rerun_writes_none(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    home = tmp_path_factory.mktemp("leads")
    paths = resolve_paths(home_env(home))
    paths.landing.mkdir(parents=True)
    generate_world(
        paths.crm_db,
        accounts=1_500,
        reps=8,
        seed=7,
        as_of=AS_OF,
        landing_dir=paths.landing,
        policy_path=paths.policy,
    )
    warehouse = str(paths.warehouse)

    def cycle(dry_run: bool):  # noqa: ANN202
        summary = run_cycle(
            AS_OF,
            dry_run=dry_run,
            override_guard=True,
            paths=paths,
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert summary.success, summary.render()
        return summary

    dry = cycle(dry_run=True)
    routes = _lead_routes(warehouse, dry.run_id)
    assert routes, "the generated world routed no inbound lead; the test checks nothing"
    dry_plan = _lead_plan(warehouse, dry.run_id)
    # Every routed lead, and nothing else, is planned: OwnerId from the read to the decision.
    assert {r[0]: (r[1], r[2]) for r in dry_plan} == {
        lead: (f'{{"OwnerId":"{before}"}}', f'{{"OwnerId":"{after}"}}')
        for lead, (before, after) in routes.items()
    }
    assert dry.write_back["lead_planned_changes"] == len(routes)
    assert "lead_planned_changes" in dry.render()
    dry_decided, dry_recorded = _run_decisions(warehouse, dry.run_id)
    assert dry_decided and dry_recorded == []  # a dry run records no history

    # The real cycle after the dry run decides exactly what the dry run showed (the dry run
    # used up no rep's budget), records it once, and applies the plan it stores.
    applied = cycle(dry_run=False)
    assert applied.run_id == dry.run_id
    assert _run_decisions(warehouse, applied.run_id) == [dry_decided, dry_decided]
    routes = _lead_routes(warehouse, applied.run_id)
    assert routes
    assert applied.write_back["lead_planned_changes"] == len(routes)
    assert [r[0] for r in _lead_plan(warehouse, applied.run_id)] == sorted(routes)
    with duckdb.connect(warehouse, read_only=True) as con:
        outcomes = con.execute(
            "select outcome, count(*) from ops.sync_log where run_id = ? and sobject = 'Lead' "
            "group by 1",
            [applied.run_id],
        ).fetchall()
    assert dict(outcomes) == {"applied": len(routes)}
    with sqlite3.connect(paths.crm_db) as con:
        owners = dict(con.execute('SELECT "Id", "OwnerId" FROM "Lead"').fetchall())
    assert {lead: owners[lead] for lead in routes} == {
        lead: after for lead, (_before, after) in routes.items()
    }

    again = cycle(dry_run=False)
    assert _lead_routes(warehouse, again.run_id) == {}
    assert again.write_back["lead_planned_changes"] == 0
