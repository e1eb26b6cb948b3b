"""Chaos mode's human edits are a person's changes in the CRM (not the write-back's)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, time, timedelta

from simulation.chaos import ChaosPlan, act, manager_api
from simulation.twin import copy_twin
from tests.simulation.conftest import START


def test_managers_move_accounts_within_a_segment_and_a_rep_leaves(small_twin, tmp_path):
    crm = copy_twin(small_twin, tmp_path / "chaos.sqlite")
    plan = ChaosPlan(manual_moves_per_week=60, leave_on_day=2)
    done = []
    with manager_api(crm) as api:
        for i in range(5):
            day = START + timedelta(days=i)
            api.store.clock.set(datetime.combine(day, time(12), tzinfo=UTC))
            done.append(act(api, plan, 7, START, day))
    assert sum(d.departures for d in done) == 1 and done[2].departures == 1
    con = sqlite3.connect(crm)
    users = {
        u: (role, seg, active)
        for u, role, seg, active in con.execute(
            'select "Id", "Book_Role__c", "Book_Segments__c", "IsActive" from "User"'
        )
    }
    moves = con.execute(
        'select "OldValue", "NewValue", "CreatedById", "CreatedDate" from "AccountHistory" '
        "where \"Field\" = 'OwnerId'"
    ).fetchall()
    con.close()
    assert len(moves) == sum(d.manual_moves for d in done) > 0
    left = START + timedelta(days=2)
    for old, new, by, when in moves:
        assert users[by][0] == "Manager"  # a person's change, not integration@books.local
        assert users[old][1] == users[new][1]  # within the segment
        if when[:10] >= left.isoformat():
            assert users[new][2]  # never to the rep who left, once gone
    assert sum(not active for role, _, active in users.values() if role in ("SDR", "BDR")) >= 1
