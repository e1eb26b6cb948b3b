"""Holdout experiments (`books simulate --holdout 0.2`): inside a policy arm's world, a random
share of the managed accounts, stratified by segment and fit tier, is kept on static rules (the
control group), and each KPI's uplift (treated minus held out) gets a bootstrap interval.

The engine leaves the held-out accounts alone through the policy itself: the arm's policy
lists them in `books.held_out_accounts`, so the production cycle classifies them `excluded`
(never distributed, retrieved, returned or released, not counted in a book). Before the arm's
first cycle they are given to the reps of their segment as the static arm gives territories;
the same modelled reps then work both groups.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from simulation.arms import Reference
from simulation.behaviour import rng_for
from simulation.kpis import HIGH_TIERS, HOT_DAYS, WORKED_DAYS, Snapshot

RESAMPLES = 1000
CONFIDENCE = 0.95

UPLIFT_DESCRIPTIONS: dict[str, str] = {
    "ab_worked_30d_share": "A/B-tier accounts touched in the last 30 days of the period / A/B "
    "accounts",
    "worked_30d_share": "accounts touched in the last 30 days of the period / accounts",
    "hot_touched_7d_share": "signals of the period at least 7 days old whose account was touched "
    "within 7 days / those signals",
    "never_touched_share": "accounts with no touch in the period / accounts",
    "opportunities_per_account": "opportunities created in the period per account",
    "pipeline_per_account": "Amount of the opportunities created in the period per account",
}


@dataclass(frozen=True)
class Uplift:
    kpi: str
    treated: float | None  # the KPI over the accounts the engine manages
    held_out: float | None  # the KPI over the held-out accounts
    uplift: float | None  # treated - held_out
    low: float | None  # bootstrap percentile interval of the uplift
    high: float | None
    treated_accounts: int
    held_out_accounts: int


def stratum(reference: Reference, account: str) -> tuple[str, str]:
    """(segment, fit tier) of a managed account: the holdout's strata."""
    return reference.segments.get(account, ""), reference.tiers.get(account, "")


def choose_holdout(reference: Reference, share: float, seed: int) -> frozenset[str]:
    """A random `share` of the managed accounts, stratified by segment and fit tier: each
    stratum holds out share x its size rounded down or up (largest remainders, so the total
    is share x all accounts, rounded), drawn at random within the stratum."""
    if not 0 < share < 1:
        raise ValueError(f"holdout share must be between 0 and 1 (got {share})")
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for account in sorted(reference.segments.keys() | reference.tiers.keys()):
        strata[stratum(reference, account)].append(account)
    rng = rng_for(seed, "holdout")
    keys = sorted(strata)
    quotas = {k: share * len(strata[k]) for k in keys}
    counts = {k: int(quotas[k]) for k in keys}
    missing = round(share * sum(len(v) for v in strata.values())) - sum(counts.values())
    ties = rng.random(len(keys))
    by_remainder = sorted(
        range(len(keys)), key=lambda i: (counts[keys[i]] - quotas[keys[i]], ties[i])
    )
    for i in by_remainder[:missing]:
        counts[keys[i]] += 1
    held: set[str] = set()
    for k in keys:
        chosen = rng.choice(len(strata[k]), size=counts[k], replace=False)
        held.update(strata[k][int(j)] for j in chosen)
    return frozenset(held)


def restrict(reference: Reference, accounts: Iterable[str]) -> Reference:
    """The reference of `accounts` only (the held-out group's static territories)."""
    keep = set(accounts)
    pick = lambda d: {a: v for a, v in d.items() if a in keep}  # noqa: E731
    return Reference(pick(reference.tiers), pick(reference.segments), pick(reference.fit))


def outcomes(snap: Snapshot, accounts: Iterable[str], until: date) -> dict[str, np.ndarray]:
    """Per account of `accounts`: (numerator, denominator) of each uplift KPI over the period
    `snap.period_start`..`until`, as a (2, n) array per KPI."""
    ids = sorted(accounts)
    worked_since = until - timedelta(days=WORKED_DAYS - 1)
    touches: dict[str, list[date]] = defaultdict(list)
    for account, _, d in snap.touches:
        if snap.period_start <= d <= until:
            touches[account].append(d)
    hot_due: dict[str, int] = defaultdict(int)
    hot_met: dict[str, int] = defaultdict(int)
    for _, account, signal_day in snap.signals:
        if snap.period_start <= signal_day and signal_day + timedelta(days=HOT_DAYS) <= until:
            hot_due[account] += 1
            hot_met[account] += any(
                signal_day <= d <= signal_day + timedelta(days=HOT_DAYS) for d in touches[account]
            )
    opps: dict[str, int] = defaultdict(int)
    pipeline: dict[str, float] = defaultdict(float)
    for account, created, amount in snap.opportunities:
        if snap.period_start <= created <= until:
            opps[account] += 1
            pipeline[account] += amount
    worked = {a: any(d >= worked_since for d in touches[a]) for a in ids}
    high = {a: snap.tiers.get(a) in HIGH_TIERS for a in ids}
    rows = {
        "ab_worked_30d_share": [(worked[a] and high[a], high[a]) for a in ids],
        "worked_30d_share": [(worked[a], 1) for a in ids],
        "hot_touched_7d_share": [(hot_met[a], hot_due[a]) for a in ids],
        "never_touched_share": [(not touches[a], 1) for a in ids],
        "opportunities_per_account": [(opps[a], 1) for a in ids],
        "pipeline_per_account": [(pipeline[a], 1) for a in ids],
    }
    return {k: np.array(v, dtype=float).reshape(-1, 2).T for k, v in rows.items()}


def uplifts(
    snap: Snapshot,
    treated: Iterable[str],
    held_out: Iterable[str],
    until: date,
    seed: int,
    resamples: int = RESAMPLES,
) -> list[Uplift]:
    """Each KPI over the treated and the held-out accounts, their difference, and a bootstrap
    percentile interval of the difference (accounts resampled within each group)."""
    treated, held_out = sorted(treated), sorted(held_out)
    a, b = outcomes(snap, treated, until), outcomes(snap, held_out, until)
    rng = rng_for(seed, "holdout-bootstrap", until)
    out = []
    for kpi in UPLIFT_DESCRIPTIONS:
        t, h = _ratio(a[kpi]), _ratio(b[kpi])
        diffs = _boot(a[kpi], rng, resamples) - _boot(b[kpi], rng, resamples)
        diffs = diffs[~np.isnan(diffs)]
        tail = (1 - CONFIDENCE) / 2 * 100
        low, high = (
            (float(np.percentile(diffs, tail)), float(np.percentile(diffs, 100 - tail)))
            if len(diffs) and t is not None and h is not None
            else (None, None)
        )
        lift = t - h if t is not None and h is not None else None
        out.append(Uplift(kpi, t, h, lift, low, high, len(treated), len(held_out)))
    return out


def _ratio(pairs: np.ndarray) -> float | None:
    den = pairs[1].sum()
    return float(pairs[0].sum() / den) if den else None


def _boot(pairs: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """The ratio KPI of `resamples` resamples (with replacement) of the accounts."""
    n = pairs.shape[1]
    if n == 0:
        return np.full(resamples, np.nan)
    idx = rng.integers(n, size=(resamples, n))
    num, den = pairs[0][idx].sum(axis=1), pairs[1][idx].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def strata_counts(
    reference: Reference, held: Iterable[str]
) -> Mapping[tuple[str, str], tuple[int, int]]:
    """(held out, all) accounts per stratum, for the report and the balance check."""
    held = set(held)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for account in reference.segments.keys() | reference.tiers.keys():
        c = counts[stratum(reference, account)]
        c[0] += account in held
        c[1] += 1
    return {k: (v[0], v[1]) for k, v in sorted(counts.items())}
