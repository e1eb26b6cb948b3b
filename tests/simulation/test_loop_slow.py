"""The loop with real cycles (each simulated cycle is a full `books run`: minutes here).

Kept to one simulated Monday per arm: the retrieval schedule fires and nothing else runs
(distribution, signals and returns switched off in the test policies)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
import yaml

from local_crm.db import CrmStore
from simulation.arms import Arm
from simulation.lab import simulate
from simulation.params import load_params

pytestmark = [pytest.mark.slow, pytest.mark.long_pole]


def _policy(tmp_path: Path, name: str, window: int) -> Path:
    data = yaml.safe_load(Path("books.yml").read_text(encoding="utf-8"))
    data["lifecycle"]["working_window_days"] = window
    for cadence in ("distribution", "signals", "returns"):
        data["cadences"][cadence]["enabled"] = False
    path = tmp_path / f"{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _decisions(warehouse: Path, kind: str) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(
            "select count(*) from decisions.book_decisions where decision_kind = ?", [kind]
        ).fetchone()[0]


def test_a_15_day_working_window_retrieves_more_than_a_90_day_one(
    small_twin, hand_reference, tmp_path
):
    before = CrmStore(small_twin).content_hash()
    arms = [Arm("w15", _policy(tmp_path, "w15", 15)), Arm("w90", _policy(tmp_path, "w90", 90))]
    sim = simulate(
        small_twin, arms, tmp_path / "run", days=1, params=load_params(),
        reference_policy=arms[0].policy, reference=hand_reference,
    )  # fmt: skip
    short = _decisions(tmp_path / "run" / "w15" / "warehouse.duckdb", "retrieve")
    long = _decisions(tmp_path / "run" / "w90" / "warehouse.duckdb", "retrieve")
    assert short > long
    assert all(arm.timings.cycle_count == {"retrieval": 1} for arm in sim.arms)
    assert CrmStore(small_twin).content_hash() == before  # arms write to their own copies
