"""SystemModstamp advances on every write, as in Salesforce, even when the CRM clock stands
still; once the clock moves past it, the stamp is the clock again."""

from __future__ import annotations

from datetime import timedelta

from local_crm.db import format_datetime, parse_datetime
from local_crm.server import LocalCrmServer

from .conftest import World


def _stamp(server: LocalCrmServer, account_id: str) -> str:
    return server.store.get("Account", account_id)["SystemModstamp"]


def test_every_write_advances_the_stamp_under_a_frozen_clock(
    server: LocalCrmServer, world: World
) -> None:
    store, a = server.store, world.accounts[0]
    stamps = [_stamp(server, a)]
    for status in ("working", "resting", "working"):
        assert store.update("Account", [{"Id": a, "Book_Status__c": status}])[0].success
        stamps.append(_stamp(server, a))
    assert store.delete("Account", [a])[0].success
    stamps.append(_stamp(server, a))
    assert stamps == sorted(set(stamps)), stamps  # strictly increasing
    # an untouched record keeps its stamp
    assert _stamp(server, world.accounts[1]) == stamps[0]

    later = parse_datetime(stamps[-1]) + timedelta(hours=1)
    store.clock.set(later)
    store.update("Account", [{"Id": world.accounts[1], "Book_Status__c": "working"}])
    assert _stamp(server, world.accounts[1]) == format_datetime(later)
