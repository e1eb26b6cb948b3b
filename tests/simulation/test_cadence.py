"""Which scheduled runs a simulated day gets, from the policy's cron strings."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path

from policy import load_policy
from simulation.cadence import fire_times
from simulation.loop import _scheduled

MONDAY = date(2025, 6, 2)


def test_the_default_policy_retrieves_then_distributes_on_mondays_only() -> None:
    policy = load_policy(Path("books.yml"))
    assert _scheduled(policy, MONDAY) == [(time(5, 0), "retrieval"), (time(6, 0), "distribution")]
    for offset in range(1, 7):
        assert _scheduled(policy, date(2025, 6, 2 + offset)) == []


def test_cron_fields() -> None:
    assert fire_times("30 4 * * *", MONDAY) == [time(4, 30)]
    assert fire_times("0 6 * * MON-FRI", date(2025, 6, 7)) == []  # a Saturday
    assert fire_times("0 6 * * 0", date(2025, 6, 8)) == [time(6, 0)]  # Sunday as 0 ...
    assert fire_times("0 6 * * 7", date(2025, 6, 8)) == [time(6, 0)]  # ... and as 7
    assert fire_times("0 */12 * * *", MONDAY) == [time(0, 0), time(12, 0)]
    # Day of month and day of week both restricted: either one is enough (cron's rule).
    assert fire_times("0 6 15 * 1", MONDAY) == [time(6, 0)]
    assert fire_times("0 6 15 * 2", MONDAY) == []
    assert fire_times("0 6 1 JAN *", MONDAY) == []
