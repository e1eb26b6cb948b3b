"""R17 cadences: schedules and sensors evaluated with Dagster's build contexts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
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
    TAG_TRIGGERED_AT,
    PolicyResource,
    crm_today,
)
from orchestration.resources import CrmResource
from policy import load_policy

REPO = Path(__file__).resolve().parents[2]

# A real org's resource: `today` needs no connection (the tick's UTC date).
SALESFORCE = CrmResource(kind="salesforce", base_url="https://example.my.salesforce.com")
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

    def today(self, moment: datetime) -> date:
        """A Salesforce org's today: the UTC date of the moment."""
        return crm_today("salesforce", None, moment)

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
        data["cadences"].setdefault(name, {"cron": "0 3 * * *"})["enabled"] = on
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
    ticked = datetime.now(UTC)
    second = _eval_sensor(sensor, policy_path, crm, first.cursor)
    (request,) = second.run_requests
    # The tick's moment, from which the write-back measures the run's speed to lead.
    assert ticked <= datetime.fromisoformat(request.tags[TAG_TRIGGERED_AT]) <= datetime.now(UTC)
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
            resources={"policy": PolicyResource(path=str(policy_path)), "crm": SALESFORCE},
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
        resources={"policy": PolicyResource(path=str(policy_path)), "crm": SALESFORCE},
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
        resources={"policy": PolicyResource(path=str(policy_path)), "crm": SALESFORCE},
    )
    result = schedule(context)
    if enabled:
        assert result.tags[TAG_RECONCILE] == "true"
        assert result.tags[TAG_AS_OF_DATE] == "2025-03-04"
    else:
        assert isinstance(result, dg.SkipReason) and "ingest.reconcile" in result.skip_message
        assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED


def _local_crm(tmp_path: Path, clock: datetime) -> CrmResource:
    from local_crm.db import CrmStore

    crm_db = tmp_path / "crm.sqlite"
    CrmStore(crm_db).clock.set(clock)
    return CrmResource(kind="local", local_db_path=str(crm_db))


def _salesforce_policy(tmp_path: Path) -> Path:
    data = yaml.safe_load(_policy_file(tmp_path).read_text(encoding="utf-8"))
    data["crm"]["kind"] = "salesforce"
    path = tmp_path / "salesforce.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_local_crm_cadences_start_stopped_even_when_enabled(tmp_path: Path) -> None:
    """Opening the UI on the demo world must not start runs by itself."""
    from orchestration.cadences import build_reconcile_job, build_reconcile_schedule
    from orchestration.quality import build_quality_schedule

    names = ("distribution", "retrieval", "signals", "returns", "quality")
    local = load_policy(_policy_file(tmp_path, **dict.fromkeys(names, True)))
    assert local.crm.kind == "local" and local.ingest.reconcile.enabled
    schedules, sensors = build_cadences(local, dg.define_asset_job("books_cycle"))
    schedules.append(build_quality_schedule(local))
    schedules.append(build_reconcile_schedule(local, build_reconcile_job(dg.AssetSelection.all())))
    assert {s.default_status for s in schedules} == {dg.DefaultScheduleStatus.STOPPED}
    assert {s.default_status for s in sensors} == {dg.DefaultSensorStatus.STOPPED}
    # A real org keeps what books.yml says: an enabled cadence runs.
    org = load_policy(_salesforce_policy(tmp_path))
    schedules, sensors = build_cadences(org, dg.define_asset_job("books_cycle"))
    assert {s.default_status for s in schedules} == {dg.DefaultScheduleStatus.RUNNING}
    assert {s.default_status for s in sensors} == {dg.DefaultSensorStatus.RUNNING}


def test_scheduled_and_sensor_runs_are_as_of_the_local_crm_clock(tmp_path: Path) -> None:
    """On the demo world (CRM clock in 2025) a tick in 2026 still runs as of the CRM's day."""
    policy_path = _policy_file(tmp_path)
    crm = _local_crm(tmp_path, datetime(2025, 6, 2, 9, tzinfo=UTC))
    schedules, _ = _defs(policy_path)
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 12, 7, 6, tzinfo=UTC),
        resources={"policy": PolicyResource(path=str(policy_path)), "crm": crm},
    )
    for name in ("distribution_schedule", "retrieval_schedule"):
        assert schedules[name](context).tags[TAG_AS_OF_DATE] == "2025-06-02"

    class LocalSignals(FakeCrm):
        def today(self, moment: datetime) -> date:
            return crm.today(moment)

    _, sensors = _defs(policy_path)
    signals = LocalSignals({"Signal__c": [{"Id": "a01A", "SystemModstamp": _stamp(1)}]})
    first = _eval_sensor(sensors["hot_signals_sensor"], policy_path, signals, None)
    signals.rows_by_object["Signal__c"].append({"Id": "a01B", "SystemModstamp": _stamp(20)})
    second = _eval_sensor(sensors["hot_signals_sensor"], policy_path, signals, first.cursor)
    assert second.run_requests[0].tags[TAG_AS_OF_DATE] == "2025-06-02"


def test_launchpad_run_without_a_date_takes_the_crm_clock_and_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run launched by hand (no books/as_of_date tag) is as of the CRM's clock, in its tags."""
    from orchestration.cycle import as_of_date_of

    crm = _local_crm(tmp_path, datetime(2025, 6, 2, 9, tzinfo=UTC))
    monkeypatch.setenv("BOOKS_CRM_DB", str(crm.local_db_path))
    monkeypatch.setenv("BOOKS_POLICY", str(_policy_file(tmp_path)))
    seen: list[date] = []

    @dg.op
    def first_step(context) -> None:  # noqa: ANN001 (dagster reads the annotation)
        seen.append(as_of_date_of(context))

    @dg.op
    def later_step(context) -> None:  # noqa: ANN001
        seen.append(as_of_date_of(context))

    @dg.job
    def launched() -> None:
        first_step()
        later_step()

    instance = dg.DagsterInstance.ephemeral()
    result = launched.execute_in_process(instance=instance)
    assert result.success
    assert seen == [date(2025, 6, 2), date(2025, 6, 2)]
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.tags[TAG_AS_OF_DATE] == "2025-06-02"
