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
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

ActivityType = Literal[ACTIVITY_TYPES]  # type: ignore[valid-type]
Direction = Literal[DIRECTIONS]  # type: ignore[valid-type]
ActivitySource = Literal[ACTIVITY_SOURCES]  # type: ignore[valid-type]
Role = Literal[ROLES]  # type: ignore[valid-type]
Share = Annotated[float, Field(gt=0, le=1)]
Days = Annotated[int, Field(ge=0, le=3650)]


class Strict(BaseModel):
    """Base for every section: unknown keys are errors; validated policies are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


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
    client_id_env: str = "SF_CLIENT_ID"
    client_secret_env: str = "SF_CLIENT_SECRET"
    api_version: str = "62.0"

    @field_validator("instance_url_env", "client_id_env", "client_secret_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an environment variable name (allowed: A-Z, 0-9, _); "
                "put the variable's name here, never the secret itself"
            )
        return value

    @field_validator("api_version")
    @classmethod
    def _api_version(cls, value: str) -> str:
        if not re.match(r"^[0-9]{2}\.0$", value):
            raise ValueError(f"api_version {value!r} must look like '62.0'")
        return value


class Crm(Strict):
    """Which CRM to talk to. File paths are not policy: see policy.paths (BOOKS_CRM_DB ...)."""

    kind: Literal["local", "salesforce"] = "local"
    salesforce: SalesforceCrm = SalesforceCrm()
    pool_users: list[str] = Field(min_length=1)
    ownership_skew_threshold: int = Field(default=10000, ge=1)

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
    directions: list[Direction] = Field(min_length=1)
    manual_only: StrictBool = True
    count_inbound_replies: StrictBool = True
    excluded_sources: list[ActivitySource] = []


class RestDays(Strict):
    """Days an account rests in the pool, per reason it went back (0 = no rest)."""

    retrieved: Days
    not_now: Days
    no_response: Days
    get_back_to_me: Days = 0
    duplicate: Days


class Lifecycle(Strict):
    working_window_days: int = Field(default=30, ge=15, le=90)
    grace_period_days: int = Field(default=14, ge=0, le=90)
    rest_days: RestDays
    hierarchy_rule: Literal["family_to_one_rep", "independent"] = "family_to_one_rep"
    converted_family_rule: Literal["exclude_family", "only_account"] = "exclude_family"


# --- segments and books -----------------------------------------------------------------------
class Segment(Strict):
    key: str
    filter: list[Condition] = []

    @field_validator("key")
    @classmethod
    def _key(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"segment key {value!r} must match [a-z][a-z0-9_]* (max 63 chars)")
        return value


class Slots(Strict):
    fit: int = Field(ge=0, le=10000)
    intent: int = Field(ge=0, le=10000)


class BookDesign(Strict):
    target_size: int = Field(ge=1, le=10000)
    slots: Slots
    max_new_per_run: int = Field(ge=1, le=10000)

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
    capacity_share: Share = 0.5


# Roles that can hold a book; `Pool` holds the unowned accounts and never has a book.
BOOK_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r != "Pool")


class Books(Strict):
    """Book design per rep role (keys are role names from local_crm.schema.ROLES)."""

    SDR: BookDesign | None = None
    BDR: BookDesign | None = None
    AE: BookDesign | None = None
    Manager: BookDesign | None = None
    Admin: BookDesign | None = None
    non_book_roles: list[Role] = []
    ramp: Ramp = Ramp()
    out_of_office_gets_nothing: StrictBool = True

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
        return self

    @model_serializer(mode="wrap")
    def _drop_absent_roles(self, handler: Any) -> dict[str, Any]:
        """Keep the dumped shape equal to the file's: no `AE: null` for undefined roles."""
        data = handler(self)
        return {k: v for k, v in data.items() if not (k in BOOK_ROLES and v is None)}


# --- fit ------------------------------------------------------------------------------------
class Tiers(Strict):
    """Minimum fit score for each tier; below C is D."""

    A: float = Field(ge=0, le=100)
    B: float = Field(ge=0, le=100)
    C: float = Field(ge=0, le=100)

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
    points: float = Field(ge=-100, le=100)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _IDENTIFIER.match(value):
            raise ValueError(f"rule name {value!r} must match [a-z][a-z0-9_]* (max 63 chars)")
        return value


class Fit(Strict):
    source: Literal["rules", "external"] = "rules"
    tiers: Tiers
    rules: list[FitRule] = []

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
    half_life_days: float = Field(gt=0, le=3650)
    window_days: int = Field(ge=1, le=3650)
    threshold: float | None = Field(default=None, ge=0, le=100)


class Signals(Strict):
    inbound_lead: SignalWeight
    intent_surge: SignalWeight
    new_key_contact: SignalWeight
    poc_change: SignalWeight
    funding: SignalWeight
    competitor_renewal: SignalWeight
    get_back_to_me: SignalWeight
    marketing_score: SignalWeight
    custom: SignalWeight

    @model_validator(mode="after")
    def _marketing_threshold(self) -> Signals:
        if self.marketing_score.threshold is None:
            raise ValueError("marketing_score needs a threshold (0-100)")
        return self


class Timing(Strict):
    in_market_threshold: float = Field(default=30, ge=0, le=100)
    hot_threshold: float = Field(default=70, ge=0, le=100)
    signals: Signals

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
    timing_weight: float = Field(default=0.4, ge=0, le=1)

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
    cron: str

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return validate_cron(value)


class IntervalCadence(Strict):
    enabled: StrictBool = True
    interval_seconds: int = Field(ge=30, le=86400)


class Cadences(Strict):
    distribution: CronCadence = CronCadence(cron="0 6 * * 1")
    retrieval: CronCadence = CronCadence(cron="0 5 * * 1")
    signals: IntervalCadence = IntervalCadence(interval_seconds=300)
    returns: IntervalCadence = IntervalCadence(interval_seconds=300)
    # The dbt data-quality tests that are not gates (job books_quality; dbt selectors.yml).
    quality: CronCadence = CronCadence(cron="0 7 * * *")


class Ingest(Strict):
    """CRM ingestion: the extract's look-back window and the reconciliation that backs it up.

    The extract re-reads rows stamped up to `lookback_minutes` before the newest loaded one, so
    a row committed that late is still picked up; `reconcile` (daily by default, and on
    `books run --reconcile`) compares every id and SystemModstamp with the warehouse and loads
    what any window missed.
    """

    lookback_minutes: int = Field(default=15, ge=0, le=10080)
    reconcile: CronCadence = CronCadence(cron="0 3 * * *")


class Guards(Strict):
    max_move_share_of_owned: Share = 0.25
    max_move_vs_recent_median: float = Field(default=3.0, ge=1, le=1000)
    max_share_of_one_book: Share = 0.5
    api_budget_share: Share = 0.85
    bulk_threshold: int = Field(default=2000, ge=1)


class Planning(Strict):
    quota: float = Field(gt=0)
    average_deal_size: float = Field(gt=0)
    close_rate: Share
    qualification_rate: Share


# --- people: reps leaving a book, changes made by hand -------------------------------------
ReleaseReason = Literal["owner_inactive", "role_change", "segment_change"]


class Departures(Strict):
    """What happens to the book of a rep who leaves it. Listed reasons release the owner's
    accounts without an open opportunity to the pool at once, without rest; accounts with an
    open opportunity (or a customer) stay and are flagged for the owner's manager."""

    release_on: list[ReleaseReason] = ["owner_inactive", "role_change", "segment_change"]
    # Release a rep's book when Out_Of_Office_Until__c is more than this many days after the
    # as-of date; null = never (off).
    out_of_office_release_days: int | None = Field(default=None, ge=1, le=3650)

    @field_validator("release_on")
    @classmethod
    def _release_on(cls, value: list[str]) -> list[str]:
        _unique(value, "release_on reason")
        return value


class ManualChanges(Strict):
    """Owner changes made outside dynamic-books (AccountHistory rows by any other user) are
    respected: recorded, and an assignment starts lifecycle.grace_period_days."""

    write_back_users: list[str] = Field(default=["integration@books.local"], min_length=1)

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
    manual_changes: ManualChanges = ManualChanges()


# --- warehouse engine --------------------------------------------------------------------------
class SparkWarehouse(Strict):
    """Names of environment variables holding the Spark connection, like the CRM's: the
    master URL (spark://host:port) and the directory for its Parquet tables and metastore."""

    master_env: str = "BOOKS_SPARK_MASTER"
    warehouse_dir_env: str = "BOOKS_SPARK_WAREHOUSE"

    @field_validator("master_env", "warehouse_dir_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(
                f"{value!r} is not an environment variable name (allowed: A-Z, 0-9, _); "
                "put the variable's name here, never the value itself"
            )
        return value


class Warehouse(Strict):
    """Which engine runs the dbt project: DuckDB on one machine (default) or a Spark cluster."""

    engine: Literal["duckdb", "spark"] = "duckdb"
    spark: SparkWarehouse = SparkWarehouse()


# --- the whole file ---------------------------------------------------------------------------
class Policy(Strict):
    version: Literal[1] = 1
    crm: Crm
    meaningful_activity: MeaningfulActivity
    lifecycle: Lifecycle
    segments: list[Segment] = Field(min_length=1)
    books: Books
    fit: Fit
    timing: Timing
    priority: Priority = Priority()
    cadences: Cadences = Cadences()
    ingest: Ingest = Ingest()
    guards: Guards = Guards()
    planning: Planning
    people: People = People()
    # Not a rule of engagement: the engine must not change a decision, so it stays out of the
    # policy version and the dbt vars (excluded from the dump).
    warehouse: Warehouse = Field(default=Warehouse(), exclude=True)

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
