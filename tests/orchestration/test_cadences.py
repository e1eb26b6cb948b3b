"""R17 cadences: schedules and sensors evaluated with Dagster's build contexts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import yaml

from orchestration.cadences import ModstampCursor, advance, build_cadences, changed_rows
from orchestration.cycle import (
    TAG_AS_OF_DATE,
    TAG_MODE,
    TAG_RUN_ID,
    TAG_SIGNAL_IDS,
    PolicyResource,
)
from policy import load_policy

REPO = Path(__file__).resolve().parents[2]

_SINCE = re.compile(r"SystemModstamp >= (\S+?)\)")


class FakeCrm:
    """Answers the sensors' one query shape from an in-memory table (SOQL semantics of >=)."""

    def __init__(self, rows_by_object: dict[str, list[dict]]):
        self.rows_by_object = rows_by_object
        self.queries: list[str] = []
        self.opened = 0

    @contextmanager
    def open(self) -> Iterator[FakeCrm]:
        """The `crm` resource's one API: a connection for the block."""
        self.opened += 1
        yield self

    def query_all_pages(self, soql: str, include_deleted: bool = False):
        self.queries.append(soql)
        obj = soql.split(" FROM ")[1].split()[0]
        rows = self.rows_by_object.get(obj, [])
        match = _SINCE.search(soql)
        if match:
            rows = [r for r in rows if r["SystemModstamp"] >= match.group(1)]
        rows = sorted(rows, key=lambda r: (r["SystemModstamp"], r["Id"]))
        yield [dict(r) for r in rows]


def _stamp(day: int, second: int = 0) -> str:
    return f"2025-03-{day:02d}T10:00:{second:02d}.000+0000"


def _policy_file(tmp_path: Path, **enabled: bool) -> Path:
    data = yaml.safe_load((REPO / "books.yml").read_text())
    for name, on in enabled.items():
        data["cadences"][name]["enabled"] = on
    path = tmp_path / "books.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def _defs(policy_path: Path) -> tuple[dict, dict]:
    job = dg.define_asset_job("books_cycle")
    schedules, sensors = build_cadences(load_policy(policy_path), job)
    return {s.name: s for s in schedules}, {s.name: s for s in sensors}


def _eval_sensor(sensor, policy_path: Path, crm, cursor: str | None):
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={"policy": PolicyResource(path=str(policy_path)), "crm": crm},
    )
    return sensor(context)


def test_signal_sensor_initialises_then_routes_only_new_signals(tmp_path: Path) -> None:
    policy_path = _policy_file(tmp_path)
    _, sensors = _defs(policy_path)
    sensor = sensors["hot_signals_sensor"]
    crm = FakeCrm({"Signal__c": [{"Id": "a01A", "SystemModstamp": _stamp(1)}]})

    first = _eval_sensor(sensor, policy_path, crm, None)
    assert first.run_requests == []
    assert ModstampCursor.parse(first.cursor) == ModstampCursor(_stamp(1), ("a01A",))

    # Nothing new: skip, cursor unchanged.
    idle = _eval_sensor(sensor, policy_path, crm, first.cursor)
    assert isinstance(idle, dg.SkipReason)

    # Two new signals, one sharing the old modstamp (ties must not be lost or repeated).
    crm.rows_by_object["Signal__c"] += [
        {"Id": "a01B", "SystemModstamp": _stamp(1)},
        {"Id": "a01C", "SystemModstamp": _stamp(4, 5)},
    ]
    second = _eval_sensor(sensor, policy_path, crm, first.cursor)
    (request,) = second.run_requests
    assert request.tags[TAG_SIGNAL_IDS] == "a01B,a01C"
    assert request.tags[TAG_MODE] == "signals"
    assert request.tags[TAG_AS_OF_DATE] == "2025-03-04"  # the CRM clock, not the wall clock
    assert ModstampCursor.parse(second.cursor) == ModstampCursor(_stamp(4, 5), ("a01C",))

    # The cursor advanced: the same signals are not routed twice.
    third = _eval_sensor(sensor, policy_path, crm, second.cursor)
    assert isinstance(third, dg.SkipReason)


def test_return_sensor_requests_a_returns_run(tmp_path: Path) -> None:
    policy_path = _policy_file(tmp_path)
    _, sensors = _defs(policy_path)
    crm = FakeCrm({"Account": [{"Id": "001A", "SystemModstamp": _stamp(2)}]})
    cursor = ModstampCursor(_stamp(1), ("001Z",)).dumps()
    result = _eval_sensor(sensors["return_requests_sensor"], policy_path, crm, cursor)
    (request,) = result.run_requests
    assert request.tags[TAG_MODE] == "returns"
    assert "Return_Requested__c != null" in crm.queries[-1]
    assert ModstampCursor.parse(result.cursor).modstamp == _stamp(2)


@pytest.mark.parametrize(
    ("cadence", "kind", "name"),
    [
        ("signals", "sensor", "hot_signals_sensor"),
        ("returns", "sensor", "return_requests_sensor"),
        ("distribution", "schedule", "distribution_schedule"),
        ("retrieval", "schedule", "retrieval_schedule"),
    ],
)
def test_switched_off_cadence_yields_nothing(
    tmp_path: Path, cadence: str, kind: str, name: str
) -> None:
    policy_path = _policy_file(tmp_path, **{cadence: False})
    schedules, sensors = _defs(policy_path)
    crm = FakeCrm({"Signal__c": [{"Id": "a01A", "SystemModstamp": _stamp(9)}]})
    if kind == "sensor":
        cursor = ModstampCursor(_stamp(1), ()).dumps()
        result = _eval_sensor(sensors[name], policy_path, crm, cursor)
        assert sensors[name].default_status == dg.DefaultSensorStatus.STOPPED
        assert crm.queries == [] and crm.opened == 0  # switched off: the CRM is not asked
    else:
        context = dg.build_schedule_context(
            scheduled_execution_time=datetime(2025, 3, 3, 6, tzinfo=UTC),
            resources={"policy": PolicyResource(path=str(policy_path))},
        )
        result = schedules[name](context)
        assert schedules[name].default_status == dg.DefaultScheduleStatus.STOPPED
    assert isinstance(result, dg.SkipReason)
    assert cadence in (result.skip_message or "")


def test_schedule_uses_policy_cron_and_tick_date(tmp_path: Path) -> None:
    policy_path = _policy_file(tmp_path)
    schedules, _ = _defs(policy_path)
    schedule = schedules["distribution_schedule"]
    assert schedule.cron_schedule == load_policy(policy_path).cadences.distribution.cron
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 3, 3, 6, tzinfo=UTC),
        resources={"policy": PolicyResource(path=str(policy_path))},
    )
    request = schedule(context)
    assert request.tags[TAG_AS_OF_DATE] == "2025-03-03"
    assert request.tags[TAG_MODE] == "distribution"
    retrieval = schedules["retrieval_schedule"](context)
    assert retrieval.tags[TAG_RUN_ID] != request.tags[TAG_RUN_ID]


def test_advance_keeps_ids_at_the_same_modstamp() -> None:
    cursor = ModstampCursor(_stamp(1), ("a",))
    assert advance(cursor, []) == cursor
    rows = [{"Id": "b", "SystemModstamp": _stamp(1)}]
    assert advance(cursor, rows) == ModstampCursor(_stamp(1), ("a", "b"))


def test_changed_rows_excludes_seen_ties() -> None:
    crm = FakeCrm({"Signal__c": [{"Id": i, "SystemModstamp": _stamp(1)} for i in ("a", "b", "c")]})
    rows = changed_rows(crm, "Signal__c", "", ModstampCursor(_stamp(1), ("a", "b")))
    assert [r["Id"] for r in rows] == ["c"]


def test_bad_cursor_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="not a modstamp cursor"):
        ModstampCursor.parse("garbage")


@pytest.mark.parametrize("enabled", [True, False])
def test_reconcile_schedule_follows_the_ingest_policy(tmp_path: Path, enabled: bool) -> None:
    from orchestration.cadences import build_reconcile_job, build_reconcile_schedule
    from orchestration.cycle import TAG_RECONCILE

    data = yaml.safe_load(_policy_file(tmp_path).read_text(encoding="utf-8"))
    data["ingest"]["reconcile"] = {"enabled": enabled, "cron": "30 2 * * *"}
    policy_path = tmp_path / "reconcile.yml"
    policy_path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    job = build_reconcile_job(dg.AssetSelection.all())
    schedule = build_reconcile_schedule(load_policy(policy_path), job)
    assert schedule.cron_schedule == "30 2 * * *"
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2025, 3, 4, 2, 30, tzinfo=UTC),
        resources={"policy": PolicyResource(path=str(policy_path))},
    )
    result = schedule(context)
    if enabled:
        assert result.tags[TAG_RECONCILE] == "true"
        assert result.tags[TAG_AS_OF_DATE] == "2025-03-04"
    else:
        assert isinstance(result, dg.SkipReason) and "ingest.reconcile" in result.skip_message
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
