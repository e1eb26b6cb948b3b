"""`books explain` on the demo world tells each kind of account's story.

`books demo` (the same command a new user runs, on a small world) generates a world and runs
launch day; then `books explain` is run for four accounts picked from the published analytics
file: one the run distributed, one it retrieved, one it held in the pool for a reason, and one
it considered but never chose. Each story must name what happened and why, as a RevOps lead
reads it: the decision with its outcome, the owner it ended with, and for the last run that
considered it, the rep it went to or the reason it stayed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from orchestration.runner import analytics_path
from tests.homes import home_env

pytestmark = [pytest.mark.slow]

# The smallest demo world that still has all four kinds of account on launch day.
ACCOUNTS = 300
REPS = 4


def _books(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "books_cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"books {' '.join(args)}: {done.stdout[-2000:]}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("demo_explain")
    env = {**os.environ, **home_env(home)}
    _books(env, "demo", "--accounts", str(ACCOUNTS), "--reps", str(REPS))
    yield env


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    row = con.execute(sql).fetchone()
    assert row is not None, f"the demo world has no such account: {sql}"
    return row


def test_explain_tells_the_story_of_each_kind_of_account(demo: dict[str, str]) -> None:
    analytics = analytics_path(Path(demo["BOOKS_WAREHOUSE"]))
    with duckdb.connect(str(analytics), read_only=True) as con:
        distributed, rep = _one(
            con,
            "select account_id, to_owner_id from decisions.book_decision_outcomes "
            "where decision_kind = 'distribute' and outcome = 'applied' "
            "order by account_id limit 1",
        )
        retrieved, pool = _one(
            con,
            "select account_id, to_owner_id from decisions.book_decision_outcomes "
            "where decision_kind = 'retrieve' and outcome = 'applied' "
            "order by account_id limit 1",
        )
        # held for a reason other than ranking below the last pick (no_capacity if any)
        held, reason = _one(
            con,
            "select account_id, exclusion_reason from decisions.run_candidates "
            "where not is_chosen and exclusion_reason <> 'lower_rank' "
            "order by exclusion_reason <> 'no_capacity', account_id limit 1",
        )
        (never,) = _one(
            con,
            "select account_id from decisions.run_candidates where not is_chosen "
            "and account_id not in (select account_id from decisions.book_decisions) "
            "order by account_id limit 1",
        )

    # The owner line shows the account as the run read it; the decision lines say what the
    # run did with it and whether it reached the CRM.
    story = _books(demo, "explain", distributed)
    assert " distribute " in story and f"-> {rep} " in story, story
    assert "outcome applied" in story and f"chosen: distribute to {rep} " in story, story

    story = _books(demo, "explain", retrieved)
    assert " retrieve " in story and f"-> {pool} " in story and "-> resting)" in story, story
    assert "outcome applied" in story, story

    story = _books(demo, "explain", held)
    assert f"held in the pool: {reason}: " in story and ", pool)" in story, story

    story = _books(demo, "explain", never)
    assert "Decisions:\n  none" in story, story
    assert "held in the pool: " in story and ", pool)" in story, story
