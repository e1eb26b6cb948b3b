"""After a kill and a re-run that decides differently, the explanations and the outcome marts
tell the story of the decisions that stand, not of the killed attempt.

Launch day is killed before its first CRM write; before the re-run a rep who was to receive
accounts leaves (IsActive = false), so the re-run of the same date gives those accounts to
others or keeps them in the pool, and the killed attempt's gifts to the leaver are superseded.
Afterwards the checks of the crash test hold: the decision record matches the CRM, every
account shown chosen in `decisions.run_candidates` has the applied decision that gave it to
that rep (and the other way round), each rep's book after the run in
`decisions.run_rep_capacity` is the CRM's, and the outcome marts count only applied decisions.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import duckdb
import pytest

from local_crm.db import CrmStore
from tests.reverse_etl.test_crash_record import (
    AS_OF,
    Killed,
    _at,
    _cycle,
    _killer,
    check_record,
    home,  # noqa: F401 - the world fixture
)

pytestmark = [pytest.mark.slow]


def _leaver(warehouse: Any) -> str:
    """The rep the killed attempt gave the most accounts."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        gifts = Counter(
            rep
            for (rep,) in con.execute(
                "select to_owner_id from decisions.book_decisions "
                "where decision_kind in ('distribute', 'signal_route')"
            ).fetchall()
        )
    assert gifts, "the killed attempt gave no accounts"
    return gifts.most_common(1)[0][0]


def test_explanations_follow_the_rerun_that_decided_differently(
    home: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    paths = home
    store = CrmStore(paths.crm_db)
    with monkeypatch.context() as patch:
        rng = random.Random(2)  # its first draw picks a writer event, not a ledger commit
        where = _killer(patch, rng, [("collection_before_call", 1)])
        _at(store, AS_OF, 0)
        try:
            killed = not _cycle(paths, AS_OF).success
        except Killed:
            killed = True
    assert killed and where.split() == ["collection_before_call", "#" + "1"], where
    leaver = _leaver(paths.warehouse)
    _at(store, AS_OF, 5)
    store.update("User", [{"Id": leaver, "IsActive": False}])
    _at(store, AS_OF, 10)
    again = _cycle(paths, AS_OF)
    assert again.success, again.render()
    store.close()
    outcomes = check_record(paths, f"re-run of {AS_OF} after {leaver} left")
    assert outcomes["superseded"] > 0, outcomes
