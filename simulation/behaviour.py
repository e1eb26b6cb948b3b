"""The behaviour model: what reps and the market do each simulated day, through the CRM API.

Calibrated per rep from the twin's own activity history (accounts worked per week, touches per
worked account, hoarder or diligent from the share of the book they worked), else the defaults
of `behaviour.yml`. Every draw comes from a generator seeded by (seed, day, who): the same seed,
world and day give the same actions in every arm, whatever the engine did before.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np

from simulation.crm_api import TwinApi
from simulation.params import TIERS, BehaviourParams

BOOK_ROLES = ("SDR", "BDR")
RECENT_DAYS = 6  # an account touched within this many days counts as worked this week
HOT_LIFT_DAYS = 14


def rng_for(seed: int, *parts: object) -> np.random.Generator:
    """A generator for one (seed, parts) stream; independent of call order."""
    words = [int(hashlib.sha256(str(p).encode()).hexdigest()[:8], 16) for p in parts]
    return np.random.default_rng(np.random.SeedSequence([seed, *words]))


@dataclass(frozen=True)
class RepModel:
    user_id: str
    username: str
    style: str  # diligent | hoarder | idle
    accounts_per_week: float
    touches_per_account: float
    calibrated: bool  # True: rates measured from the rep's history


@dataclass(frozen=True)
class Calibration:
    reps: dict[str, RepModel]
    touched_week_chance: dict[str, float]
    signals_per_week: float
    leads_per_week: float
    calibrated: dict[str, bool] = field(default_factory=dict)  # market and opportunity rates


@dataclass
class DayActions:
    touches: int = 0
    accounts_worked: int = 0
    returns_requested: int = 0
    opportunities: int = 0
    signals: int = 0
    leads: int = 0


def _window(api: TwinApi, obj: str, fields: str, date_field: str, since: date, until: date):
    return api.query(
        f"SELECT {fields} FROM {obj} WHERE {date_field} >= {since.isoformat()} "
        f"AND {date_field} < {until.isoformat()}"
    )


def _rep_touches(api: TwinApi, since: date, until: date) -> list[dict[str, Any]]:
    """Manual activities (a rep's own work, not sequences or marketing) in [since, until)."""
    fields = "AccountId, OwnerId, ActivityDate, Is_Automated__c, Source__c"
    rows = _window(api, "Task", fields, "ActivityDate", since, until)
    rows += _window(api, "Event", fields, "ActivityDate", since, until)
    return [
        r
        for r in rows
        if r["AccountId"]
        and not r.get("Is_Automated__c")
        and r.get("Source__c") not in ("Sequence", "Marketing")
    ]


def _book_reps(api: TwinApi) -> list[dict[str, Any]]:
    users = api.query(
        "SELECT Id, Username, IsActive, Book_Role__c, Out_Of_Office_Until__c FROM User"
    )
    return sorted((u for u in users if u["Book_Role__c"] in BOOK_ROLES), key=lambda u: u["Id"])


def calibrate(
    api: TwinApi, params: BehaviourParams, tiers: Mapping[str, str], start: date
) -> Calibration:
    """Each parameter from the history before `start` where it has the data, else the default."""
    weeks = params.history_weeks
    since = start - timedelta(days=7 * weeks)
    touches = _rep_touches(api, since, start)
    owned = defaultdict(set)
    for a in api.query("SELECT Id, OwnerId FROM Account"):
        owned[a["OwnerId"]].add(a["Id"])
    account_weeks: dict[str, set] = defaultdict(set)
    count: dict[str, int] = defaultdict(int)
    recent: dict[str, set] = defaultdict(set)
    for t in touches:
        day = date.fromisoformat(t["ActivityDate"])
        account_weeks[t["OwnerId"]].add((t["AccountId"], (day - since).days // 7))
        count[t["OwnerId"]] += 1
        if day >= start - timedelta(days=30):
            recent[t["OwnerId"]].add(t["AccountId"])
    r = params.reps
    reps = {}
    for u in _book_reps(api):
        uid = u["Id"]
        pairs = account_weeks.get(uid, set())
        if pairs:
            apw, tpa, calibrated = len(pairs) / weeks, max(1.0, count[uid] / len(pairs)), True
        else:
            apw, tpa, calibrated = r.accounts_per_week, r.touches_per_account, False
        book = owned.get(uid, set())
        worked_share = len(recent.get(uid, set()) & book) / len(book) if book else 1.0
        style = "hoarder" if calibrated and worked_share < r.hoarder_worked_share else "diligent"
        o = r.overrides.get(u["Username"])
        if o is not None:
            style = o.style or style
            apw = o.accounts_per_week if o.accounts_per_week is not None else apw
            tpa = o.touches_per_account if o.touches_per_account is not None else tpa
        reps[uid] = RepModel(uid, u["Username"], style, apw, tpa, calibrated)
    chance, opp_calibrated = _opportunity_chance(api, params, tiers, touches, since, start)
    market = params.market
    signals = market.signals_per_week
    if signals is None:
        signals = len(_window(api, "Signal__c", "Id", "Signal_Date__c", since, start)) / weeks
    leads = market.leads_per_week
    if leads is None:
        created = api.query("SELECT Id, CreatedDate FROM Lead")
        leads = sum(since.isoformat() <= x["CreatedDate"][:10] < start.isoformat() for x in created)
        leads /= weeks
    flags = {
        "opportunities": opp_calibrated,
        "signals": market.signals_per_week is None,
        "leads": market.leads_per_week is None,
    }
    return Calibration(reps, chance, float(signals), float(leads), flags)


def _opportunity_chance(
    api: TwinApi,
    params: BehaviourParams,
    tiers: Mapping[str, str],
    touches: list[dict[str, Any]],
    since: date,
    until: date,
) -> tuple[dict[str, float], bool]:
    """Opportunities created per touched account-week, by fit tier (>= 20 such weeks)."""
    default = dict(params.opportunities.touched_week_chance)
    worked = defaultdict(set)
    for t in touches:
        week = (date.fromisoformat(t["ActivityDate"]) - since).days // 7
        worked[tiers.get(t["AccountId"], "D")].add((t["AccountId"], week))
    opps = defaultdict(int)
    for o in api.query("SELECT AccountId, CreatedDate FROM Opportunity"):
        if o["AccountId"] and since.isoformat() <= o["CreatedDate"][:10] < until.isoformat():
            opps[tiers.get(o["AccountId"], "D")] += 1
    out, any_calibrated = dict(default), False
    for tier in TIERS:
        if len(worked[tier]) >= 20 and opps[tier] > 0:
            out[tier] = min(1.0, opps[tier] / len(worked[tier]))
            any_calibrated = True
    return out, any_calibrated


class Behaviour:
    """Acts one simulated day on a twin: the market first, then every rep on a workday."""

    def __init__(
        self, params: BehaviourParams, calibration: Calibration, tiers: Mapping[str, str]
    ) -> None:
        self.params = params
        self.cal = calibration
        self.tiers = dict(tiers)

    def act(self, api: TwinApi, day: date) -> DayActions:
        done = DayActions()
        accounts = sorted(
            api.query(
                "SELECT Id, Name, Website, OwnerId, Type, External_Fit_Score__c, "
                "Return_Requested__c FROM Account"
            ),
            key=lambda a: a["Id"],
        )
        self._market(api, day, accounts, done)
        if day.weekday() not in self.params.reps.workdays:
            return done
        state = _DayState.read(api, day, accounts)
        tasks, returns, opps = [], [], []
        for uid, users in sorted(state.reps.items()):
            model = self.cal.reps.get(uid)
            if model is None or model.style == "idle" or not users["available"]:
                continue
            for acc in self._worked_today(model, day, state):
                rng = rng_for(self.params.seed, "work", day, uid, acc)
                n = 1 + int(rng.poisson(max(0.0, model.touches_per_account - 1)))
                tasks += [_task(acc, uid, day, i) for i in range(n)]
                done.accounts_worked += 1
                if acc not in state.open_opps and self._opportunity(rng, acc, n, day, state):
                    opps.append(self._new_opportunity(acc, uid, day))
                    state.open_opps.add(acc)
                elif not state.return_requested.get(acc) and rng.random() < (
                    self.params.reps.return_propensity
                ):
                    returns.append(self._return_request(rng, acc, uid))
        done.touches = len(api.create("Task", tasks)) if tasks else 0
        done.returns_requested = len(api.update("Account", returns)) if returns else 0
        done.opportunities = len(api.create("Opportunity", opps)) if opps else 0
        return done

    # -- reps -------------------------------------------------------------------------------
    def _worked_today(self, model: RepModel, day: date, state: _DayState) -> list[str]:
        """Hot accounts whose response time has come, then the rep's picks up to today's quota."""
        book = sorted(state.books.get(model.user_id, ()))
        if not book:
            return []
        seed = self.params.seed
        rng = rng_for(seed, "quota", day, model.user_id)
        per_day = model.accounts_per_week / len(self.params.reps.workdays)
        quota = int(per_day) + int(rng.random() < per_day - int(per_day))
        if model.style == "hoarder":
            focus = math.ceil(self.params.reps.hoarder_focus_share * len(book))
            book = sorted(book, key=lambda a: rng_for(seed, "focus", model.user_id, a).random())
            book = sorted(book[:focus])
        hot = [a for a in book if self._hot_due(a, day, state)]
        recent = day - timedelta(days=RECENT_DAYS)

        def priority(acc: str) -> tuple:
            last = state.last_touch.get(acc)
            return (last is not None and last >= recent, -state.fit.get(acc, 0.0), acc)

        rest = sorted((a for a in book if a not in hot), key=priority)
        rest = [a for a in rest if not (state.last_touch.get(a) or date.min) >= recent]
        return hot + rest[:quota]

    def _hot_due(self, acc: str, day: date, state: _DayState) -> bool:
        """A signal on the account, untouched since, whose drawn response delay has passed."""
        mean = self.params.reps.hot_response_days
        last = state.last_touch.get(acc)
        for sid, signal_day in state.signals.get(acc, ()):
            if last is not None and last >= signal_day:
                continue
            delay = int(rng_for(self.params.seed, "response", sid).exponential(mean)) if mean else 0
            if day >= signal_day + timedelta(days=delay):
                return True
        return False

    def _opportunity(
        self, rng: np.random.Generator, acc: str, touches: int, day: date, state: _DayState
    ) -> bool:
        o = self.cal.touched_week_chance
        p = o.get(self.tiers.get(acc, "D"), 0.0)
        p *= 1 + self.params.opportunities.per_touch_lift * (
            state.touches_30d.get(acc, 0) + touches
        )
        hot_since = day - timedelta(days=HOT_LIFT_DAYS)
        if any(d >= hot_since for _, d in state.signals.get(acc, ())):
            p *= self.params.opportunities.hot_lift
        return bool(rng.random() < min(p, 0.95))

    def _new_opportunity(self, acc: str, uid: str, day: date) -> dict[str, Any]:
        o = self.params.opportunities
        return {
            "AccountId": acc,
            "OwnerId": uid,
            "Name": f"Simulated opportunity {day.isoformat()}",
            "StageName": "Prospecting",
            "Amount": o.amount,
            "CloseDate": (day + timedelta(days=o.close_in_days)).isoformat(),
        }

    def _return_request(self, rng: np.random.Generator, acc: str, uid: str) -> dict[str, Any]:
        reasons = sorted(self.params.reps.return_reasons.items())
        shares = np.array([s for _, s in reasons], dtype=float)
        reason = reasons[int(rng.choice(len(reasons), p=shares / shares.sum()))][0]
        return {"Id": acc, "Return_Requested__c": reason, "Return_Requested_By__c": uid}

    # -- market -----------------------------------------------------------------------------
    def _market(self, api: TwinApi, day: date, accounts: list[dict], done: DayActions) -> None:
        """New signals and inbound leads at the calibrated weekly rates, on prospects."""
        prospects = [a for a in accounts if a["Type"] in (None, "Prospect")]
        if not prospects:
            return
        m = self.params.market
        rng = rng_for(self.params.seed, "market", day)
        n_signals = int(rng.poisson(self.cal.signals_per_week / 7))
        n_leads = int(rng.poisson(self.cal.leads_per_week / 7))
        picks = rng.choice(len(prospects), size=n_signals + n_leads, replace=True)
        signals = [
            {
                "Account__c": prospects[i]["Id"],
                "Signal_Type__c": m.signal_type,
                "Signal_Date__c": day.isoformat(),
                "Score__c": m.signal_score,
                "Topic__c": "simulated",
            }
            for i in picks[:n_signals]
        ]
        leads = [_lead(prospects[i], day, k) for k, i in enumerate(picks[n_signals:])]
        done.signals = len(api.create("Signal__c", signals)) if signals else 0
        done.leads = len(api.create("Lead", leads)) if leads else 0


@dataclass
class _DayState:
    """What the reps see in the CRM this morning."""

    reps: dict[str, dict[str, Any]]
    books: dict[str, list[str]]
    fit: dict[str, float]
    last_touch: dict[str, date]
    touches_30d: dict[str, int]
    signals: dict[str, list[tuple[str, date]]]
    open_opps: set[str]
    return_requested: dict[str, str | None]

    @classmethod
    def read(cls, api: TwinApi, day: date, accounts: list[dict]) -> _DayState:
        reps = {}
        for u in _book_reps(api):
            away = u.get("Out_Of_Office_Until__c")
            available = bool(u["IsActive"]) and not (away and away >= day.isoformat())
            reps[u["Id"]] = {"available": available}
        open_opps = {
            o["AccountId"]
            for o in api.query("SELECT AccountId FROM Opportunity WHERE IsClosed = false")
            if o["AccountId"]
        }
        books: dict[str, list[str]] = defaultdict(list)
        for a in accounts:
            if a["OwnerId"] in reps and a["Id"] not in open_opps:
                books[a["OwnerId"]].append(a["Id"])
        last: dict[str, date] = {}
        recent: dict[str, int] = defaultdict(int)
        for t in _rep_touches(api, day - timedelta(days=45), day):
            d = date.fromisoformat(t["ActivityDate"])
            last[t["AccountId"]] = max(d, last.get(t["AccountId"], d))
            if d >= day - timedelta(days=30):
                recent[t["AccountId"]] += 1
        signals: dict[str, list[tuple[str, date]]] = defaultdict(list)
        since = day - timedelta(days=30)
        for s in _window(api, "Signal__c", "Id, Account__c, Signal_Date__c", "Signal_Date__c",
                         since, day + timedelta(days=1)):  # fmt: skip
            if s["Account__c"]:
                signals[s["Account__c"]].append((s["Id"], date.fromisoformat(s["Signal_Date__c"])))
        return cls(
            reps=reps,
            books=books,
            fit={a["Id"]: float(a["External_Fit_Score__c"] or 0.0) for a in accounts},
            last_touch=last,
            touches_30d=recent,
            signals={k: sorted(v) for k, v in signals.items()},
            open_opps=open_opps,
            return_requested={a["Id"]: a["Return_Requested__c"] for a in accounts},
        )


def _task(acc: str, uid: str, day: date, i: int) -> dict[str, Any]:
    return {
        "WhatId": acc,
        "OwnerId": uid,
        "Subject": "Call" if i % 2 == 0 else "Follow-up e-mail",
        "Type": "Call" if i % 2 == 0 else "Email",
        "ActivityDate": day.isoformat(),
        "Status": "Completed",
        "Direction__c": "Outbound",
        "Is_Automated__c": False,
        "Source__c": "Manual",
    }


def _lead(account: dict[str, Any], day: date, k: int) -> dict[str, Any]:
    website = account.get("Website") or ""
    domain = website.split("//")[-1].removeprefix("www.").strip("/") or "example.com"
    return {
        "LastName": f"Inbound {day.isoformat()} {k}",
        "Company": account["Name"],
        "Email": f"buyer{k}@{domain}",
        "Website": website or None,
        "LeadSource": "Web",
        "Status": "Open",
        "IsConverted": False,
    }
