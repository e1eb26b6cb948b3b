"""The results table judges figures against the performance targets (fast: synthetic results)."""

from __future__ import annotations

from typing import Any

from benchmarks.results import STAGES, checks, render_markdown


def _stage(name: str, seconds: float, status: str = "ok", **data: Any) -> dict[str, Any]:
    return {"name": name, "status": status, "seconds": seconds, "peak_rss_mib": 1024.0,
            "data": data, "error": "" if status == "ok" else "boom"}  # fmt: skip


def _kind(seconds: float, changes: int = 1000, api_calls: int = 8, **overrides: str) -> dict:
    data = {
        "extract": {"rows": 1_000_000},
        "write-back": {
            "changes": changes,
            "api_calls": api_calls,
            "write_calls": 5,
            "unchanged_sent": 0,
            "apply_seconds": 1.0,
        },  # fmt: skip
    }
    return {
        "stages": [
            _stage(name, seconds, overrides.get(name, "ok"), **data.get(name, {}))
            for name in STAGES
        ],
        "limits": {},
    }


def _result(scale: str, full: float, daily: float, **overrides: str) -> dict[str, Any]:
    return {
        "scale": scale, "accounts": 1_000_000, "reps": 1000, "activities": 20_000_000,
        "date": "2025-06-02", "machine": "test", "commit": "abc",
        "world": {"generated": False, "seconds": 0, "counts": "-"},
        "kinds": {"initial": _kind(5.0), "full": _kind(full / len(STAGES)),
                  "daily": _kind(daily / len(STAGES), **overrides)},
    }  # fmt: skip


def _by_name(result: dict[str, Any]) -> dict[str, Any]:
    return {c.name: c for c in checks(result)}


def test_l_targets_pass_and_miss() -> None:
    got = _by_name(_result("L", full=40, daily=12))
    assert got["full rebuild: wall s (sum of stages)"].verdict == "PASS"
    assert got["daily cycle: wall s (sum of stages)"].verdict == "PASS"
    assert got["daily / full rebuild"].verdict == "MISS"  # 12 / 40 = 0.3 > 0.2
    assert got["initial load: rows/s extracted"].verdict == "PASS"  # 1M rows in 5 s


def test_targets_for_other_scales_are_shown_not_judged() -> None:
    got = _by_name(_result("S", full=60, daily=6))
    assert got["full rebuild: wall s (sum of stages)"].verdict.startswith("(miss")
    assert got["daily: CRM API calls per 1,000 changes"].verdict == "PASS"  # all scales


def test_a_failed_stage_leaves_no_total_to_judge() -> None:
    result = _result("L", full=40, daily=12, decisions="failed")
    got = _by_name(result)
    assert got["daily cycle: wall s (sum of stages)"].verdict == "no figure"
    text = render_markdown(result)
    assert "| **sum of stages** | incomplete |" in text
    assert "daily / decisions: failed: boom" in text


def test_too_many_api_calls_is_a_miss() -> None:
    result = _result("M", full=40, daily=12)
    result["kinds"]["daily"]["stages"][4]["data"]["api_calls"] = 50  # 50 per 1,000 changes
    assert _by_name(result)["daily: CRM API calls per 1,000 changes"].verdict == "MISS"


def test_a_small_run_is_held_to_the_budget_of_1000_changes() -> None:
    """31 changes in 3 calls (re-read, write, read-back) is 97 per 1,000 but within budget."""
    result = _result("S", full=60, daily=6)
    result["kinds"]["daily"]["stages"][4]["data"].update(changes=31, api_calls=3)
    got = _by_name(result)
    assert "daily: CRM API calls per 1,000 changes" not in got
    assert got["daily: CRM API calls (fewer than 1,000 changes)"].verdict == "PASS"
    result["kinds"]["daily"]["stages"][4]["data"]["api_calls"] = 11
    assert _by_name(result)["daily: CRM API calls (fewer than 1,000 changes)"].verdict == "MISS"


def test_a_replica_keeps_only_the_stages_that_did_the_same_work() -> None:
    from benchmarks.scaling import stage_times

    stages = [{"name": n, "status": "ok", "seconds": 1.0}
              for n in ("contracts", "dbt build", "decisions", "write-back", "report")]  # fmt: skip
    generated = {"world": {"generated": True}, "kinds": {"full": {"stages": stages}}}
    replica = {"world": {"generated": True, "replica": "10 copies of L"},
               "kinds": {"full": {"stages": stages}}}  # fmt: skip
    assert set(stage_times(generated, "full")) == {s["name"] for s in stages}
    assert set(stage_times(replica, "full")) == {"dbt build", "decisions", "report"}
