"""The decision record matches the CRM after a crash: the real cycle is killed at random points
of its write-back, then run again for the same date and for the next date.

The kill is an exception raised inside the writer (at a writer event, or at the n-th ledger
commit), which stops the cycle wherever it is, like a kill: every ledger step is its own
committed transaction, so what the process leaves is the same. Afterwards, from the user's
side (`decisions.book_decision_outcomes` against the CRM's AccountHistory):

- every owner change the write-back made has exactly one applied decision that explains it
  (same account, old and new owner, date), and every applied owner-moving decision has exactly
  one such change (none is marked applied that did not reach the CRM);
- the latest applied decision of each account and lead is what the CRM holds;
- once a run has finished, none of its decisions is left pending or held by a guard (every run
  here is overridden);
- the explanations tell the story of the decisions that stand: an account is shown chosen for a
  rep in a run (`decisions.run_candidates`) exactly when that run's applied decision gave it to
  that rep, and each rep's book after the latest run (`decisions.run_rep_capacity`) is the book
  the CRM holds;
- the marts count only decisions that stand: each distribution batch
  (`marts.distribution_cohorts`) has as many accounts as its run's applied distributions, and no
  owner change dynamic-books made is flagged as made outside the rules (`marts.hoarding_flags`).
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest
import yaml

import reverse_etl.apply as apply_module
from local_crm.db import CrmStore
from local_crm.generator import generate_world
from orchestration.runner import run_cycle
from policy import resolve_paths
from reverse_etl import ledger
from tests.homes import home_env

pytestmark = [pytest.mark.slow]

AS_OF = date(2025, 6, 2)
ACCOUNTS = 300
REPS = 4
SEED = 23
INTEGRATION = "integration@books.local"
# Kill points (writer event, n-th time), one list per kill of that date: the seeded random
# generator picks one of each list (or, sometimes, the n-th ledger commit). Launch day writes
# ~100 Account changes, one Collections batch; day 16 retrieves most books (~250 changes, two
# batches), and a kill between them leaves the CRM half written, so the re-run decides again on
# other pool loads; that re-run is killed too, before or after its first batch.
KILLS = {
    0: [[("collection_before_call", 1), ("collection_after_ack", 1), ("collection_after_ack", 2)]],
    16: [
        [("collection_after_ack", 1), ("collection_before_call", 2)],
        [("collection_before_call", 1), ("collection_after_ack", 1)],
    ],
}


class Killed(BaseException):
    """Stands for a kill: not an Exception, so no handler in the writer or Dagster absorbs it."""


def _policy(source: Path, target: Path) -> Path:
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["lifecycle"]["rest_days"]["retrieved"] = 14
    data["lifecycle"]["working_window_days"] = 15
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("crash_record")
    policy = _policy(resolve_paths({}).policy, root / "books.yml")
    paths = resolve_paths({**home_env(root), "BOOKS_POLICY": str(policy)})
    paths.landing.mkdir(parents=True)
    generate_world(paths.crm_db, accounts=ACCOUNTS, reps=REPS, seed=SEED, as_of=AS_OF,
                   landing_dir=paths.landing, policy_path=policy)  # fmt: skip
    yield paths


def _at(store: CrmStore, day: date, minute: int) -> None:
    """The CRM clock on `day`, a few minutes later per run (its stamps always advance)."""
    store.clock.set(dt.datetime.combine(day, dt.time(6, minute), tzinfo=dt.UTC))


def _cycle(paths: Any, day: date) -> Any:
    """One cycle; guards overridden: nobody works the accounts here, so books go stale whole."""
    return run_cycle(day, override_guard=True, paths=paths,
                     instance=dg.DagsterInstance.ephemeral())  # fmt: skip


def _killer(
    monkeypatch: pytest.MonkeyPatch, rng: random.Random, events: list[tuple[str, int]]
) -> str:
    """Arm one kill at a random point of the next write-back; returns where."""
    if rng.random() < 0.3:
        nth = rng.randint(2, 6)
        original = ledger.transition
        calls = {"n": 0}

        def transition(*args: Any, **kwargs: Any) -> None:
            calls["n"] += 1
            if calls["n"] == nth:
                raise Killed(f"ledger commit {nth}")
            original(*args, **kwargs)

        monkeypatch.setattr(ledger, "transition", transition)
        return f"ledger commit {nth}"
    event, nth = rng.choice(events)
    init = apply_module._Writer.__init__

    def armed_init(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        seen: Counter[str] = Counter()

        def on_event(name: str) -> None:
            seen[name] += 1
            if name == event and seen[name] == nth:
                raise Killed(f"{event} #{nth}")

        self.on_event = on_event

    monkeypatch.setattr(apply_module._Writer, "__init__", armed_init)
    return f"{event} #{nth}"


def _owner_changes(crm_db: Path) -> Counter[tuple[str, str, str, str]]:
    """(account, old owner, new owner, date) of every owner change the write-back made."""
    with sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True) as con:
        actor = con.execute('SELECT "Id" FROM "User" WHERE "Username" = ?',
                            (INTEGRATION,)).fetchone()[0]  # fmt: skip
        rows = con.execute(
            'SELECT "AccountId", "OldValue", "NewValue", "CreatedDate" FROM "AccountHistory" '
            'WHERE "Field" = \'OwnerId\' AND "CreatedById" = ?',
            (actor,),
        ).fetchall()
    return Counter((a, o, n, c[:10]) for a, o, n, c in rows)


def _crm_owners(crm_db: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True) as con:
        return dict(con.execute('SELECT "Id", "OwnerId" FROM "Account"').fetchall()) | dict(
            con.execute('SELECT "Id", "OwnerId" FROM "Lead"').fetchall()
        )


def _decisions(warehouse: Path) -> list[dict[str, Any]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        cur = con.execute(
            "select run_id, as_of_date, account_id, lead_id, decision_kind, from_owner_id, "
            "to_owner_id, outcome, outcome_code from decisions.book_decision_outcomes"
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _crm_books(crm_db: Path) -> Counter[str]:
    """Each owner's book in the CRM: accounts it owns that are working or stale."""
    with sqlite3.connect(f"file:{crm_db}?mode=ro", uri=True) as con:
        rows = con.execute(
            'SELECT "OwnerId" FROM "Account" WHERE "Book_Status__c" IN (\'working\', \'stale\')'
        ).fetchall()
    return Counter(owner for (owner,) in rows)


def _query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def check_explanations(paths: Any, decisions: list[dict[str, Any]], where: str) -> None:
    """run_candidates shows an account chosen for a rep exactly when an applied decision of
    that run gave it to that rep; run_rep_capacity's book after the latest run is the CRM's."""
    given = {
        (d["run_id"], d["account_id"], d["to_owner_id"])
        for d in decisions
        if d["outcome"] == "applied" and d["decision_kind"] in ("distribute", "signal_route")
    }
    chosen = set(
        _query(
            paths.warehouse,
            "select run_id, account_id, to_owner_id from decisions.run_candidates where is_chosen",
        )
    )
    assert chosen == given, (
        f"{where}: candidates shown chosen without an applied decision: "
        f"{sorted(chosen - given)[:5]}; applied gifts not shown chosen: {sorted(given - chosen)[:5]}"
    )
    books = _crm_books(paths.crm_db)
    latest = _query(
        paths.warehouse,
        "select rep_id, book_after from decisions.run_rep_capacity "
        "where as_of_date = (select max(as_of_date) from decisions.run_rep_capacity)",
    )
    wrong = {rep: (after, books.get(rep, 0)) for rep, after in latest if after != books.get(rep, 0)}
    assert not wrong, f"{where}: rep book after the run (explained, CRM): {wrong}"


def check_marts(paths: Any, decisions: list[dict[str, Any]], where: str) -> None:
    """The outcome marts count the decisions that stand, not those a re-run superseded."""
    given: Counter[str] = Counter()
    for run_id, _account in {
        (d["run_id"], d["account_id"])
        for d in decisions
        if d["outcome"] == "applied"
        and d["decision_kind"] in ("distribute", "signal_route", "swap")
    }:
        given[run_id] += 1
    batches = dict(
        _query(
            paths.warehouse,
            "select batch_run_id, accounts_distributed from marts.distribution_cohorts",
        )
    )
    assert batches == dict(given), f"{where}: distribution batches {batches} vs applied {given}"
    with sqlite3.connect(f"file:{paths.crm_db}?mode=ro", uri=True) as con:
        actor = con.execute('SELECT "Id" FROM "User" WHERE "Username" = ?',
                            (INTEGRATION,)).fetchone()[0]  # fmt: skip
    flagged = _query(
        paths.warehouse,
        "select detail from marts.hoarding_flags "
        f"where flag_kind = 'owner_change_outside_rules' and detail like '% by {actor}'",
    )
    assert not flagged, f"{where}: dynamic-books' own changes flagged: {flagged[:3]}"


def check_record(paths: Any, where: str) -> Counter[str]:
    """The three promises of the decision record; returns outcomes by count."""
    decisions = _decisions(paths.warehouse)
    applied = [d for d in decisions if d["outcome"] == "applied"]
    moves = Counter(
        (d["account_id"], d["from_owner_id"], d["to_owner_id"], d["as_of_date"].isoformat())
        for d in applied
        if d["lead_id"] is None and d["from_owner_id"] != d["to_owner_id"]
    )
    changes = _owner_changes(paths.crm_db)
    unexplained = {c: n for c, n in changes.items() if moves.get(c, 0) != n}
    assert not unexplained, f"{where}: owner changes without exactly one applied decision: " + str(
        list(unexplained.items())[:5]
    )
    not_in_crm = {m: n for m, n in moves.items() if changes.get(m, 0) != n}
    assert not not_in_crm, f"{where}: applied decisions the CRM never got: " + str(
        list(not_in_crm.items())[:5]
    )
    owners = _crm_owners(paths.crm_db)
    latest: dict[str, dict[str, Any]] = {}
    for d in sorted(applied, key=lambda d: (d["as_of_date"], d["run_id"])):
        record = d["lead_id"] or d["account_id"]
        if d["lead_id"] is not None or d["from_owner_id"] != d["to_owner_id"]:
            latest[record] = d
    wrong = {r: (d["to_owner_id"], owners.get(r)) for r, d in latest.items()
             if owners.get(r) != d["to_owner_id"]}  # fmt: skip
    assert not wrong, f"{where}: latest applied decision is not what the CRM holds: {wrong}"
    # Every run here is overridden, so once it has finished nothing waits: not pending, and
    # not held by a guard (a decision the re-run dropped must say superseded, not held).
    waiting = [
        d for d in decisions
        if d["outcome"] == "pending" or d["outcome_code"] in ("BOOK_SHARE_GUARD", "PLAN_BLOCKED")
    ]  # fmt: skip
    assert not waiting, f"{where}: {len(waiting)} decisions left waiting, e.g. {waiting[:3]}"
    check_explanations(paths, decisions, where)
    check_marts(paths, decisions, where)
    return Counter(d["outcome"] for d in decisions)


def test_the_decision_record_matches_the_crm_after_kills_and_reruns(
    home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = home
    store = CrmStore(paths.crm_db)
    rng = random.Random(SEED)
    kills = []
    for offset, kill_points in KILLS.items():
        day = AS_OF + timedelta(days=offset)
        for attempt, events in enumerate(kill_points):
            with monkeypatch.context() as patch:
                where = _killer(patch, rng, events)
                _at(store, day, attempt * 10)
                try:
                    killed = not _cycle(paths, day).success
                except Killed:
                    killed = True
            kills.append((day, where, killed))
        _at(store, day, len(kill_points) * 10)
        again = _cycle(paths, day)
        assert again.success, again.render()
        figures = ("applied", "fixed_by_retry", "still_failing", "conflicts", "held")
        assert all(f in again.write_back for f in figures), again.render()
        assert again.write_back["still_failing"] == 0, again.render()
        check_record(paths, f"re-run of {day} killed at {where}")
        nxt = day + timedelta(days=1)
        _at(store, nxt, 0)
        later = _cycle(paths, nxt)
        assert later.success, later.render()
        outcomes = check_record(paths, f"run of {nxt} after the kill on {day} at {where}")
    store.close()
    assert all(killed for _day, _where, killed in kills), kills
    assert outcomes["applied"] > 0, outcomes
    print(f"kills: {kills}; outcomes: {dict(outcomes)}")
