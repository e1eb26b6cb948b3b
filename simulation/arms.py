"""The arms' starting points: the reference read of the world and the static territories.

The reference is one dry-run cycle of the first policy on a copy of the twin (the production
code path, writing nothing): the fit tier and segment of every account the product manages.
All arms share it, so a KPI such as "A/B accounts worked" counts the same accounts in each.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import yaml

from policy import BooksPaths, load_policy
from policy.paths import repo_root
from simulation.crm_api import TwinApi
from simulation.twin import copy_twin

# Account states the product manages as prospects (the KPIs' and static arm's population).
REFERENCE_DIR = "reference"
MANAGED_STATES = ("working", "stale", "ready", "resting", "review")


@dataclass(frozen=True)
class Arm:
    name: str
    policy: Path | None  # None: the static-territory baseline


@dataclass(frozen=True)
class Reference:
    tiers: dict[str, str]  # managed account -> fit tier
    segments: dict[str, str]  # managed account -> segment key
    fit: dict[str, float]  # managed account -> fit score (static assignment order)


def arm_paths(
    workdir: Path,
    arm: str,
    policy: Path,
    landing: Path | None,
    held_out: frozenset[str] = frozenset(),
) -> BooksPaths:
    """An arm's own files: twin copy, warehouse, landing folder, Dagster home; `held_out`
    accounts (a holdout experiment) go into the arm's policy (`books.held_out_accounts`)."""
    home = workdir / arm
    home.mkdir(parents=True, exist_ok=True)
    arm_landing = home / "landing"
    if landing is not None and landing.exists() and not arm_landing.exists():
        shutil.copytree(landing, arm_landing)
    arm_landing.mkdir(exist_ok=True)
    return BooksPaths(
        root=repo_root(),
        policy=local_policy(policy, home, held_out),
        crm_db=home / "crm.sqlite",
        warehouse=home / "warehouse.duckdb",
        landing=arm_landing,
        dagster_home=home / "dagster",
    )


def local_policy(policy: Path, home: Path, held_out: frozenset[str] = frozenset()) -> Path:
    """The policy as the arm runs it: always against the twin (`crm.kind: local`), never
    against the CRM a production policy names; with a holdout, its accounts held out."""
    loaded = load_policy(policy)
    if loaded.crm.kind == "local" and not held_out:
        return Path(policy).resolve()
    data = yaml.safe_load(Path(policy).read_text(encoding="utf-8"))
    data["crm"] = {**(data.get("crm") or {}), "kind": "local"}
    if held_out:
        data["books"] = {**data["books"], "held_out_accounts": sorted(held_out)}
    target = home / "policy.yml"
    target.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    load_policy(target)
    return target


def read_reference(warehouse: Path) -> Reference:
    """Tiers, segments and fit of the managed prospects from a cycle's `marts.accounts`."""
    states = ", ".join(f"'{s}'" for s in MANAGED_STATES)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select account_id, fit_tier, segment_key, fit_score from marts.accounts "
            f"where state in ({states}) order by account_id"
        ).fetchall()
    return Reference(
        tiers={a: t for a, t, _, _ in rows if t},
        segments={a: s for a, _, s, _ in rows if s},
        fit={a: float(f or 0) for a, _, _, f in rows},
    )


def build_reference(twin: Path, policy: Path, workdir: Path, start: date) -> Reference:
    """One dry-run cycle of `policy` on a copy of the twin, as of `start`."""
    from orchestration.runner import run_cycle

    paths = arm_paths(workdir, REFERENCE_DIR, policy, None)
    copy_twin(twin, paths.crm_db)
    summary = run_cycle(start, dry_run=True, override_guard=True, paths=paths)
    if not summary.success:
        raise RuntimeError(f"the reference cycle failed: {summary.failure_reasons}")
    return read_reference(paths.warehouse)


def assign_static(api: TwinApi, reference: Reference) -> int:
    """Static territories: every managed prospect to an active rep of its segment, evenly
    (round robin by descending fit, so value is spread too); written once through the API."""
    users = api.query("SELECT Id, IsActive, Book_Role__c, Book_Segments__c FROM User")
    reps_of: dict[str, list[str]] = defaultdict(list)
    for u in sorted(users, key=lambda u: u["Id"]):
        if u["IsActive"] and u["Book_Role__c"] in ("SDR", "BDR"):
            for segment in (u["Book_Segments__c"] or "").split(";"):
                if segment.strip():
                    reps_of[segment.strip()].append(u["Id"])
    by_segment: dict[str, list[str]] = defaultdict(list)
    for account, segment in reference.segments.items():
        by_segment[segment].append(account)
    owners = {a["Id"]: a["OwnerId"] for a in api.query("SELECT Id, OwnerId FROM Account")}
    changes = []
    for segment, accounts in sorted(by_segment.items()):
        reps = reps_of.get(segment)
        if not reps:
            continue
        ordered = sorted(accounts, key=lambda a: (-reference.fit.get(a, 0.0), a))
        for i, account in enumerate(ordered):
            owner = reps[i % len(reps)]
            if owners.get(account) != owner:
                changes.append({"Id": account, "OwnerId": owner})
    return len(api.update("Account", changes)) if changes else 0
