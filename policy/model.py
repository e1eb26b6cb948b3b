"""The pydantic model of books.yml: the rules of engagement (R2), fit (R3), timing (R4),
book design, cadences (R17), guards and planning inputs (R16).

Strict on purpose: unknown keys are errors (a misspelt key must not silently fall back to a
default), numbers have ranges, enums list their values, and cross-field rules (tiers
descending, weights summing to 1, a catch-all segment ...) are checked here, at load.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    field_validator,
    model_serializer,
    model_validator,
)

from local_crm.schema import ACTIVITY_SOURCES, ACTIVITY_TYPES, DIRECTIONS, ROLES
from policy.cron import validate_cron
from policy.filters import Condition

_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


def _check_env_name(value: str, holds: str) -> str:
    """A policy key that names an environment variable must hold a name, never what the
    variable holds (`holds`: the secret, the value)."""
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name (allowed: A-Z, 0-9, _); "
            f"put the variable's name here, never {holds} itself"
        )
    return value


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

ActivityType = Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]
Direction = Literal[DIRECTIONS]  # type: ignore[valid-type]
ActivitySource = Literal[ACTIVITY_SOURCES]  # type: ignore[valid-type]
Role = Literal[ROLES]  # type: ignore[valid-type]
Share = Annotated[float, Field(gt=0, le=1)]
Days = Annotated[int, Field(ge=0, le=3650)]


class Strict(BaseModel):
    """Base for every section: unknown keys are errors; validated policies are immutable.
    The docstring under each field is its description (docs/policy.md is generated from them)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _unique(values: list[Any], what: str) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


# --- crm ------------------------------------------------------------------------------------
class SalesforceCrm(Strict):
    """Names of environment variables holding the credentials, never the secrets."""

    instance_url_env: str = "SF_INSTANCE_URL"
    """Name of the environment variable that holds the org's URL (e.g.
    https://yourorg.my.salesforce.com)."""
    client_id_env: str = "SF_CLIENT_ID"
    """Name of the environment variable that holds the connected app's client id."""
    client_secret_env: str = "SF_CLIENT_SECRET"
    """Name of the environment variable that holds the connected app's client secret (never put
    the secret in this file)."""
    api_version: str = "62.0"
    """Salesforce REST API version the connector calls, like '62.0'."""

    @field_validator("instance_url_env", "client_id_env", "client_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return _check_env_name(value, "the secret")

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str) -> str:
        if not re.match(r"^[0-9]{2}\.0$", value):
            raise ValueError(f"api_version {value!r} must look like '62.0'")
        return value


class Crm(Strict):
    """Which CRM to talk to. File paths are not policy: see policy.paths (BOOKS_CRM_DB ...)."""

    kind: Literal["local", "salesforce"] = "local"
    """Which CRM to read and write: the embedded local CRM (demo, tests) or a real Salesforce org
    (credentials from `crm.salesforce`)."""
    salesforce: SalesforceCrm = SalesforceCrm()
    """Where the Salesforce credentials come from (names of environment variables)."""
    pool_users: list[str] = Field(min_length=1)
    """Usernames of the pool users that own unowned accounts; returned, retrieved and released
    accounts go to the least loaded one. Several spread the load (Salesforce slows down on one
    owner of very many records)."""
    ownership_skew_threshold: int = Field(default=10000, ge=1)
    """An owner holding more accounts than this after a run gets an ownership-skew warning
    (Salesforce's ownership skew slows record locking); add pool users when it fires."""

    @field_validator("pool_users")
    @classmethod
    def _pool_users(cls, value: list[str]) -> list[str]:
        for user in value:
            if not _EMAIL.match(user):
                raise ValueError(f"pool user {user!r} must be a username like pool-1@books.local")
        _unique(value, "pool user")
        return value


# --- meaningful activity, lifecycle -----------------------------------------------------------
class MeaningfulActivity(Strict):
    types: list[ActivityType] = Field(min_length=1)
    """Activity types that can count as a meaningful touch; only meaningful touches keep an
    account `working`."""
    directions: list[Direction] = Field(min_length=1)
    """Directions that can count (an activity without a direction is read as Outbound)."""
    manual_only: StrictBool = True
    """When true, automated steps (Is_Automated__c, or source Sequence) never count as a touch."""
    count_inbound_replies: StrictBool = True
    """When true, an inbound reply counts whatever its source or automation."""
    excluded_sources: list[ActivitySource] = []
    """Activity sources that never count (e.g. Marketing sends)."""


class RestDays(Strict):
    """Days an account rests in the pool, per reason it went back (0 = no rest)."""

    retrieved: Days
    """Days a retrieved (stale, not worked) account rests in the pool before it is `ready` again."""
    not_now: Days
    """Days an account returned with reason not_now rests."""
    no_response: Days
    """Days an account returned with reason no_response rests."""
    get_back_to_me: Days = 0
    """Not used for the rest: a get_back_to_me return rests until the rep's Get_Back_Date__c."""
    duplicate: Days
    """Days an account returned as a duplicate rests."""


class Lifecycle(Strict):
    working_window_days: int = Field(default=30, ge=15, le=90)
    """An owned account with no meaningful touch by its owner for this many days turns `stale`
    and can be retrieved."""
    grace_period_days: int = Field(default=14, ge=0, le=90)
    """After a distribution (or an owner change made by hand) the account counts as `working` for
    this many days even without a touch, and retrieval never takes back a manual assignment
    inside it."""
    rest_days: RestDays
    """How long an account rests in the pool, per reason it went back."""
    hierarchy_rule: Literal["family_to_one_rep", "independent"] = "family_to_one_rep"
    """family_to_one_rep: a parent and its subsidiaries are one unit, given to one rep together
    (never split); independent: every account is distributed alone."""
    converted_family_rule: Literal["exclude_family", "only_account"] = "exclude_family"
    """With family_to_one_rep, what a customer or open opportunity in a family does:
    exclude_family holds the whole family back from distribution; only_account holds back that
    account only."""


# --- segments and books -----------------------------------------------------------------------
class Segment(Strict):
    key: str
    """Name of the segment (lowercase identifier); reps work the segments listed in their
    Book_Segments__c."""
    filter: list[Condition] = []
    """Conditions on Account fields, all of which must hold; the first segment whose filter
    matches wins, and the last segment must have an empty filter (the catch-all)."""

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"segment key {value!r} must match [a-z][a-z0-9_]* (max 63 chars)")
        return value


class Slots(Strict):
    fit: int = Field(ge=0, le=10000)
    """Slots for accounts chosen by priority (fit first)."""
    intent: int = Field(ge=0, le=10000)
    """Slots filled first by in-market accounts (timing above timing.in_market_threshold)."""


class BookDesign(Strict):
    target_size: int = Field(ge=1, le=10000)
    """The book size this role works: owned `working` and `stale` accounts count against it; no
    route takes a book past it."""
    slots: Slots
    """How the target splits into fit and intent slots (they must add up to target_size)."""
    max_new_per_run: int = Field(ge=1, le=10000)
    """At most this many new accounts per rep per as-of date (all routes together)."""

    @model_validator(mode="after")
    def _consistent(self) -> BookDesign:
        if self.slots.fit + self.slots.intent != self.target_size:
            raise ValueError(
                f"slots.fit + slots.intent ({self.slots.fit} + {self.slots.intent}) must equal "
                f"target_size ({self.target_size})"
            )
        if self.max_new_per_run > self.target_size:
            raise ValueError(
                f"max_new_per_run ({self.max_new_per_run}) must be <= target_size "
                f"({self.target_size})"
            )
        return self


class Ramp(Strict):
    days: Days = 90
    """A rep ramps for this many days from Ramp_Start_Date__c."""
    capacity_share: Share = 0.5
    """Share of each slot kind a ramping rep gets (rounded down)."""


# Roles that can hold a book; `Pool` holds the unowned accounts and never has a book.
BOOK_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r != "Pool")


class Books(Strict):
    """Book design per rep role (keys are role names from local_crm.schema.ROLES)."""

    SDR: BookDesign | None = None
    """Book design of the SDR role (absent: SDRs hold no book)."""
    BDR: BookDesign | None = None
    """Book design of the BDR role (absent: BDRs hold no book)."""
    AE: BookDesign | None = None
    """Book design of the AE role (absent: AEs hold no book)."""
    Manager: BookDesign | None = None
    """Book design of the Manager role (absent: managers hold no book)."""
    Admin: BookDesign | None = None
    """Book design of the Admin role (absent: admins hold no book)."""
    non_book_roles: list[Role] = []
    """Roles that never hold a book: accounts they own are `excluded` (read, never written), e.g.
    account executives with their customers."""
    ramp: Ramp = Ramp()
    """Reduced capacity for new reps."""
    out_of_office_gets_nothing: StrictBool = True
    """When true, a rep out of office on the as-of date (Out_Of_Office_Until__c) receives no new
    accounts."""
    held_out_accounts: list[str] = []
    """Account Ids kept out of dynamic books: `excluded` (state reason held_out), never
    distributed, retrieved, returned or released, and not counted in any book. The policy lab
    sets it for a holdout experiment's control group (`books simulate --holdout`)."""

    @property
    def roles(self) -> dict[str, BookDesign]:
        """The roles that hold a book, in ROLES order."""
        return {r: getattr(self, r) for r in BOOK_ROLES if getattr(self, r) is not None}

    @model_validator(mode="after")
    def _roles(self) -> Books:
        if not self.roles:
            raise ValueError(f"define a book for at least one role (allowed: {list(BOOK_ROLES)})")
        _unique(list(self.non_book_roles), "non_book_roles entry")
        both = sorted(set(self.roles) & set(self.non_book_roles))
        if both:
            raise ValueError(f"roles {both} have a book and are also listed in non_book_roles")
        if "Pool" in self.non_book_roles:
            raise ValueError("'Pool' is the pool owner's role, not a non-book role")
        _unique(list(self.held_out_accounts), "held_out_accounts entry")
        return self

    @model_serializer(mode="wrap")
    def _drop_absent_roles(self, handler: Any) -> dict[str, Any]:
        """Keep the dumped shape equal to the file's: no `AE: null` for undefined roles, no
        empty `held_out_accounts` (so a policy without a holdout keeps its version)."""
        data = {k: v for k, v in handler(self).items() if not (k in BOOK_ROLES and v is None)}
        if not data.get("held_out_accounts"):
            data.pop("held_out_accounts", None)
        return data


# --- fit ------------------------------------------------------------------------------------
class Tiers(Strict):
    """Minimum fit score for each tier; below C is D."""

    A: float = Field(ge=0, le=100)
    """Minimum fit score of tier A."""
    B: float = Field(ge=0, le=100)
    """Minimum fit score of tier B."""
    C: float = Field(ge=0, le=100)
    """Minimum fit score of tier C (below it: tier D)."""

    @model_validator(mode="after")
    def _descending(self) -> Tiers:
        if not self.A > self.B > self.C:
            raise ValueError(
                f"tiers must be strictly descending A > B > C, got A={self.A}, B={self.B}, "
                f"C={self.C}"
            )
        return self


class FitRule(Condition):
    """A condition that adds `points` to the fit score when it holds."""

    name: str
    """Name of the rule (lowercase identifier), shown as a component of the account's fit score."""
    points: float = Field(ge=-100, le=100)
    """Points added to the fit score when the condition holds (negative to subtract); positive
    points may add up to at most 100."""

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"rule name {value!r} must match [a-z][a-z0-9_]* (max 63 chars)")
        return value


class Fit(Strict):
    source: Literal["rules", "external"] = "rules"
    """rules: the fit score is the sum of the rules' points (0-100); external: use
    Account.External_Fit_Score__c as it is."""
    tiers: Tiers
    """Fit score thresholds of the tiers A > B > C."""
    rules: list[FitRule] = []
    """Weighted conditions on firmographics; each rule that holds adds its points and is kept as
    a score component."""

    @model_validator(mode="after")
    def _rules(self) -> Fit:
        _unique([r.name for r in self.rules], "fit rule name")
        if self.source == "rules" and not self.rules:
            raise ValueError("source is 'rules' but no rules are defined")
        positive = sum(r.points for r in self.rules if r.points > 0)
        if positive > 100:
            raise ValueError(f"positive rule points sum to {positive:g}; the fit score is 0-100")
        return self


# --- timing, priority -------------------------------------------------------------------------
class SignalWeight(Strict):
    weight: float = Field(ge=0, le=100)
    """Score of a fresh signal of this type (0-100); the timing score sums the strongest decayed
    signal per type, capped at 100."""
    half_life_days: float = Field(gt=0, le=3650)
    """Days after which a signal's score has halved (weight * 0.5 ^ (age / half_life))."""
    window_days: int = Field(ge=1, le=3650)
    """A signal older than this no longer counts (competitor_renewal: the window before the
    renewal date)."""
    threshold: float | None = Field(default=None, ge=0, le=100)
    """Only for signals with a score (marketing_score): the signal counts only above this score."""


class Signals(Strict):
    inbound_lead: SignalWeight
    """An inbound lead matched to the account."""
    intent_surge: SignalWeight
    """An intent surge from the intent landing files."""
    new_key_contact: SignalWeight
    """A new key contact at the account."""
    poc_change: SignalWeight
    """A change of the account's point of contact."""
    funding: SignalWeight
    """A funding round."""
    competitor_renewal: SignalWeight
    """An upcoming renewal with a competitor (counts in the window before
    Competitor_Renewal_Date__c)."""
    get_back_to_me: SignalWeight
    """The date a rep asked to be reminded of (Get_Back_Date__c of a get_back_to_me return)."""
    marketing_score: SignalWeight
    """A marketing-automation score (counts only above its threshold)."""
    custom: SignalWeight
    """Any other signal type."""

    @model_validator(mode="after")
    def _marketing_threshold(self) -> Signals:
        if self.marketing_score.threshold is None:
            raise ValueError("marketing_score needs a threshold (0-100)")
        return self


class Timing(Strict):
    in_market_threshold: float = Field(default=30, ge=0, le=100)
    """An account with a timing score at or above this is in market: it fills intent slots first."""
    hot_threshold: float = Field(default=70, ge=0, le=100)
    """An account at or above this is hot: it is routed to a rep at once by the signals sensor
    (or its owner is flagged); must be above in_market_threshold."""
    signals: Signals
    """Weight, decay and window per signal type."""

    @model_validator(mode="after")
    def _thresholds(self) -> Timing:
        if not self.hot_threshold > self.in_market_threshold:
            raise ValueError(
                f"hot_threshold ({self.hot_threshold:g}) must be above in_market_threshold "
                f"({self.in_market_threshold:g})"
            )
        return self


class Priority(Strict):
    fit_weight: float = Field(default=0.6, ge=0, le=1)
    """Weight of the fit score in the priority (priority = fit_weight * fit + timing_weight *
    timing, capped at 100), which ranks the pool for top-off."""
    timing_weight: float = Field(default=0.4, ge=0, le=1)
    """Weight of the timing score in the priority; the two weights must sum to 1."""

    @model_validator(mode="after")
    def _sum_to_one(self) -> Priority:
        if abs(self.fit_weight + self.timing_weight - 1) > 1e-9:
            raise ValueError(
                f"fit_weight + timing_weight must sum to 1, got "
                f"{self.fit_weight:g} + {self.timing_weight:g}"
            )
        return self


# --- cadences, guards, planning ---------------------------------------------------------------
class CronCadence(Strict):
    enabled: StrictBool = True
    """When false, the schedule is not created (the job still runs by hand)."""
    cron: str
    """When the schedule runs (five-field cron, UTC)."""

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return validate_cron(value)


class IntervalCadence(Strict):
    enabled: StrictBool = True
    """When false, the sensor is not created."""
    interval_seconds: int = Field(ge=30, le=86400)
    """How often the sensor looks for new work (30-86400 seconds)."""


class Cadences(Strict):
    distribution: CronCadence = CronCadence(cron="0 6 * * 1")
    """The weekly full cycle (returns, retrieval, routing, top-off, write-back)."""
    retrieval: CronCadence = CronCadence(cron="0 5 * * 1")
    """The retrieval cycle's schedule."""
    signals: IntervalCadence = IntervalCadence(interval_seconds=300)
    """The sensor that routes accounts with new hot signals without waiting for the weekly run."""
    returns: IntervalCadence = IntervalCadence(interval_seconds=300)
    """The sensor that applies reps' return requests (Return_Requested__c) on demand."""
    # The dbt data-quality tests that are not gates (job books_quality; dbt selectors.yml).
    quality: CronCadence = CronCadence(cron="0 7 * * *")
    """The job books_quality: the dbt data tests that are not gates (they never block a
    write-back)."""


class Ingest(Strict):
    """CRM ingestion: the extract's look-back window and the reconciliation that backs it up.

    The extract re-reads rows stamped up to `lookback_minutes` before the newest loaded one, so
    a row committed that late is still picked up; `reconcile` (daily by default, and on
    `books run --reconcile`) compares every id and SystemModstamp with the warehouse and loads
    what any window missed.
    """

    lookback_minutes: int = Field(default=15, ge=0, le=10080)
    """Each extract re-reads rows stamped up to this many minutes before the newest loaded one,
    so a row whose transaction committed late is still loaded."""
    reconcile: CronCadence = CronCadence(cron="0 3 * * *")
    """The reconciliation job (books_reconcile): compares every CRM id and SystemModstamp with
    the warehouse and loads what the incremental extract missed."""


class Guards(Strict):
    max_move_share_of_owned: Share = 0.25
    """A plan whose moves to the pool (retrievals, returns) exceed this share of all owned
    accounts is blocked whole until a run with --override-guard."""
    max_move_vs_recent_median: float = Field(default=3.0, ge=1, le=1000)
    """A plan that moves more than this multiple of the median of recent plans is blocked whole
    (same override)."""
    max_share_of_one_book: Share = 0.5
    """Moves that would take more than this share of one active rep's book are held
    (ops.write_holds); the rest of the plan is written."""
    api_budget_share: Share = 0.85
    """The write-back stops before this share of the org's daily API allocation is used and
    leaves the rest planned for the next run."""
    bulk_threshold: int = Field(default=2000, ge=1)
    """Above this many changed rows of one object, the write-back uses one Bulk API 2.0 job
    instead of sObject Collections calls."""


class Planning(Strict):
    quota: float = Field(gt=0)
    """Yearly quota per rep (currency) for the capacity plan."""
    average_deal_size: float = Field(gt=0)
    """Average deal size (currency): deals needed = quota / average_deal_size."""
    close_rate: Share
    """Share of qualified meetings that close: meetings needed = deals / close_rate."""
    qualification_rate: Share
    """Share of worked accounts that become qualified meetings: accounts needed = meetings /
    qualification_rate."""


# --- people: reps leaving a book, changes made by hand -------------------------------------
ReleaseReason = Literal["owner_inactive", "role_change", "segment_change"]


class Departures(Strict):
    """What happens to the book of a rep who leaves it. Listed reasons release the owner's
    accounts without an open opportunity to the pool at once, without rest; accounts with an
    open opportunity (or a customer) stay and are flagged for the owner's manager."""

    release_on: list[ReleaseReason] = ["owner_inactive", "role_change", "segment_change"]
    """Departure reasons that release a book: owner_inactive (the user is inactive), role_change
    (now in a non-book role), segment_change (the account left the rep's segments). Remove one
    to keep those books."""
    # Release a rep's book when Out_Of_Office_Until__c is more than this many days after the
    # as-of date; null = never (off).
    out_of_office_release_days: int | None = Field(default=None, ge=1, le=3650)
    """Also release the book of a rep out of office more than this many days after the as-of
    date; null: never."""

    @field_validator("release_on")
    @classmethod
    def _release_on(cls, value: list[str]) -> list[str]:
        _unique(value, "release_on reason")
        return value


class ManualChanges(Strict):
    """Owner changes made outside dynamic-books (AccountHistory rows by any other user) are
    respected: recorded, and an assignment starts lifecycle.grace_period_days."""

    write_back_users: list[str] = Field(default=["integration@books.local"], min_length=1)
    """CRM usernames dynamic-books writes as; an owner change by anyone else is a person's
    (manual_assign / manual_release) and starts the grace period."""

    @field_validator("write_back_users")
    @classmethod
    def _write_back_users(cls, value: list[str]) -> list[str]:
        for user in value:
            if not _EMAIL.match(user):
                raise ValueError(
                    f"write-back user {user!r} must be a username like integration@books.local"
                )
        _unique(value, "write-back user")
        return value


class People(Strict):
    departures: Departures = Departures()
    """What happens to the book of a rep who leaves it."""
    manual_changes: ManualChanges = ManualChanges()
    """How owner changes made by hand in the CRM are recognised."""


# --- warehouse engine --------------------------------------------------------------------------
class SparkWarehouse(Strict):
    """Names of environment variables holding the Spark connection, like the CRM's: the
    master URL (spark://host:port) and the directory for its Parquet tables and metastore."""

    master_env: str = "BOOKS_SPARK_MASTER"
    """Environment variable holding the Spark master URL (spark://host:port)."""
    warehouse_dir_env: str = "BOOKS_SPARK_WAREHOUSE"
    """Environment variable holding the directory of the Spark tables (Parquet) and metastore."""

    @field_validator("master_env", "warehouse_dir_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        return _check_env_name(value, "the value")


class Warehouse(Strict):
    """Which engine runs the dbt project: DuckDB on one machine (default) or a Spark cluster."""

    engine: Literal["duckdb", "spark"] = "duckdb"
    """duckdb (one file, the default) or spark (a Spark cluster; preview)."""
    spark: SparkWarehouse = SparkWarehouse()
    """Where the Spark connection settings are read from."""


# --- the whole file ---------------------------------------------------------------------------
class Policy(Strict):
    version: Literal[1] = 1
    """Version of the policy file format (1)."""
    crm: Crm
    """Which CRM, its credentials' variables and its pool users."""
    meaningful_activity: MeaningfulActivity
    """What counts as a meaningful touch (the CRM's generic last activity date is not trusted)."""
    lifecycle: Lifecycle
    """Working window, grace period, rest periods and the family rules."""
    segments: list[Segment] = Field(min_length=1)
    """Segments in order; each account gets the first whose filter matches."""
    books: Books
    """Book design per rep role, non-book roles, ramp and out-of-office."""
    fit: Fit
    """How the fit score (0-100) and tier are computed."""
    timing: Timing
    """How the timing score (0-100) is computed from signals, and the in-market and hot
    thresholds."""
    priority: Priority = Priority()
    """How fit and timing combine into the priority that ranks the pool."""
    cadences: Cadences = Cadences()
    """Dagster schedules and sensors; each can be switched off."""
    ingest: Ingest = Ingest()
    """The CRM extract's look-back window and the reconciliation schedule."""
    guards: Guards = Guards()
    """Limits that stop or hold a write-back before it does damage."""
    planning: Planning
    """Inputs of the capacity plan (marts.capacity_plan)."""
    people: People = People()
    """Rep departures and owner changes made by hand."""
    # Not a rule of engagement: the engine must not change a decision, so it stays out of the
    # policy version and the dbt vars (excluded from the dump).
    warehouse: Warehouse = Field(default=Warehouse(), exclude=True)
    """Which engine runs the dbt project (not part of the policy version: it never changes a
    decision)."""

    @field_validator("segments")
    @classmethod
    def _segments(cls, value: list[Segment]) -> list[Segment]:
        _unique([s.key for s in value], "segment key")
        # First matching segment wins, so every account needs a last catch-all, and a
        # segment after a catch-all could never be used.
        for index, segment in enumerate(value):
            if not segment.filter and index != len(value) - 1:
                unused = [s.key for s in value[index + 1 :]]
                raise ValueError(
                    f"segment {segment.key!r} has no filter (matches everything), so "
                    f"{unused} after it would never be used; put the catch-all last"
                )
        if value[-1].filter:
            raise ValueError(
                f"the last segment ({value[-1].key!r}) must be a catch-all with `filter: []` "
                "so every account gets a segment"
            )
        return value

    @property
    def segment_keys(self) -> list[str]:
        return [s.key for s in self.segments]
