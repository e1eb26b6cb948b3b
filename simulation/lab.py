"""One comparison: arms (policies and the static baseline) over the same twin, same people.

Calibrates the behaviour once on the twin, reads the reference (tiers, segments) once, then
runs each arm on its own copy of the twin in its own folder of `workdir`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from pathlib import Path

from local_crm.db import CrmStore
from policy import load_policy
from simulation.arms import REFERENCE_DIR, Arm, Reference, arm_paths, build_reference
from simulation.behaviour import Behaviour, Calibration, calibrate
from simulation.capacity import capacity_advice
from simulation.chaos import ChaosPlan
from simulation.crm_api import twin_api
from simulation.holdout import Uplift, choose_holdout, uplifts
from simulation.kpis import read_snapshot
from simulation.loop import ArmRun, run_policy_arm, run_static_arm
from simulation.params import BehaviourParams
from simulation.results import Simulation, simulation_id
from simulation.twin import copy_twin

STATIC = "static"
REFERENCE = REFERENCE_DIR


def arms_for(policies: Sequence[Path], static: bool = True) -> list[Arm]:
    """One arm per policy (named by file stem, made unique) plus the static baseline."""
    arms, seen = [], set()
    for policy in policies:
        name = Path(policy).stem
        while name in seen or name in (STATIC, REFERENCE):
            name += "_"
        seen.add(name)
        arms.append(Arm(name, Path(policy)))
    return arms + ([Arm(STATIC, None)] if static else [])


def simulate(
    twin: Path,
    arms: Sequence[Arm],
    workdir: Path,
    *,
    days: int,
    params: BehaviourParams,
    reference_policy: Path,
    start: date | None = None,
    reference: Reference | None = None,
    landing: Path | None = None,
    chaos: ChaosPlan | None = None,
    holdout: float = 0.0,
    say: Callable[[str], None] = lambda _: None,
) -> Simulation:
    """Run every arm for `days` days from `start` (default: the twin's clock date); with
    `holdout`, that share of the managed accounts stays on static rules in each policy arm."""
    if days < 1:
        raise ValueError(f"days must be >= 1 (got {days})")
    if not Path(twin).exists():
        raise FileNotFoundError(f"no twin at {twin}; create one with `books twin`")
    workdir.mkdir(parents=True, exist_ok=True)
    start = start or CrmStore(twin).clock.today()
    twin_hash = CrmStore(twin).content_hash()
    if reference is None:
        say(f"reference: one dry-run cycle of {reference_policy} as of {start}")
        reference = build_reference(twin, reference_policy, workdir, start)
    with twin_api(twin) as api:
        calibration = calibrate(api, params, reference.tiers, start)
    say(_calibration_line(calibration))
    behaviour = Behaviour(params, calibration, reference.tiers)
    behaviour_hash = hashlib.sha256(params.model_dump_json().encode()).hexdigest()[:16]
    policies = {a.name: str(a.policy or "") for a in arms}
    parts = [twin_hash, behaviour_hash, start, days, sorted(policies.items())]
    sim_id = simulation_id(*parts, *([f"holdout={holdout}"] if holdout else []))
    held = choose_holdout(reference, holdout, params.seed) if holdout else frozenset()
    if held:
        say(f"holdout: {len(held)} of {len(reference.segments)} managed accounts on static rules")
    runs: list[ArmRun] = []
    for arm in arms:
        say(f"arm {arm.name}: {days} days from {start}")
        if arm.policy is None:
            crm_db = workdir / arm.name / "crm.sqlite"
            copy_twin(twin, crm_db)
            run = run_static_arm(arm.name, crm_db, behaviour, calibration, reference, start, days)
        else:
            paths = arm_paths(workdir, arm.name, arm.policy, landing, held)
            crm_db = paths.crm_db
            copy_twin(twin, crm_db)
            run = run_policy_arm(
                arm.name, paths, behaviour, calibration, reference, start, days, say, chaos, held
            )
            if held:
                run.uplift = _uplift(crm_db, reference, calibration, held, start, days, params)
        run.capacity = capacity_advice(crm_db, start, start + timedelta(days=days - 1))
        design = load_policy(arm.policy or reference_policy).books.roles
        run.targets = {role: book.target_size for role, book in design.items()}
        runs.append(run)
    return Simulation(sim_id, start, days, params.seed, behaviour_hash, twin_hash, runs, policies)


def _uplift(
    crm_db: Path,
    reference: Reference,
    calibration: Calibration,
    held: frozenset[str],
    start: date,
    days: int,
    params: BehaviourParams,
) -> list[Uplift]:
    """The KPIs of the treated and held-out accounts over the whole period, from the twin."""
    end = start + timedelta(days=days - 1)
    capacity = {uid: rep.accounts_per_week for uid, rep in calibration.reps.items()}
    snap = read_snapshot(crm_db, reference.tiers, capacity, start, end)
    managed = reference.segments.keys() | reference.tiers.keys()
    return uplifts(snap, managed - held, held, end, params.seed)


def _calibration_line(cal: Calibration) -> str:
    measured = sum(r.calibrated for r in cal.reps.values())
    styles = json.dumps({s: sum(r.style == s for r in cal.reps.values())
                         for s in ("diligent", "hoarder", "idle")})  # fmt: skip
    return (
        f"behaviour: {measured}/{len(cal.reps)} reps calibrated from history, styles {styles}, "
        f"{cal.signals_per_week:.1f} signals and {cal.leads_per_week:.1f} leads per week"
    )
