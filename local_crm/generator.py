"""World generator: fills the local CRM with a realistic, deliberately imperfect B2B sales world.

Why: the demo, the tests, the benchmarks and the simulator all need a CRM that looks like a real
org (skewed firmographics, families, hoarders, dirty rows, landing files with flaws) and that is
identical for a seed. Everything is drawn from numpy PCG64 streams, one per component, and written
straight into SQLite in chunks so a 1M-account world fits in memory. Rates and distributions are
documented in GENERATOR.md; every deliberately dirty row is counted in `WorldSummary.dirty`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from local_crm import names
from local_crm.db import CrmStore
from local_crm.schema import LEAD_SOURCES, RETURN_REASONS, SIGNAL_TYPES

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

ACCOUNT_CHUNK = 5_000  # accounts per contacts+activities chunk (~100k activity rows)
ROW_CHUNK = 100_000
DAY = 86_400
NULL = -1  # "no date" in day-number arrays (day numbers are days since 1970-01-01, all > 0)

# Rates of the world (GENERATOR.md documents them; tests check them on a 20k world).
RATES: dict[str, float] = {
    "duplicate_accounts": 0.02,  # extra account rows duplicating another account
    "duplicate_same_domain": 0.6,  # share of duplicates whose website normalises to the same domain
    "employees_missing": 0.04,
    "employees_zero": 0.005,
    "employees_implausible": 0.003,  # 10,000,000 employees with a tiny revenue
    "revenue_missing": 0.06,
    "websites_missing": 0.03,
    "websites_malformed": 0.015,
    "family_share": 0.10,  # accounts inside a corporate family (parent or child)
    "parent_cycle_pairs": 0.0005,  # pairs A->B->A per account
    "parent_missing_ref": 0.0005,  # ParentId pointing to an id that does not exist
    "contacts_missing_account": 0.001,
    "activities_missing_account": 0.0002,
    "customer": 0.08,
    "former_customer": 0.02,
    "partner": 0.01,
    "other_type": 0.005,
    "ae_owned_prospect": 0.02,
    "open_opportunity_prospect": 0.04,
    "lost_opportunity_prospect": 0.03,
    "leads_per_account": 0.15,
    "signals_per_account": 0.08,
    "competitor_renewal": 0.05,
    "family_same_owner": 0.8,
    "activities_per_account_year": 20.0,
}
LEAD_MIX = {  # ground-truth match category of generated leads
    "domain": 0.55,
    "name_only": 0.15,
    "ambiguous": 0.05,
    "unmatched": 0.15,
    "free_mail_unmatched": 0.10,
}
ARCHETYPES = ("normal", "diligent", "hoarder")
_ARCHETYPE_P = (0.65, 0.25, 0.10)
# Manual touches per month on a worked account, sequence steps per month, P(account worked).
_MANUAL_RATE = {"normal": 2.5, "diligent": 4.0, "hoarder": 2.0}
_SEQ_RATE = {"normal": 2.0, "diligent": 3.0, "hoarder": 1.0}
_P_WORKED = {"normal": 0.75, "diligent": 0.95}
HOARDER_BOOK = 300
HOARDER_TOUCHED = 50
_MARKETING_FLOOR = 0.1  # marketing touches per account-month, at least
_INBOUND_REPLY_RATE = 0.06  # inbound replies per outbound email/sequence step
_STREAMS = (
    "users", "accounts", "families", "owners", "plan", "status", "contacts", "activities",
    "leads", "opportunities", "signals", "landing",
)  # fmt: skip


@dataclass(frozen=True)
class WorldSummary:
    """What was generated: row counts, deliberately dirty rows (by kind), and the ground truth
    a test or a benchmark needs (lead match categories, rep archetypes, landing files)."""

    seed: int
    as_of: date
    clock: datetime
    counts: dict[str, int]
    dirty: dict[str, int]
    leads_by_category: dict[str, int]
    reps_by_archetype: dict[str, int]
    hoarded_opportunities: int
    return_requests: dict[str, int]
    landing_files: tuple[str, ...] = ()
    landing: dict[str, int] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers


def _rng(seed: int, stream: str) -> np.random.Generator:
    """An independent PCG64 stream per component, so changing one part leaves others intact."""
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence([seed, _STREAMS.index(stream)]))
    )


def _day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


def _dates(days: np.ndarray) -> list[str | None]:
    """Day numbers -> 'YYYY-MM-DD' (NULL -> None)."""
    arr = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    arr[np.asarray(days) < 0] = np.datetime64("NaT")
    return [None if s == "NaT" else s for s in np.datetime_as_string(arr, unit="D").tolist()]


def _stamps(secs: np.ndarray) -> list[str]:
    """Epoch seconds -> the store's datetime format (same text as db.format_datetime)."""
    text = np.datetime_as_string(np.asarray(secs, dtype=np.int64).astype("datetime64[s]"), unit="s")
    return [s + ".000+0000" for s in text.tolist()]


def _nullable(values: np.ndarray, null: np.ndarray) -> list[Any]:
    out = values.tolist()
    for i in np.flatnonzero(null).tolist():
        out[i] = None
    return out


def _pick(arr: tuple[str, ...] | list[str], idx: np.ndarray) -> list[str]:
    return [arr[i] for i in idx.tolist()]


def _load(store: CrmStore, obj: str, cols: dict[str, list[Any]]) -> int:
    return store.bulk_load_columns(obj, cols)


def _round_at_least(x: float, low: int) -> int:
    return max(low, int(round(x)))


# ---------------------------------------------------------------------------- policy


@dataclass(frozen=True)
class _PolicyBits:
    pool_users: tuple[str, ...]
    segments: tuple[str, ...]
    targets: dict[str, int]  # book role -> target size
    ramp_days: int
    ramp_share: float
    rest_days: dict[str, int]


def _policy_bits(policy_path: Path | None) -> _PolicyBits:
    from policy.loader import load_policy
    from policy.paths import resolve_paths

    pol = load_policy(policy_path or resolve_paths().policy)
    targets = {role: design.target_size for role, design in pol.books.roles.items()}
    for role in ("SDR", "BDR"):
        if role not in targets:
            raise ValueError(f"policy defines no book for rep role {role}; the generator needs it")
    rest = pol.lifecycle.rest_days
    return _PolicyBits(
        pool_users=tuple(pol.crm.pool_users),
        segments=tuple(s.key for s in pol.segments),
        targets=targets,
        ramp_days=pol.books.ramp.days,
        ramp_share=pol.books.ramp.capacity_share,
        rest_days={
            "retrieved": rest.retrieved,
            "not_now": rest.not_now,
            "no_response": rest.no_response,
            "duplicate": rest.duplicate,
        },
    )


# ---------------------------------------------------------------------------- users


@dataclass
class _Users:
    ids: list[str]
    role: list[str]
    email: list[str]
    segment: list[str | None]
    archetype: list[str]
    active: np.ndarray
    ramping: np.ndarray
    ooo: np.ndarray
    rep_idx: np.ndarray
    pool_idx: np.ndarray
    ae_idx: np.ndarray
    admin: int


def _make_users(
    store: CrmStore, rng: np.random.Generator, reps: int, pol: _PolicyBits, a: int
) -> _Users:
    n_mgr = max(1, -(-reps // 8))
    n_ae = max(2, reps // 4)
    n_pool = len(pol.pool_users)
    roles = ["Admin"] + ["Pool"] * n_pool + ["Manager"] * n_mgr + ["AE"] * n_ae
    rep_roles = np.where(rng.random(reps) < 0.6, "SDR", "BDR").tolist()
    roles += rep_roles
    n = len(roles)
    first = _pick(names.FIRST_NAMES, rng.integers(len(names.FIRST_NAMES), size=n))
    last = _pick(names.LAST_NAMES, rng.integers(len(names.LAST_NAMES), size=n))
    full, usernames, seen = [], [], {}
    for i, role in enumerate(roles):
        if role == "Admin":
            full.append("Integration User")
            usernames.append("integration@books.local")
        elif role == "Pool":
            k = i - 1
            full.append(f"Account Pool {k + 1}")
            usernames.append(pol.pool_users[k])
        else:
            base = f"{first[i]}.{last[i]}".lower()
            seen[base] = seen.get(base, 0) + 1
            suffix = "" if seen[base] == 1 else str(seen[base])
            full.append(f"{first[i]} {last[i]}")
            usernames.append(f"{base}{suffix}@books.local")
    rep0 = 1 + n_pool + n_mgr + n_ae
    rep_idx = np.arange(rep0, n)
    mgr_idx = np.arange(1 + n_pool, 1 + n_pool + n_mgr)
    ae_idx = np.arange(1 + n_pool + n_mgr, rep0)

    # Reps: one segment each (enterprise 15%, midmarket 35%, smb 50%, each segment staffed).
    seg_p = np.array(
        [0.15, 0.35, 0.50][: len(pol.segments)] + [0.1] * max(0, len(pol.segments) - 3)
    )
    seg = rng.choice(len(pol.segments), size=reps, p=seg_p / seg_p.sum())
    if reps >= len(pol.segments):
        seg[: len(pol.segments)] = np.arange(len(pol.segments))
    arche = rng.choice(len(ARCHETYPES), size=reps, p=_ARCHETYPE_P)
    u = rng.random(reps)
    ramping = u < 0.12
    inactive = (u >= 0.12) & (u < 0.17) & (arche != 2)
    if reps >= 10 and not inactive.any():
        inactive[np.flatnonzero(~ramping & (arche != 2))[0]] = True
    ooo_u = rng.random(reps)
    ooo_future = (ooo_u < 0.08) & ~inactive
    ooo_past = (ooo_u >= 0.08) & (ooo_u < 0.13)
    ramping = ramping & ~inactive
    arche[ramping & (arche == 2)] = 0  # a ramping rep has had no time to hoard
    settled = np.flatnonzero(~ramping & ~inactive)
    if reps >= 5 and not (arche == 2).any() and len(settled):
        arche[settled[rng.integers(len(settled))]] = 2  # every team of 5+ has its hoarder

    active = np.ones(n, dtype=bool)
    active[rep_idx[inactive]] = False
    ramp_start = np.full(n, NULL, dtype=np.int64)
    ramp_start[rep_idx] = a - rng.integers(120, 1500, size=reps)
    ramp_start[rep_idx[ramping]] = a - rng.integers(1, pol.ramp_days, size=int(ramping.sum()))
    ooo = np.full(n, NULL, dtype=np.int64)
    ooo[rep_idx[ooo_future]] = a + rng.integers(1, 22, size=int(ooo_future.sum()))
    ooo[rep_idx[ooo_past]] = a - rng.integers(1, 60, size=int(ooo_past.sum()))
    segment: list[str | None] = [None] * n
    archetype = [""] * n
    for j, i in enumerate(rep_idx.tolist()):
        segment[i] = pol.segments[seg[j]]
        archetype[i] = ARCHETYPES[arche[j]]
    manager: list[str | None] = [None] * n
    ids = store.new_ids("User", n)
    for i in list(ae_idx) + list(rep_idx):
        manager[i] = ids[int(mgr_idx[i % n_mgr])]

    created = a - rng.integers(200, 2500, size=n)
    created[rep_idx] = np.minimum(created[rep_idx], ramp_start[rep_idx] - 7)
    c_secs = created * DAY + rng.integers(0, DAY, size=n)
    m_secs = np.maximum(
        c_secs, (a - rng.integers(1, 60, size=n)) * DAY + rng.integers(0, DAY, size=n)
    )
    _load(
        store,
        "User",
        {
            "Id": ids,
            "IsDeleted": [0] * n,
            "CreatedDate": _stamps(c_secs),
            "LastModifiedDate": _stamps(m_secs),
            "SystemModstamp": _stamps(m_secs),
            "Username": usernames,
            "Name": full,
            "Email": usernames,
            "IsActive": active.astype(int).tolist(),
            "ManagerId": manager,
            "Book_Role__c": roles,
            "Book_Segments__c": segment,
            "Ramp_Start_Date__c": _dates(ramp_start),
            "Out_Of_Office_Until__c": _dates(ooo),
        },
    )
    rp = np.zeros(n, dtype=bool)
    rp[rep_idx[ramping]] = True
    oo = ooo > a
    return _Users(
        ids=ids,
        role=roles,
        email=usernames,
        segment=segment,
        archetype=archetype,
        active=active,
        ramping=rp,
        ooo=oo,
        rep_idx=rep_idx,
        pool_idx=np.arange(1, 1 + n_pool),
        ae_idx=ae_idx,
        admin=0,
    )


# ---------------------------------------------------------------------------- accounts


@dataclass
class _Accounts:
    n: int
    ids: list[str]
    missing_ids: list[str]  # ids never inserted: targets of deliberately dangling references
    name: list[str]
    brand: list[str]
    domain: list[str]  # the true, normalised domain (contacts and leads use it)
    website: list[str | None]
    industry: np.ndarray
    country: np.ndarray
    state: list[str | None]
    employees: np.ndarray  # float, nan = missing
    revenue: np.ndarray  # float, nan = missing
    type: np.ndarray  # index into _TYPES
    parent: np.ndarray  # account index, -1 none, -2 a missing id
    family: np.ndarray  # root index of the account's family, -1 none
    dup_of: np.ndarray  # original's index for duplicates, -1 otherwise
    dup_same_domain: np.ndarray
    created: np.ndarray  # day numbers
    segment: np.ndarray  # index into policy segments
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    dirty: dict[str, int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)


_TYPES = ("Prospect", "Customer", "Former Customer", "Partner", "Other")
_IND_NAMES = tuple(names.INDUSTRIES)
_CTRY_NAMES = tuple(names.COUNTRIES)
_MALFORMED = ("N/A", "none", "-", "http://", "{slug} dot com", "www.{slug}", "{slug}", "info@{d}")


def _website(rng: np.random.Generator, domains: list[str]) -> list[str]:
    """Clean but variously formatted websites (all normalise to the domain)."""
    fmt = rng.choice(5, size=len(domains), p=[0.5, 0.1, 0.2, 0.15, 0.05])
    pats = ("https://www.{d}", "http://{d}", "www.{d}", "{d}", "https://{d}/")
    return [pats[f].format(d=d) for f, d in zip(fmt.tolist(), domains, strict=True)]


def _brand_names(rng: np.random.Generator, industry: np.ndarray, country: np.ndarray):
    """Unique (qualifier, head+tail, descriptor) names per industry, legal suffix per country."""
    q, h, t = names.BRAND_QUALIFIERS, names.BRAND_HEADS, names.BRAND_TAILS
    n = len(industry)
    brand = [""] * n
    name = [""] * n
    slug = [""] * n
    for k, ind in enumerate(_IND_NAMES):
        members = np.flatnonzero(industry == k)
        if not len(members):
            continue
        desc = names.INDUSTRIES[ind][1]
        space = len(q) * len(h) * len(t) * len(desc)
        combo = rng.choice(space, size=len(members), replace=len(members) > space)
        qi_, rest = combo % len(q), combo // len(q)
        hi, rest = rest % len(h), rest // len(h)
        ti, di = rest % len(t), rest // len(t)
        for m, a, b, c, d in zip(
            members.tolist(), qi_.tolist(), hi.tolist(), ti.tolist(), di.tolist(), strict=True
        ):
            core = h[b] + t[c]
            br = f"{q[a]} {core}" if q[a] else core
            brand[m] = br
            name[m] = f"{br} {desc[d]}"
            slug[m] = (q[a] + core + desc[d]).lower()
    legal_pick = rng.random(n)
    for i in range(n):
        suffixes = names.COUNTRIES[_CTRY_NAMES[country[i]]][2]
        if legal_pick[i] < 0.8:
            name[i] = f"{name[i]} {suffixes[int(legal_pick[i] / 0.8 * len(suffixes))]}"
    return brand, name, slug


def _make_accounts(
    store: CrmStore, rng: np.random.Generator, n: int, pol: _PolicyBits, a: int
) -> _Accounts:
    n_dup = int(round(n * RATES["duplicate_accounts"])) if n >= 50 else 0
    nb = n - n_dup
    ind_w = np.array([v[0] for v in names.INDUSTRIES.values()])
    ctry_w = np.array([v[0] for v in names.COUNTRIES.values()])
    industry = rng.choice(len(ind_w), size=nb, p=ind_w / ind_w.sum())
    country = rng.choice(len(ctry_w), size=nb, p=ctry_w / ctry_w.sum())
    brand, name, slug = _brand_names(rng, industry, country)
    tld_cc = rng.random(nb) < 0.5
    domain = []
    for i in range(nb):
        cc = names.COUNTRIES[_CTRY_NAMES[country[i]]][1]
        domain.append(f"{slug[i]}.{cc if (cc and tld_cc[i]) else 'com'}")
    _, first = np.unique(np.array(domain), return_index=True)
    clash = np.ones(nb, dtype=bool)
    clash[first] = False
    for i in np.flatnonzero(clash).tolist():  # rare: same slug from two word splits
        domain[i] = domain[i].replace(".", f"{i}.", 1)
    states = []
    st_pick = rng.random(nb)
    for i in range(nb):
        opts = names.COUNTRIES[_CTRY_NAMES[country[i]]][3]
        states.append(opts[int(st_pick[i] * len(opts))] if opts and st_pick[i] < 0.97 else None)
    # Employees log-normal (median 50); revenue = employees x revenue/employee (log-normal).
    employees = np.clip(np.round(np.exp(rng.normal(np.log(50), 1.8, size=nb))), 1, 400_000)
    revenue = np.round(employees * np.exp(rng.normal(np.log(150_000), 0.6, size=nb)), -3)
    # Type: u below the cumulative cut k -> _TYPES[k + 1]; above all cuts -> Prospect.
    cuts = np.cumsum([RATES[k] for k in ("customer", "former_customer", "partner", "other_type")])
    k = np.searchsorted(cuts, rng.random(nb), side="right")
    atype = np.where(k >= len(cuts), 0, k + 1)

    # Duplicates: copies of another account with a name variant; same or variant domain.
    orig = rng.choice(nb, size=n_dup, replace=False) if n_dup else np.zeros(0, dtype=np.int64)
    same = rng.random(n_dup) < RATES["duplicate_same_domain"]
    variant = rng.integers(5, size=n_dup)
    d_name, d_dom, d_web = [], [], []
    for j, o in enumerate(orig.tolist()):
        nm = name[o]
        d_name.append(
            (nm.upper(), f"{brand[o]}", f"The {nm}", f"{nm} (old)", nm.replace(" ", "  ", 1))[
                variant[j]
            ]
        )
        base, _, tld = domain[o].partition(".")
        if same[j]:
            d_dom.append(domain[o])
            d_web.append(
                (
                    f"http://{domain[o]}/",
                    f"WWW.{domain[o].upper()}",
                    f"https://www.{domain[o]}/home",
                )[j % 3]
            )
        else:
            alt = (
                f"{base}-inc.com",
                f"{base}.net",
                f"{base}.io",
                f"get{base}.com",
                f"{base}group.com",
            )[variant[j]]
            d_dom.append(alt)
            d_web.append(f"https://www.{alt}")
    website: list[str | None] = _website(rng, domain) + d_web
    name += d_name
    brand += [brand[o] for o in orig.tolist()]
    domain += d_dom
    industry = np.concatenate([industry, industry[orig]])
    country = np.concatenate([country, country[orig]])
    states += [states[o] for o in orig.tolist()]
    employees = np.concatenate([employees, employees[orig]])
    revenue = np.concatenate([revenue, revenue[orig]])
    atype = np.concatenate([atype, np.zeros(n_dup, dtype=atype.dtype)])
    dup_of = np.concatenate([np.full(nb, -1), orig]).astype(np.int64)
    dup_same = np.concatenate([np.zeros(nb, dtype=bool), same])
    in_dup = dup_of >= 0
    in_dup[orig] = True

    dirty: dict[str, int] = {
        "duplicate_accounts": n_dup,
        "duplicate_same_domain": int(same.sum()),
        "duplicate_domain_variant": int((~same).sum()),
    }
    # Dirty firmographics (mutually exclusive kinds, on any account).
    u = rng.random(n)
    r1, r2, r3 = RATES["employees_missing"], RATES["employees_zero"], RATES["employees_implausible"]
    miss, zero, huge = u < r1, (u >= r1) & (u < r1 + r2), (u >= r1 + r2) & (u < r1 + r2 + r3)
    employees[miss] = np.nan
    employees[zero] = 0
    employees[huge] = 10_000_000
    revenue[huge] = np.round(rng.uniform(20_000, 500_000, size=int(huge.sum())), -3)
    rev_miss = (rng.random(n) < RATES["revenue_missing"]) & ~huge
    revenue[rev_miss] = np.nan
    dirty |= {
        "employees_missing": int(miss.sum()),
        "employees_zero": int(zero.sum()),
        "employees_implausible": int(huge.sum()),
        "revenue_missing": int(rev_miss.sum()),
    }
    # Missing or malformed websites (not on duplicate pairs, whose websites carry the duplication).
    u = rng.random(n)
    w_miss = (u < RATES["websites_missing"]) & ~in_dup
    w_bad = (
        (u >= RATES["websites_missing"])
        & (u < RATES["websites_missing"] + RATES["websites_malformed"])
        & ~in_dup
    )
    bad_kind = rng.integers(len(_MALFORMED), size=n)
    for i in np.flatnonzero(w_miss).tolist():
        website[i] = None
    for i in np.flatnonzero(w_bad).tolist():
        website[i] = _MALFORMED[bad_kind[i]].format(slug=domain[i].partition(".")[0], d=domain[i])
    dirty |= {"websites_missing": int(w_miss.sum()), "websites_malformed": int(w_bad.sum())}

    # Created: most accounts are years old, 1% arrived in the last week; duplicates later.
    created = a - 30 - np.minimum(rng.exponential(700, size=n).astype(np.int64), 3000)
    fresh = rng.random(n) < 0.01
    created[fresh] = a - rng.integers(1, 8, size=int(fresh.sum()))
    dups = np.flatnonzero(dup_of >= 0)
    gap = np.maximum(1, a - 1 - created[dup_of[dups]])
    created[dups] = created[dup_of[dups]] + 1 + (rng.random(len(dups)) * (gap - 1)).astype(np.int64)
    created = np.minimum(created, a - 1)  # a duplicate of a brand-new account: same last day

    emp0 = np.nan_to_num(employees, nan=0.0)
    segment = np.where(emp0 >= 1000, 0, np.where(emp0 >= 100, 1, 2))
    segment = np.minimum(segment, len(pol.segments) - 1)
    acc = _Accounts(
        n=n,
        ids=store.new_ids("Account", n),
        missing_ids=[],
        name=name,
        brand=brand,
        domain=domain,
        website=website,
        industry=industry,
        country=country,
        state=states,
        employees=employees,
        revenue=revenue,
        type=atype,
        parent=np.full(n, -1, dtype=np.int64),
        family=np.full(n, -1, dtype=np.int64),
        dup_of=dup_of,
        dup_same_domain=dup_same,
        created=created,
        segment=segment,
        dirty=dirty,
    )
    return acc


def _make_families(rng: np.random.Generator, acc: _Accounts) -> None:
    """~10% of accounts in families: parents with 1-20 children, up to 4 levels; plus a few
    ParentId cycles (A->B->A) and ParentIds pointing at ids that do not exist."""
    n = acc.n
    eligible = np.flatnonzero(acc.dup_of < 0)
    target = int(round(n * RATES["family_share"]))
    sizes: list[int] = []
    total = 0
    while total < target and total < len(eligible) // 2:
        sizes.append(1 + min(20, int(rng.geometric(0.4))))  # parent + 1..20 children
        total += sizes[-1]
    if sizes:
        members_all = rng.choice(eligible, size=total, replace=False)
        emp = np.nan_to_num(acc.employees, nan=-1.0)
        pos = 0
        for size in sizes:
            mem = members_all[pos : pos + size]
            pos += size
            mem = mem[np.argsort(-emp[mem], kind="stable")]  # the biggest company is the root
            depth = np.zeros(size, dtype=np.int64)
            root = int(mem[0])
            acc.family[root] = root
            for j in range(1, size):
                cand = np.flatnonzero(depth[:j] < 3)
                p = int(cand[rng.integers(len(cand))])
                depth[j] = depth[p] + 1
                acc.parent[mem[j]] = mem[p]
                acc.family[mem[j]] = root
    free = np.flatnonzero((acc.family < 0) & (acc.dup_of < 0))
    n_pairs = _round_at_least(n * RATES["parent_cycle_pairs"], 1) if n >= 100 else 0
    n_missing = _round_at_least(n * RATES["parent_missing_ref"], 1) if n >= 100 else 0
    pick = rng.choice(free, size=2 * n_pairs + n_missing, replace=False)
    for k in range(n_pairs):
        x, y = int(pick[2 * k]), int(pick[2 * k + 1])
        acc.parent[x], acc.parent[y] = y, x
    acc.parent[pick[2 * n_pairs :]] = -2
    acc.dirty |= {"parent_cycle_accounts": 2 * n_pairs, "parent_missing_ref": n_missing}
    acc.stats |= {"families": len(sizes), "family_accounts": int((acc.family >= 0).sum())}


# ---------------------------------------------------------------------------- ownership + plan


def _assign_owners(
    rng: np.random.Generator, acc: _Accounts, users: _Users, pol: _PolicyBits
) -> None:
    """Customers to AEs; rep books near target (hoarders ~300); everything else to the pool."""
    n = acc.n
    owner = np.full(n, -1, dtype=np.int64)
    ae = users.ae_idx
    non_prospect = np.flatnonzero((acc.type == 1) | (acc.type >= 3))
    owner[non_prospect] = ae[rng.integers(len(ae), size=len(non_prospect))]
    ae_prospect = np.flatnonzero((acc.type == 0) & (rng.random(n) < RATES["ae_owned_prospect"]))
    owner[ae_prospect] = ae[rng.integers(len(ae), size=len(ae_prospect))]
    reps = users.rep_idx
    for s, seg in enumerate(pol.segments):
        seg_reps = [int(r) for r in reps if users.segment[r] == seg]
        avail = np.flatnonzero(
            (acc.type == 0) & (owner < 0) & (acc.segment == s) & (acc.dup_of < 0)
        )
        avail = rng.permutation(avail)
        sizes = []
        for r in seg_reps:
            target = pol.targets[users.role[r]]
            if users.archetype[r] == "hoarder":
                size = rng.normal(HOARDER_BOOK, 15)
            elif users.ramping[r]:
                size = target * pol.ramp_share * rng.uniform(0.3, 1.0)
            elif not users.active[r]:
                size = target * rng.uniform(0.5, 1.0)
            else:
                size = target * rng.uniform(0.85, 1.05)
            sizes.append(max(1, int(size)))
        # Small worlds: reps never take more than 60% of a segment's prospects.
        scale = min(1.0, 0.6 * len(avail) / max(1, sum(sizes)))
        pos = 0
        for r, size in zip(seg_reps, sizes, strict=True):
            k = int(size * scale)
            owner[avail[pos : pos + k]] = r
            pos += k
    rest = np.flatnonzero(owner < 0)
    owner[rest] = users.pool_idx[rng.integers(len(users.pool_idx), size=len(rest))]
    # Families mostly follow their root's owner (the hierarchy rule); some are split.
    keep = rng.random(n) < RATES["family_same_owner"]
    fam = np.flatnonzero((acc.family >= 0) & (acc.family != np.arange(n)))
    fam = fam[keep[acc.family[fam]]]
    owner[fam] = owner[acc.family[fam]]
    # Duplicates usually sit with someone else than their original: the pool or another rep.
    dups = np.flatnonzero(acc.dup_of >= 0)
    to_rep = rng.random(len(dups)) < 0.4
    owner[dups] = users.pool_idx[rng.integers(len(users.pool_idx), size=len(dups))]
    owner[dups[to_rep]] = reps[rng.integers(len(reps), size=int(to_rep.sum()))]
    acc.owner = owner


@dataclass
class _Plan:
    """Per-account activity plan and CRM state; activities are drawn from it chunk by chunk."""

    kind: np.ndarray  # owner kind: 0 rep, 1 pool, 2 AE/admin
    arche: np.ndarray  # archetype index of the owning rep, -1 otherwise
    dist: np.ndarray  # distribution day or NULL
    t_start: np.ndarray
    t_end: np.ndarray  # last manual touch day or NULL
    act_owner: np.ndarray  # user index doing manual touches
    c_man: np.ndarray
    c_seq: np.ndarray
    c_in: np.ndarray
    c_mkt: np.ndarray
    worked: np.ndarray
    open_opp: np.ndarray
    lost_opp: np.ndarray
    n_contacts: np.ndarray


def _plan(rng: np.random.Generator, acc: _Accounts, users: _Users, a: int, months: int) -> _Plan:
    n = acc.n
    window = int(round(months * 365.25 / 12))
    w0 = a - window
    role = np.array(users.role)
    o_role = role[acc.owner]
    kind = np.where(np.isin(o_role, ["SDR", "BDR"]), 0, np.where(o_role == "Pool", 1, 2))
    arche_u = np.array([ARCHETYPES.index(x) if x else -1 for x in users.archetype])
    arche = np.where(kind == 0, arche_u[acc.owner], -1)
    rep_acc = kind == 0
    book = np.bincount(acc.owner, minlength=len(users.ids))
    o_active = users.active[acc.owner]
    o_ramping = users.ramping[acc.owner]

    p_worked = np.zeros(n)
    p_worked[arche == 0] = _P_WORKED["normal"]
    p_worked[arche == 1] = _P_WORKED["diligent"]
    hoard = arche == 2
    p_worked[hoard] = np.minimum(1.0, HOARDER_TOUCHED / np.maximum(1, book[acc.owner[hoard]]))
    p_worked[rep_acc & o_ramping] = 0.85
    worked = rep_acc & o_active & (rng.random(n) < p_worked)

    # Distribution dates: hoarders mostly hold legacy territory (no date), ramping reps got
    # their book after starting, inactive reps long ago.
    dist = np.full(n, NULL, dtype=np.int64)
    dist[rep_acc] = a - rng.integers(1, 241, size=int(rep_acc.sum()))
    h_old = hoard & (rng.random(n) < 0.3)
    dist[h_old] = a - rng.integers(400, 900, size=int(h_old.sum()))
    dist[hoard & ~h_old] = NULL
    inact = rep_acc & ~o_active
    dist[inact] = a - rng.integers(120, 400, size=int(inact.sum()))
    ramp = rep_acc & o_ramping
    dist[ramp] = a - rng.integers(1, 60, size=int(ramp.sum()))
    dist = np.where(dist == NULL, NULL, np.maximum(dist, acc.created))

    # Last manual touch.
    t_end = np.full(n, NULL, dtype=np.int64)
    recent = a - np.minimum(rng.geometric(1 / 7, size=n), 28)
    t_end[worked] = recent[worked]
    old = rep_acc & o_active & ~worked & (rng.random(n) < 0.6)
    t_end[old] = a - rng.integers(31, 300, size=int(old.sum()))
    deact = a - rng.integers(30, 120, size=len(users.ids))
    gone = inact & (rng.random(n) < 0.7)
    t_end[gone] = deact[acc.owner[gone]] - rng.integers(0, 60, size=int(gone.sum()))
    ae_acc = (kind == 2) & (acc.type == 1)
    ae_touch = ae_acc & (rng.random(n) < 0.9)
    t_end[ae_touch] = a - np.minimum(rng.geometric(1 / 12, size=int(ae_touch.sum())), window)
    other = ((kind == 1) | ((kind == 2) & ~ae_acc)) & (rng.random(n) < 0.15)
    t_end[other] = a - rng.integers(60, max(61, window), size=int(other.sum()))
    t_start = np.maximum(w0, acc.created)
    t_start = np.where(rep_acc & (dist != NULL), np.maximum(t_start, dist), t_start)
    has = (t_end != NULL) & (t_end >= t_start)
    t_end[~has & (t_end != NULL) & (t_end < t_start)] = NULL
    t_end = np.minimum(t_end, a - 1)

    # Who does the manual touches: the owner; on pool accounts a former owner (a rep).
    act_owner = acc.owner.copy()
    pool_like = kind != 0
    prev = users.rep_idx[rng.integers(len(users.rep_idx), size=n)]
    act_owner[pool_like & ~ae_acc] = prev[pool_like & ~ae_acc]

    rate = np.full(n, 0.5)
    for k, name in enumerate(ARCHETYPES):
        rate[arche == k] = _MANUAL_RATE[name]
    rate[ae_acc] = 1.5
    rate[~worked & rep_acc] = 0.7
    span = np.maximum(0, t_end - t_start + 1) / 30.44
    c_man = np.where(has, 1 + rng.poisson(rate * span), 0)
    seq_rate = np.zeros(n)
    for k, name in enumerate(ARCHETYPES):
        seq_rate[worked & (arche == k)] = _SEQ_RATE[name]
    c_seq = rng.poisson(seq_rate * np.maximum(0, a - t_start) / 30.44)
    c_in = rng.poisson(_INBOUND_REPLY_RATE * (0.35 * c_man + 0.85 * c_seq))
    mkt_span = np.maximum(0, a - np.maximum(w0, acc.created)) / 30.44
    target = RATES["activities_per_account_year"] * n * months / 12
    rest = target - float(c_man.sum() + c_seq.sum() + c_in.sum())
    m_rate = max(_MARKETING_FLOOR, rest / max(1.0, float(mkt_span.sum())))
    c_mkt = rng.poisson(m_rate * mkt_span)

    prospect = (acc.type == 0) & (acc.dup_of < 0)
    u = rng.random(n)
    bias = np.where(rep_acc, 1.75, 0.4)  # open opportunities sit mostly on worked books
    open_opp = prospect & (u < RATES["open_opportunity_prospect"] * bias)
    lost_opp = prospect & ~open_opp & (rng.random(n) < RATES["lost_opportunity_prospect"])

    emp = np.nan_to_num(acc.employees, nan=20.0)
    lam = 0.6 + 0.35 * np.log10(np.clip(emp, 1, 1e6))
    n_contacts = np.where(rng.random(n) < 0.08, 0, 1 + rng.poisson(lam))
    return _Plan(
        kind=kind, arche=arche, dist=dist, t_start=t_start, t_end=t_end, act_owner=act_owner,
        c_man=c_man, c_seq=c_seq, c_in=c_in, c_mkt=c_mkt, worked=worked, open_opp=open_opp,
        lost_opp=lost_opp, n_contacts=n_contacts,
    )  # fmt: skip


# ---------------------------------------------------------------------------- account state


def _write_accounts(
    store: CrmStore,
    rng: np.random.Generator,
    acc: _Accounts,
    plan: _Plan,
    users: _Users,
    pol: _PolicyBits,
    a: int,
) -> dict[str, int]:
    """Book fields as a previous run of the product would have left them; then write rows."""
    n = acc.n
    status = np.full(n, "", dtype=object)
    last_touch = np.where(plan.t_end != NULL, plan.t_end, NULL)
    dist = plan.dist.copy()
    dist_reason = np.full(n, None, dtype=object)
    ret_date = np.full(n, NULL, dtype=np.int64)
    ret_reason = np.full(n, None, dtype=object)
    rest_until = np.full(n, NULL, dtype=np.int64)
    get_back = np.full(n, NULL, dtype=np.int64)
    req = np.full(n, None, dtype=object)
    req_by = np.full(n, -1, dtype=np.int64)

    rep = plan.kind == 0
    converted = plan.open_opp | (acc.type == 1)
    working = (plan.t_end >= a - 30) | ((dist != NULL) & (dist >= a - 14))
    status[rep] = np.where(working[rep], "working", "stale")
    reasons = np.array(["fit", "intent", "inbound_lead"], dtype=object)
    has_dist = dist != NULL
    dist_reason[has_dist] = reasons[rng.choice(3, size=int(has_dist.sum()), p=[0.7, 0.2, 0.1])]

    pool = np.flatnonzero(plan.kind == 1)
    u = rng.random(len(pool))
    status[pool] = "ready"
    resting = pool[u < 0.08]
    review = pool[(u >= 0.08) & (u < 0.10)]
    retired = pool[(u >= 0.10) & (u < 0.13)]
    status[resting] = "resting"
    why = np.array(["retrieved", "not_now", "no_response", "duplicate", "get_back_to_me"])
    kinds = why[rng.choice(5, size=len(resting), p=[0.4, 0.25, 0.2, 0.05, 0.1])]
    for i, k in zip(resting.tolist(), kinds.tolist(), strict=True):
        if k == "get_back_to_me":
            get_back[i] = a + int(rng.integers(1, 121))
            ret_date[i] = a - int(rng.integers(1, 61))
            rest_until[i] = get_back[i]
        else:
            days = max(2, pol.rest_days[k])
            ret_date[i] = a - int(rng.integers(1, days))
            rest_until[i] = ret_date[i] + days
        ret_reason[i] = None if k == "retrieved" else k
    status[review] = "review"
    ret_reason[review] = "bad_data"
    ret_date[review] = a - rng.integers(1, 91, size=len(review))
    status[retired] = "retired"
    ret_reason[retired] = "disqualified"
    ret_date[retired] = a - rng.integers(1, 401, size=len(retired))
    other = plan.kind == 2
    status[other] = "excluded"
    status[converted & (rep | other)] = "converted"
    fresh = acc.created >= a - 7  # arrived after the last run: not classified yet
    status[fresh] = ""
    dist[fresh] = NULL
    dist_reason[fresh] = None

    renewal = rng.random(n) < RATES["competitor_renewal"]
    comp = np.where(renewal, a + rng.integers(-60, 366, size=n), NULL)
    extra_gb = rep & (rng.random(n) < 0.01)
    get_back[extra_gb] = a + rng.integers(-10, 121, size=int(extra_gb.sum()))

    # Pending return requests: a handful by the owner, a few by someone else (invalid, R9).
    candidates = np.flatnonzero(rep & users.active[acc.owner] & ~converted)
    n_req = min(len(candidates), _round_at_least(n * 0.001, 3))
    n_bad = min(len(candidates) - n_req, max(1, n_req // 4))
    chosen = rng.choice(candidates, size=n_req + n_bad, replace=False)
    reasons_rr = np.array(RETURN_REASONS, dtype=object)
    req[chosen] = reasons_rr[rng.integers(len(RETURN_REASONS), size=len(chosen))]
    by_owner, by_other = chosen[:n_req], chosen[n_req:]
    req_by[by_owner] = acc.owner[by_owner]
    for i in by_other.tolist():
        others = users.rep_idx[users.rep_idx != acc.owner[i]]
        req_by[i] = others[rng.integers(len(others))]
    gb_req = chosen[req[chosen] == "get_back_to_me"]
    get_back[gb_req] = a + rng.integers(14, 121, size=len(gb_req))

    emp = acc.employees
    ind_bonus = np.isin(
        np.array(_IND_NAMES)[acc.industry], ["Software", "Financial Services", "Healthcare"]
    )
    fit = 35 + 8 * (np.log10(np.clip(np.nan_to_num(emp, nan=50.0), 1, 1e7)) - 1.7) + 15 * ind_bonus
    fit = np.clip(np.round(fit + rng.normal(0, 10, size=n), 1), 0, 100)
    fit_null = rng.random(n) < 0.1

    c_secs = acc.created * DAY + rng.integers(0, DAY, size=n)
    m_secs = np.maximum(
        c_secs, (a - rng.integers(1, 91, size=n)) * DAY + rng.integers(0, DAY, size=n)
    )
    m_secs = np.where(acc.created >= a - 1, c_secs, np.minimum(m_secs, a * DAY - 1))
    parent_ids: list[str | None] = []
    missing_pos = 0
    for p in acc.parent.tolist():
        if p == -1:
            parent_ids.append(None)
        elif p == -2:
            parent_ids.append(acc.missing_ids[missing_pos % len(acc.missing_ids)])
            missing_pos += 1
        else:
            parent_ids.append(acc.ids[p])
    emp_null = np.isnan(emp)
    rev_null = np.isnan(acc.revenue)
    for lo in range(0, n, ROW_CHUNK):
        sl = slice(lo, min(n, lo + ROW_CHUNK))
        stamps = _stamps(m_secs[sl])
        _load(
            store,
            "Account",
            {
                "Id": acc.ids[sl],
                "IsDeleted": [0] * (sl.stop - sl.start),
                "CreatedDate": _stamps(c_secs[sl]),
                "LastModifiedDate": stamps,
                "SystemModstamp": stamps,
                "OwnerId": [users.ids[o] for o in acc.owner[sl].tolist()],
                "Name": acc.name[sl],
                "Website": acc.website[sl],
                "Industry": _pick(_IND_NAMES, acc.industry[sl]),
                "NumberOfEmployees": _nullable(
                    np.nan_to_num(emp[sl]).astype(np.int64), emp_null[sl]
                ),
                "AnnualRevenue": _nullable(np.nan_to_num(acc.revenue[sl]), rev_null[sl]),
                "BillingCountry": _pick(_CTRY_NAMES, acc.country[sl]),
                "BillingState": acc.state[sl],
                "ParentId": parent_ids[sl],
                "Type": _pick(_TYPES, acc.type[sl]),
                "Book_Status__c": [x or None for x in status[sl].tolist()],
                "Last_Touch_Date__c": _dates(last_touch[sl]),
                "Distribution_Date__c": _dates(dist[sl]),
                "Distribution_Reason__c": dist_reason[sl].tolist(),
                "Return_Date__c": _dates(ret_date[sl]),
                "Return_Reason__c": ret_reason[sl].tolist(),
                "Rest_Until__c": _dates(rest_until[sl]),
                "Return_Requested__c": req[sl].tolist(),
                "Return_Requested_By__c": [
                    users.ids[x] if x >= 0 else None for x in req_by[sl].tolist()
                ],
                "Get_Back_Date__c": _dates(get_back[sl]),
                "Competitor_Renewal_Date__c": _dates(comp[sl]),
                "External_Fit_Score__c": _nullable(fit[sl], fit_null[sl]),
            },
        )
    counts = {
        s: int((status == s).sum())
        for s in (
            "working",
            "stale",
            "ready",
            "resting",
            "review",
            "retired",
            "converted",
            "excluded",
        )
    }
    counts["unclassified"] = int((status == "").sum())
    return {
        "return_requests_by_owner": int(n_req),
        "return_requests_by_non_owner": int(n_bad),
        **{f"status_{k}": v for k, v in counts.items()},
        "competitor_renewal_dates": int(renewal.sum()),
        "get_back_dates": int((get_back != NULL).sum()),
    }


# ---------------------------------------------------------------------------- contacts + activities

_ACT_TYPES = ("Call", "Email", "Meeting", "LinkedIn", "Other")
_KIND_TYPE_P = (  # manual, sequence, inbound reply, marketing -> P(type) in _ACT_TYPES order
    (0.40, 0.33, 0.08, 0.15, 0.04),
    (0.05, 0.85, 0.0, 0.10, 0.0),
    (0.10, 0.90, 0.0, 0.0, 0.0),
    (0.0, 0.80, 0.0, 0.0, 0.20),
)
_SUBJECT = {
    0: {
        "Call": "Call",
        "Email": "Email",
        "Meeting": "Discovery meeting",
        "LinkedIn": "LinkedIn message",
        "Other": "Follow-up",
    },
    1: {t: f"Sequence step: {t}" for t in _ACT_TYPES},
    2: {"Call": "Inbound call", "Email": "Reply: Re: quick question"},
    3: {"Email": "Newsletter", "Other": "Webinar invite"},
}
_SOURCES = ("Manual", "Sequence", "Integration", "Marketing")


@dataclass
class _EngagementSink:
    """Recent rep activities the engagement platform also exports (collected while streaming)."""

    since: int
    parts: list[dict[str, np.ndarray | list]] = field(default_factory=list)


def _write_contacts_and_activities(
    store: CrmStore,
    rng: np.random.Generator,
    acc: _Accounts,
    plan: _Plan,
    users: _Users,
    a: int,
    months: int,
    sink: _EngagementSink,
    progress: Progress | None,
) -> dict[str, int]:
    n = acc.n
    w0 = a - int(round(months * 365.25 / 12))
    is_rep_user = np.isin(np.array(users.role), ["SDR", "BDR"])
    out = {"Contact": 0, "Task": 0, "Event": 0, "contacts_missing_account": 0,
           "task_missing_account": 0, "event_missing_account": 0, "archived": 0}  # fmt: skip
    user_ids = np.array(users.ids, dtype=object)
    for lo in range(0, n, ACCOUNT_CHUNK):
        hi = min(n, lo + ACCOUNT_CHUNK)
        idx = np.arange(lo, hi)
        # Contacts: a few per account, the first one (and sometimes a second) a key contact.
        nc = plan.n_contacts[lo:hi]
        total = int(nc.sum())
        c_acc = np.repeat(idx, nc)
        starts = np.cumsum(nc) - nc
        pos = np.arange(total) - np.repeat(starts, nc)
        c_ids = store.new_ids("Contact", total)
        fi = rng.integers(len(names.FIRST_NAMES), size=total)
        li = rng.integers(len(names.LAST_NAMES), size=total)
        key = (pos == 0) | ((pos == 1) & (rng.random(total) < 0.3))
        ti = rng.integers(100, size=total)
        first = _pick(names.FIRST_NAMES, fi)
        last = _pick(names.LAST_NAMES, li)
        no_mail = rng.random(total) < 0.1
        emails = [
            None if nm else f"{f}.{la}@{acc.domain[i]}".lower()
            for f, la, i, nm in zip(first, last, c_acc.tolist(), no_mail.tolist(), strict=True)
        ]
        titles = [
            names.KEY_TITLES[t % len(names.KEY_TITLES)]
            if k
            else names.OTHER_TITLES[t % len(names.OTHER_TITLES)]
            for k, t in zip(key.tolist(), ti.tolist(), strict=True)
        ]
        orphan = rng.random(total) < RATES["contacts_missing_account"]
        c_day = acc.created[c_acc] + (rng.random(total) * (a - acc.created[c_acc])).astype(np.int64)
        c_secs = np.minimum(c_day * DAY + rng.integers(0, DAY, size=total), a * DAY - 1)
        acc_ids = [
            acc.missing_ids[0] if o else acc.ids[i]
            for i, o in zip(c_acc.tolist(), orphan.tolist(), strict=True)
        ]
        stamps = _stamps(c_secs)
        out["Contact"] += _load(store, "Contact", {
            "Id": c_ids, "IsDeleted": [0] * total, "CreatedDate": stamps,
            "LastModifiedDate": stamps, "SystemModstamp": stamps,
            "OwnerId": user_ids[acc.owner[c_acc]].tolist(), "AccountId": acc_ids,
            "FirstName": first, "LastName": last, "Email": emails, "Title": titles,
            "Is_Key_Contact__c": key.astype(int).tolist(),
        })  # fmt: skip
        out["contacts_missing_account"] += int(orphan.sum())

        # Activities of four kinds, drawn from the plan.
        counts = (plan.c_man[lo:hi], plan.c_seq[lo:hi], plan.c_in[lo:hi], plan.c_mkt[lo:hi])
        accs, days, kinds, types = [], [], [], []
        for k, cnt in enumerate(counts):
            ak = np.repeat(idx, cnt)
            m = len(ak)
            if k == 0:
                t0, t1 = plan.t_start[ak], plan.t_end[ak]
                d = t0 + (rng.random(m) * (t1 - t0 + 1)).astype(np.int64)
                first_of = np.cumsum(cnt) - cnt
                d[first_of[cnt > 0]] = plan.t_end[idx[cnt > 0]]  # the last touch is on t_end
            elif k == 3:
                t0 = np.maximum(w0, acc.created[ak])
                d = t0 + (rng.random(m) * (a - t0)).astype(np.int64)
            else:
                t0 = plan.t_start[ak]
                d = t0 + (rng.random(m) * (a - t0)).astype(np.int64)
            accs.append(ak)
            days.append(np.minimum(d, a - 1))
            kinds.append(np.full(m, k))
            types.append(rng.choice(5, size=m, p=_KIND_TYPE_P[k]))
        ak = np.concatenate(accs)
        day = np.concatenate(days)
        kind = np.concatenate(kinds)
        typ = np.concatenate(types)
        m = len(ak)
        secs = day * DAY + rng.integers(7 * 3600, 19 * 3600, size=m)
        order = np.argsort(secs, kind="stable")
        ak, day, kind, typ, secs = ak[order], day[order], kind[order], typ[order], secs[order]
        integ = (kind == 2) & (rng.random(m) < 0.7)
        source = np.where(
            kind == 0, 0, np.where(kind == 1, 1, np.where(kind == 3, 3, np.where(integ, 2, 0)))
        )
        automated = (kind == 1) | (kind == 3) | integ
        owner = np.where(
            kind == 3, users.admin, np.where(kind == 1, acc.owner[ak], plan.act_owner[ak])
        )
        ncon = plan.n_contacts[ak]
        who_pos = starts[ak - lo] + (rng.random(m) * ncon).astype(np.int64)
        no_who = (ncon == 0) | ((kind == 3) & (rng.random(m) < 0.5))
        c_ids_arr = np.array(c_ids + [None], dtype=object)
        who = c_ids_arr[np.where(no_who, total, who_pos)]
        missing = rng.random(m) < RATES["activities_missing_account"]
        acc_ref = np.array(acc.ids, dtype=object)[ak]
        acc_ref[missing] = acc.missing_ids[-1]
        archived = day < a - 365
        out["archived"] += int(archived.sum())
        subj = [
            _SUBJECT[k].get(_ACT_TYPES[t], _ACT_TYPES[t])
            for k, t in zip(kind.tolist(), typ.tolist(), strict=True)
        ]
        is_event = typ == _ACT_TYPES.index("Meeting")
        for obj, sel in (("Task", ~is_event), ("Event", is_event)):
            rows = np.flatnonzero(sel)
            k = len(rows)
            if not k:
                continue
            ids = store.new_ids(obj, k)
            stamps = _stamps(secs[rows])
            cols: dict[str, list[Any]] = {
                "Id": ids, "IsDeleted": [0] * k, "CreatedDate": stamps,
                "LastModifiedDate": stamps, "SystemModstamp": stamps,
                "OwnerId": user_ids[owner[rows]].tolist(),
                "AccountId": acc_ref[rows].tolist(), "WhatId": acc_ref[rows].tolist(),
                "WhoId": who[rows].tolist(), "Subject": [subj[r] for r in rows.tolist()],
                "Type": _pick(_ACT_TYPES, typ[rows]), "ActivityDate": _dates(day[rows]),
                "IsArchived": archived[rows].astype(int).tolist(),
                "Direction__c": np.where(kind[rows] == 2, "Inbound", "Outbound").tolist(),
                "Is_Automated__c": automated[rows].astype(int).tolist(),
                "Source__c": _pick(_SOURCES, source[rows]),
            }  # fmt: skip
            if obj == "Task":
                cols["Status"] = ["Completed"] * k
            out[obj] += _load(store, obj, cols)
            out[f"{obj.lower()}_missing_account"] += int(missing[rows].sum())
        # Recent rep work (not marketing) that the engagement platform exports as well.
        eng = (day >= sink.since) & (kind != 3) & is_rep_user[owner] & ~missing & (typ != 2)
        if eng.any():
            c_email = np.array(emails + [None], dtype=object)
            sel = np.flatnonzero(eng)
            sink.parts.append({
                "acc": ak[sel], "contact_email": c_email[np.where(no_who[sel], total, who_pos[sel])],
                "rep": owner[sel], "type": typ[sel], "inbound": kind[sel] == 2,
                "automated": automated[sel], "secs": secs[sel],
            })  # fmt: skip
        if progress:
            progress("contacts+activities", hi, n)
    return out


# ---------------------------------------------------------------------------- leads


def _lead_website_variant(rng: np.random.Generator, domain: str) -> tuple[str | None, str]:
    """(Website, email domain) that match `domain` only after normalisation."""
    k = int(rng.integers(6))
    sub = ("shop", "app", "eu", "info", "go")[int(rng.integers(5))]
    web = (
        f"https://WWW.{domain.upper()}/",
        f"http://{domain}/contact-us",
        f"www.{domain}",
        f"https://{sub}.{domain}",
        f"HTTP://{domain}",
        None,
    )[k]
    mail = (domain, domain.upper(), f"mail.{domain}", domain)[int(rng.integers(4))]
    return web, mail


def _write_leads(
    store: CrmStore, rng: np.random.Generator, acc: _Accounts, users: _Users, a: int, months: int
) -> dict[str, int]:
    n_leads = int(round(acc.n * RATES["leads_per_account"]))
    cats = list(LEAD_MIX)
    cat = rng.choice(len(cats), size=n_leads, p=np.array(list(LEAD_MIX.values())))
    same_dups = np.flatnonzero(acc.dup_same_domain)
    if not len(same_dups):
        cat[cat == cats.index("ambiguous")] = cats.index("domain")
    clean = np.flatnonzero((acc.dup_of < 0) & ~np.isin(np.arange(acc.n), acc.dup_of))
    window = int(round(months * 365.25 / 12))
    first = _pick(names.FIRST_NAMES, rng.integers(len(names.FIRST_NAMES), size=n_leads))
    last = _pick(names.LAST_NAMES, rng.integers(len(names.LAST_NAMES), size=n_leads))
    rows: dict[str, list[Any]] = {
        k: []
        for k in ("Company", "Email", "Website", "Status", "IsConverted", "ConvertedAccountId")
    }
    for j, c in enumerate(cat.tolist()):
        person = f"{first[j]}.{last[j]}".lower()
        status, converted, conv_acc = ("Open", "Working", "Open", "Disqualified")[j % 4], 0, None
        kind = cats[c]
        if kind == "domain":
            i = int(clean[rng.integers(len(clean))])
            web, mail = _lead_website_variant(rng, acc.domain[i])
            company = (acc.brand[i], acc.name[i], acc.brand[i].upper())[j % 3]
            if rng.random() < 0.1:
                status, converted, conv_acc = "Converted", 1, acc.ids[i]
        elif kind == "name_only":
            i = int(clean[rng.integers(len(clean))])
            web, mail = None, names.FREE_MAIL_DOMAINS[j % len(names.FREE_MAIL_DOMAINS)]
            company = (
                acc.name[i],
                acc.name[i].upper(),
                acc.brand[i],
                acc.name[i].replace(" ", ", ", 1),
            )[j % 4]
        elif kind == "ambiguous":
            d = int(same_dups[rng.integers(len(same_dups))])
            web, mail = _lead_website_variant(rng, acc.domain[d])
            company = acc.brand[d]
        else:
            w = names.UNKNOWN_COMPANY_WORDS[int(rng.integers(len(names.UNKNOWN_COMPANY_WORDS)))]
            sfx = names.UNKNOWN_COMPANY_SUFFIXES[
                int(rng.integers(len(names.UNKNOWN_COMPANY_SUFFIXES)))
            ]
            dom = f"{w}{sfx}{int(rng.integers(1, 1000))}.com".lower()
            if kind == "unmatched":
                company, web, mail = f"{w} {sfx}", f"https://www.{dom}", dom
            else:
                company = ("Self-employed", "N/A", f"{w} {sfx}")[j % 3]
                web, mail = None, names.FREE_MAIL_DOMAINS[j % len(names.FREE_MAIL_DOMAINS)]
        rows["Company"].append(company)
        rows["Email"].append(f"{person}@{mail}")
        rows["Website"].append(web)
        rows["Status"].append(status)
        rows["IsConverted"].append(converted)
        rows["ConvertedAccountId"].append(conv_acc)
    age = np.minimum(rng.exponential(60, size=n_leads).astype(np.int64), window - 1)
    secs = (a - 1 - age) * DAY + rng.integers(0, DAY, size=n_leads)
    order = np.argsort(secs, kind="stable")  # ids follow creation time
    owner = np.where(
        rng.random(n_leads) < 0.7,
        users.pool_idx[rng.integers(len(users.pool_idx), size=n_leads)],
        users.rep_idx[rng.integers(len(users.rep_idx), size=n_leads)],
    )
    src_p = np.array([0.45, 0.15, 0.2, 0.1, 0.05, 0.05])
    src = rng.choice(len(LEAD_SOURCES), size=n_leads, p=src_p / src_p.sum())
    stamps = _stamps(secs[order])
    o = order.tolist()
    _load(store, "Lead", {
        "Id": store.new_ids("Lead", n_leads), "IsDeleted": [0] * n_leads, "CreatedDate": stamps,
        "LastModifiedDate": stamps, "SystemModstamp": stamps,
        "OwnerId": [users.ids[owner[i]] for i in o], "FirstName": [first[i] for i in o],
        "LastName": [last[i] for i in o], "Company": [rows["Company"][i] for i in o],
        "Email": [rows["Email"][i] for i in o], "Website": [rows["Website"][i] for i in o],
        "LeadSource": [LEAD_SOURCES[src[i]] for i in o], "Status": [rows["Status"][i] for i in o],
        "IsConverted": [rows["IsConverted"][i] for i in o],
        "ConvertedAccountId": [rows["ConvertedAccountId"][i] for i in o],
    })  # fmt: skip
    return {k: int((cat == i).sum()) for i, k in enumerate(cats)}


# ---------------------------------------------------------------------------- opportunities


def _write_opportunities(
    store: CrmStore, rng: np.random.Generator, acc: _Accounts, plan: _Plan, users: _Users, a: int
) -> dict[str, int]:
    """Won deals on customers (and former customers), open deals on some prospects (a few
    hoarded: close date pushed 3+ times), lost deals on others."""
    won_acc = np.flatnonzero(np.isin(acc.type, [1, 2]))
    n_won = 1 + rng.poisson(0.6, size=len(won_acc))
    w_acc = np.repeat(won_acc, n_won)
    o_acc = np.flatnonzero(plan.open_opp)
    l_acc = np.flatnonzero(plan.lost_opp)
    acc_i = np.concatenate([w_acc, o_acc, l_acc])
    stage_k = np.concatenate(
        [np.full(len(w_acc), 4), rng.integers(0, 4, size=len(o_acc)), np.full(len(l_acc), 5)]
    )
    m = len(acc_i)
    stages = (
        "Prospecting",
        "Qualification",
        "Proposal",
        "Negotiation",
        "Closed Won",
        "Closed Lost",
    )
    closed = stage_k >= 4
    close = np.where(closed, a - rng.integers(30, 1100, size=m), a + rng.integers(-30, 121, size=m))
    former = acc.type[acc_i] == 2
    close[former & closed] = a - rng.integers(400, 1500, size=int((former & closed).sum()))
    created = np.maximum(acc.created[acc_i], close - rng.integers(20, 200, size=m))
    created = np.minimum(created, a - 1)
    push = np.zeros(m, dtype=np.int64)
    is_open = ~closed
    u = rng.random(m)
    hoarder_acc = plan.arche[acc_i] == 2
    push[is_open & (u < 0.2)] = 1
    push[is_open & (u >= 0.2) & (u < 0.3)] = 2
    hoarded = is_open & ((u >= 0.9) | (hoarder_acc & (u >= 0.5)))
    push[hoarded] = rng.integers(3, 9, size=int(hoarded.sum()))
    push[closed] = rng.choice(3, size=int(closed.sum()), p=[0.7, 0.2, 0.1])
    emp = np.clip(np.nan_to_num(acc.employees[acc_i], nan=50.0), 1, 1e5)
    amount = np.round(np.exp(rng.normal(np.log(40_000), 0.8, size=m)) * (emp / 50) ** 0.15, -2)
    ae = users.ae_idx
    owner = np.where(rng.random(m) < 0.6, ae[rng.integers(len(ae), size=m)], acc.owner[acc_i])
    owner = np.where(plan.kind[acc_i] == 0, owner, ae[rng.integers(len(ae), size=m)])
    kinds = rng.integers(len(names.OPPORTUNITY_KINDS), size=m)
    c_secs = created * DAY + rng.integers(0, DAY, size=m)
    m_secs = np.maximum(c_secs, np.minimum(close, a - 1) * DAY + rng.integers(0, DAY, size=m))
    m_secs = np.minimum(m_secs, a * DAY - 1)
    _load(store, "Opportunity", {
        "Id": store.new_ids("Opportunity", m), "IsDeleted": [0] * m,
        "CreatedDate": _stamps(c_secs), "LastModifiedDate": _stamps(m_secs),
        "SystemModstamp": _stamps(m_secs), "OwnerId": [users.ids[o] for o in owner.tolist()],
        "AccountId": [acc.ids[i] for i in acc_i.tolist()],
        "Name": [f"{acc.brand[i]} - {names.OPPORTUNITY_KINDS[k]}" for i, k in zip(acc_i.tolist(), kinds.tolist(), strict=True)],
        "StageName": _pick(stages, stage_k), "Amount": amount.tolist(),
        "CloseDate": _dates(close), "IsClosed": closed.astype(int).tolist(),
        "IsWon": (stage_k == 4).astype(int).tolist(), "Close_Date_Push_Count__c": push.tolist(),
    })  # fmt: skip
    return {
        "Opportunity": m,
        "hoarded_opportunities": int(hoarded.sum()),
        "open_opportunities": int(is_open.sum()),
    }


# ---------------------------------------------------------------------------- signals


def _write_signals(
    store: CrmStore, rng: np.random.Generator, acc: _Accounts, users: _Users, a: int
) -> dict[str, int]:
    n_sig = max(len(SIGNAL_TYPES), int(round(acc.n * RATES["signals_per_account"])))
    p = np.array([0.35, 0.08, 0.12, 0.10, 0.25, 0.10])[: len(SIGNAL_TYPES)]
    typ = rng.choice(len(SIGNAL_TYPES), size=n_sig, p=p / p.sum())
    typ[: len(SIGNAL_TYPES)] = np.arange(len(SIGNAL_TYPES))  # every type appears
    acc_i = rng.integers(acc.n, size=n_sig)
    day = a - 1 - np.minimum(rng.exponential(30, size=n_sig).astype(np.int64), 180)
    score = np.round(rng.uniform(0, 100, size=n_sig), 1)
    topics: list[str | None] = []
    details: list[str | None] = []
    scores: list[float | None] = []
    for j, t in enumerate(typ.tolist()):
        kind = SIGNAL_TYPES[t]
        topic, detail, sc = None, None, None
        if kind == "intent_surge":
            topic = names.INTENT_TOPICS[j % len(names.INTENT_TOPICS)]
            sc = float(50 + score[j] / 2)
        elif kind == "marketing_score":
            sc = float(score[j])
        elif kind == "funding":
            detail = f"Series {'ABCD'[j % 4]}: ${5 + j % 95}M"
        elif kind in ("new_key_contact", "poc_change"):
            detail = f"New {names.KEY_TITLES[j % len(names.KEY_TITLES)]}"
        else:
            detail = "Hiring SDRs"
        topics.append(topic)
        details.append(detail)
        scores.append(sc)
    order = np.argsort(day, kind="stable")
    secs = day[order] * DAY + rng.integers(0, DAY, size=n_sig)
    stamps = _stamps(secs)
    o = order.tolist()
    _load(store, "Signal__c", {
        "Id": store.new_ids("Signal__c", n_sig), "IsDeleted": [0] * n_sig, "CreatedDate": stamps,
        "LastModifiedDate": stamps, "SystemModstamp": stamps,
        "OwnerId": [users.ids[users.admin]] * n_sig,
        "Account__c": [acc.ids[acc_i[i]] for i in o],
        "Signal_Type__c": [SIGNAL_TYPES[typ[i]] for i in o], "Signal_Date__c": _dates(day[order]),
        "Score__c": [scores[i] for i in o], "Topic__c": [topics[i] for i in o],
        "Detail__c": [details[i] for i in o],
    })  # fmt: skip
    return {f"signals_{k}": int((typ == i).sum()) for i, k in enumerate(SIGNAL_TYPES)}


# ---------------------------------------------------------------------------- landing files


def _monday_on_or_before(day: int) -> int:
    return day - (day + 3) % 7  # day 0 (1970-01-01) was a Thursday


def _touch(path: Path, day: int) -> None:
    """File mtime = delivery time (06:00 UTC of the delivery day), never the wall clock."""
    t = day * DAY + 6 * 3600
    os.utime(path, (t, t))


def _write_intent_files(
    landing: Path, rng: np.random.Generator, acc: _Accounts, a: int
) -> tuple[list[Path], dict[str, int]]:
    """Weekly CSVs of surging domains, with one late, one re-delivered and one malformed file."""
    folder = landing / "intent"
    folder.mkdir(parents=True, exist_ok=True)
    this_monday = _monday_on_or_before(a)
    weeks = 8
    known = np.flatnonzero(acc.dup_of < 0)
    surging = rng.choice(known, size=max(5, int(len(known) * 0.03)), replace=False)
    files: list[Path] = []
    stats = {"intent_rows": 0, "intent_unknown_domain_rows": 0}
    late_k, resend_k, bad_k = 3, 5, 6
    for k in range(weeks, 0, -1):
        start = this_monday - 7 * k
        delivered = start + 7 + (3 if k == late_k else 0)
        week = rng.choice(surging, size=max(1, len(surging) // 2), replace=False)
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["domain", "topic", "score", "week_start_date"])
        week_str = _dates(np.array([start]))[0]
        n_rows = 0
        for i in np.sort(week).tolist():
            d = acc.domain[i]
            form = rng.random()
            d = f"www.{d}" if form < 0.1 else (d.upper() if form < 0.2 else d)
            for t in rng.choice(
                len(names.INTENT_TOPICS), size=int(rng.integers(1, 3)), replace=False
            ).tolist():
                w.writerow([d, names.INTENT_TOPICS[t], int(rng.integers(60, 101)), week_str])
                n_rows += 1
        n_unknown = max(1, n_rows // 25)
        for j in range(n_unknown):
            word = names.UNKNOWN_COMPANY_WORDS[j % len(names.UNKNOWN_COMPANY_WORDS)].lower()
            w.writerow(
                [
                    f"{word}{int(rng.integers(1, 10_000))}.net",
                    names.INTENT_TOPICS[j % 10],
                    int(rng.integers(60, 101)),
                    week_str,
                ]
            )
        text = buf.getvalue()
        if k == bad_k:  # a broken delivery: non-numeric score and a row cut off mid-way
            lines = text.splitlines()
            lines[1] = ",".join(lines[1].split(",")[:2] + ["high", week_str])
            text = "\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2]
        else:
            stats["intent_rows"] += n_rows + n_unknown
            stats["intent_unknown_domain_rows"] += n_unknown
        path = folder / f"intent_{_dates(np.array([delivered]))[0]}.csv"
        path.write_text(text, encoding="utf-8")
        _touch(path, delivered)
        files.append(path)
        if k == resend_k:  # the provider re-delivers the same file under another name
            again = folder / f"intent_{_dates(np.array([delivered]))[0]}_resend.csv"
            again.write_text(text, encoding="utf-8")
            _touch(again, delivered + 2)
            files.append(again)
    stats |= {
        "intent_files": len(files),
        "intent_late_files": 1,
        "intent_resent_files": 1,
        "intent_malformed_files": 1,
    }
    return files, stats


def _write_engagement_files(
    landing: Path,
    rng: np.random.Generator,
    acc: _Accounts,
    users: _Users,
    a: int,
    sink: _EngagementSink,
) -> tuple[list[Path], dict[str, int]]:
    """Weekly Parquet exports of the engagement platform (sequence steps, replies, calls)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = landing / "engagement"
    folder.mkdir(parents=True, exist_ok=True)
    if not sink.parts:
        return [], {"engagement_rows": 0}
    cols = {k: np.concatenate([p[k] for p in sink.parts]) for k in sink.parts[0]}
    m = len(cols["acc"])
    # Platform-only steps (never logged in the CRM): automated LinkedIn touches.
    extra = rng.choice(m, size=m * 15 // 100, replace=m * 15 // 100 > m)
    for k in cols:
        cols[k] = np.concatenate([cols[k], cols[k][extra]])
    e = len(extra)
    cols["type"][m:] = _ACT_TYPES.index("LinkedIn")
    cols["automated"][m:] = True
    cols["inbound"][m:] = False
    cols["secs"][m:] += 3600
    total = len(cols["acc"])
    domains = np.array(acc.domain, dtype=object)[cols["acc"]]
    reps = np.array(users.email, dtype=object)[cols["rep"]]
    unknown_dom = rng.random(total) < 0.02
    unknown_rep = rng.random(total) < 0.01
    domains[unknown_dom] = [
        f"unknown{int(x)}.io" for x in rng.integers(1, 10**6, size=int(unknown_dom.sum()))
    ]
    reps[unknown_rep] = "former.rep@books.local"
    order = np.argsort(cols["secs"], kind="stable")
    this_monday = _monday_on_or_before(a)
    files: list[Path] = []
    for k in range(4, 0, -1):
        start = this_monday - 7 * k
        sel = order[
            (cols["secs"][order] >= start * DAY) & (cols["secs"][order] < (start + 7) * DAY)
        ]
        stamp = _dates(np.array([start + 7]))[0]
        table = pa.table({
            "activity_id": [f"eng-{stamp}-{i:07d}" for i in range(len(sel))],
            "account_domain": domains[sel].tolist(),
            "contact_email": cols["contact_email"][sel].tolist(),
            "rep_email": reps[sel].tolist(),
            "activity_type": [_ACT_TYPES[t].lower() for t in cols["type"][sel].tolist()],
            "direction": np.where(cols["inbound"][sel], "inbound", "outbound").tolist(),
            "is_automated": cols["automated"][sel].astype(bool).tolist(),
            "occurred_at": pa.array(cols["secs"][sel].astype("datetime64[s]"), type=pa.timestamp("s", tz="UTC")),
        })  # fmt: skip
        path = folder / f"engagement_{stamp}.parquet"
        pq.write_table(table, path)
        _touch(path, start + 7)
        files.append(path)
    return files, {
        "engagement_rows": total,
        "engagement_platform_only_rows": e,
        "engagement_unknown_domain_rows": int(unknown_dom.sum()),
        "engagement_unknown_rep_rows": int(unknown_rep.sum()),
    }


# ---------------------------------------------------------------------------- entry point


def generate_world(
    db_path: str | Path,
    *,
    accounts: int,
    reps: int,
    seed: int,
    months: int = 12,
    as_of: date,
    landing_dir: Path | None,
    progress: Progress | None = None,
    policy_path: Path | None = None,
) -> WorldSummary:
    """Generate a world into an empty local CRM database (and landing files, if a folder is given).

    The CRM clock ends at `as_of` 00:00:00 UTC: every generated record was created before it,
    activities are dated up to `as_of - 1`, future dates (close dates, rest-until, renewals)
    lie after it. Same arguments -> identical database (`CrmStore.content_hash`).
    """
    if accounts < 20:
        raise ValueError(f"accounts must be >= 20 (got {accounts})")
    if reps < 1:
        raise ValueError(f"reps must be >= 1 (got {reps})")
    if not 1 <= months <= 60:
        raise ValueError(f"months must be between 1 and 60 (got {months})")
    pol = _policy_bits(policy_path)
    store = CrmStore(db_path)
    if store.count("Account", include_deleted=True) or store.count("User", include_deleted=True):
        raise ValueError(f"{store.path} already holds CRM data; generate into a new database")
    a = _day(as_of)

    def step(stage: str, done: int, total: int) -> None:
        log.info("generate: %s %d/%d", stage, done, total)
        if progress:
            progress(stage, done, total)

    with store.bulk_session():  # no journal, indexes built once at the end
        users = _make_users(store, _rng(seed, "users"), reps, pol, a)
        step("users", len(users.ids), len(users.ids))
        acc = _make_accounts(store, _rng(seed, "accounts"), accounts, pol, a)
        # reserved, never inserted: "deleted" accounts
        acc.missing_ids = store.new_ids("Account", 5)
        _make_families(_rng(seed, "families"), acc)
        _assign_owners(_rng(seed, "owners"), acc, users, pol)
        plan = _plan(_rng(seed, "plan"), acc, users, a, months)
        state = _write_accounts(store, _rng(seed, "status"), acc, plan, users, pol, a)
        step("accounts", accounts, accounts)
        sink = _EngagementSink(since=_monday_on_or_before(a) - 28)
        people = _write_contacts_and_activities(
            store, _rng(seed, "activities"), acc, plan, users, a, months, sink, step
        )
        leads = _write_leads(store, _rng(seed, "leads"), acc, users, a, months)
        step("leads", sum(leads.values()), sum(leads.values()))
        opps = _write_opportunities(store, _rng(seed, "opportunities"), acc, plan, users, a)
        signals = _write_signals(store, _rng(seed, "signals"), acc, users, a)
        step("opportunities+signals", 1, 1)
    files: list[Path] = []
    landing: dict[str, int] = {}
    if landing_dir is not None:
        lrng = _rng(seed, "landing")
        f1, s1 = _write_intent_files(Path(landing_dir), lrng, acc, a)
        f2, s2 = _write_engagement_files(Path(landing_dir), lrng, acc, users, a, sink)
        files, landing = f1 + f2, s1 | s2
        step("landing", len(files), len(files))
    clock = datetime(as_of.year, as_of.month, as_of.day, tzinfo=UTC)
    store.clock.set(clock)
    store.close()

    dirty = dict(acc.dirty)
    for k in ("contacts_missing_account", "task_missing_account", "event_missing_account"):
        dirty[k] = people[k]
    dirty["return_requests_by_non_owner"] = state["return_requests_by_non_owner"]
    counts = {
        "User": len(users.ids), "Account": accounts, "Contact": people["Contact"],
        "Lead": sum(leads.values()), "Opportunity": opps["Opportunity"], "Task": people["Task"],
        "Event": people["Event"], "Signal__c": sum(signals.values()),
        "archived_activities": people["archived"], "open_opportunities": opps["open_opportunities"],
        **acc.stats, **{k: v for k, v in state.items() if not k.startswith("return_requests")}, **signals,
    }  # fmt: skip
    arche = [users.archetype[r] for r in users.rep_idx.tolist()]
    return WorldSummary(
        seed=seed,
        as_of=as_of,
        clock=clock,
        counts=counts,
        dirty=dirty,
        leads_by_category=leads,
        reps_by_archetype={k: arche.count(k) for k in ARCHETYPES},
        hoarded_opportunities=opps["hoarded_opportunities"],
        return_requests={
            "by_owner": state["return_requests_by_owner"],
            "by_non_owner": state["return_requests_by_non_owner"],
        },
        landing_files=tuple(str(p.relative_to(landing_dir)) for p in files) if landing_dir else (),
        landing=landing,
    )
