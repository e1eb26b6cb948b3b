"""Guards that stop a write-back before it does damage.

Blast radius: a rule bug that sends a large share of owned accounts back to the pool must not
reach the CRM. A plan is blocked whole when its moves (owner rep -> pool user: retrievals and
returns) exceed a share of all owned accounts or a multiple of the median of recent plans. A
plan that takes more than a share of one rep's book is not blocked whole (one disengaged rep's
stale book must not stop everyone's write-back): that rep's moves are held back - left planned
in the ledger, recorded with a reason in `ops.write_holds`, not sent - and the rest writes. An
explicit per-run override lets everything through.

API budget: Salesforce counts every call against a daily allocation that other integrations
share; the writer stops before `api_budget_share` of it and leaves the rest planned.
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from reverse_etl.policy import WritePolicy

if TYPE_CHECKING:
    from reverse_etl.plan import Change

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuardContext:
    """What the guards compare a plan with: who the pool is, book sizes, recent plans."""

    pool_owner_ids: frozenset[str] = frozenset()
    owner_counts: dict[str, int] = field(default_factory=dict)  # accounts per owner (read now)
    recent_moves: tuple[int, ...] = ()  # moves of previous plans, newest first
    # Owners who are no longer active users: their books are meant to empty (a departure
    # releases them), so the per-book guard does not hold moves out of them.
    departed_owner_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Hold:
    """One change held back by the per-book guard: not sent unless the run is overridden."""

    change_key: str
    record_id: str
    owner_id: str
    reason: str


def _moves_by_owner(changes: Iterable[Change]) -> Counter[str]:
    from_owner: Counter[str] = Counter()
    for change in changes:
        if change.is_move:
            from_owner[str(change.before["OwnerId"])] += 1
    return from_owner


def blast_radius(
    changes: Iterable[Change], context: GuardContext, policy: WritePolicy
) -> tuple[int, int, list[str]]:
    """Return (moves, owned accounts, reasons to block the whole plan); no reasons means the
    plan may write (`held_moves` says which single-book moves wait)."""
    from_owner = _moves_by_owner(changes)
    moves = sum(from_owner.values())
    owned = sum(n for o, n in context.owner_counts.items() if o not in context.pool_owner_ids)
    reasons: list[str] = []
    if moves and owned and moves / owned > policy.max_move_share_of_owned:
        reasons.append(
            f"plan moves {moves} of {owned} owned accounts to the pool "
            f"({moves / owned:.0%} > guards.max_move_share_of_owned "
            f"{policy.max_move_share_of_owned:.0%})"
        )
    recent = [m for m in context.recent_moves[: policy.recent_runs]]
    if len(recent) >= 3:
        median = statistics.median(recent)
        if median > 0 and moves > policy.max_move_vs_recent_median * median:
            reasons.append(
                f"plan moves {moves} accounts, more than {policy.max_move_vs_recent_median:g}x "
                f"the median {median:g} of the last {len(recent)} plans "
                "(guards.max_move_vs_recent_median)"
            )
    return moves, owned, reasons


def held_moves(
    changes: Iterable[Change], context: GuardContext, policy: WritePolicy
) -> tuple[Hold, ...]:
    """The moves out of each book that would lose more than guards.max_share_of_one_book of it
    (books of at least min_book_for_share_guard accounts): all of that owner's moves wait.
    Books of departed (inactive) owners are exempt: emptying them is the point."""
    changes = list(changes)
    over: dict[str, str] = {}
    for owner, n in sorted(_moves_by_owner(changes).items()):
        if owner in context.departed_owner_ids:
            continue
        book = context.owner_counts.get(owner, 0)
        if book >= policy.min_book_for_share_guard and n / book > policy.max_share_of_one_book:
            over[owner] = (
                f"held: plan takes {n} of the {book} accounts of owner {owner} "
                f"({n / book:.0%} > guards.max_share_of_one_book "
                f"{policy.max_share_of_one_book:.0%}); review that book, or override the run"
            )
    return tuple(
        Hold(c.change_key, c.record_id, owner, over[owner])
        for c in changes
        if c.is_move and (owner := str(c.before["OwnerId"])) in over
    )


def _utc_now() -> dt.datetime:
    """Stamp for hold rows (operational metadata only; no decision reads it)."""
    return dt.datetime.now(dt.UTC)


_HOLDS_DDL = """
create schema if not exists ops;
create table if not exists ops.write_holds (
    run_id varchar not null,
    change_key varchar not null,
    record_id varchar not null,
    owner_id varchar not null,
    reason varchar not null,
    held_at timestamptz not null,
    released_at timestamptz          -- set when an override let the change through
);
"""


def ensure_holds_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_HOLDS_DDL)


def store_holds(
    warehouse_path: str | Path, run_id: str, holds: Iterable[Hold], clock: Callable[[], dt.datetime]
) -> None:
    """Record this run's held changes (replacing an earlier plan of the same run's)."""
    holds = tuple(holds)
    frame = pl.DataFrame(
        [(h.change_key, h.record_id, h.owner_id, h.reason) for h in holds],
        schema={
            "change_key": pl.Utf8,
            "record_id": pl.Utf8,
            "owner_id": pl.Utf8,
            "reason": pl.Utf8,
        },
        orient="row",
    )
    with duckdb.connect(str(warehouse_path)) as con:
        con.execute(_HOLDS_DDL)
        con.execute("begin")
        con.execute(
            "delete from ops.write_holds where run_id = ? and released_at is null", [run_id]
        )
        con.register("_holds", frame)
        con.execute(
            "insert into ops.write_holds select ?, change_key, record_id, owner_id, reason, ?, "
            "null from _holds where change_key not in "
            "(select change_key from ops.write_holds where run_id = ?)",
            [run_id, clock(), run_id],
        )
        con.unregister("_holds")
        con.execute("commit")
    # One line per held book (the reason names the owner), not one per account: a launch-day
    # plan can hold tens of thousands of changes; ops.write_holds lists every one.
    for reason, count in sorted(Counter(hold.reason for hold in holds).items()):
        log.warning("write-back %s: %d changes %s", run_id, count, reason)


def held_change_keys(
    warehouse_path: str | Path,
    run_id: str,
    *,
    override: bool = False,
    clock: Callable[[], dt.datetime] | None = None,
) -> frozenset[str]:
    """Change keys of `run_id` the writer must not send; an override releases them (recorded)."""
    with duckdb.connect(str(warehouse_path)) as con:
        con.execute(_HOLDS_DDL)
        keys = frozenset(
            r[0]
            for r in con.execute(
                "select change_key from ops.write_holds where run_id = ? and released_at is null",
                [run_id],
            ).fetchall()
        )
        if override and keys:
            stamp = (clock or _utc_now)()
            con.execute(
                "update ops.write_holds set released_at = ? "
                "where run_id = ? and released_at is null",
                [stamp, run_id],
            )
            log.warning("override: releasing %d held changes of run %s", len(keys), run_id)
    return frozenset() if override else keys


def load_guard_context(
    warehouse_path: str | Path, policy: WritePolicy, *, exclude_run: str | None = None
) -> GuardContext:
    """Read pool users, book sizes (raw CRM read of this run) and recent plans from the warehouse."""
    with duckdb.connect(str(warehouse_path), read_only=True) as con:
        tables = {
            f"{s}.{t}"
            for s, t in con.execute(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        }
        pool: set[str] = set()
        departed: set[str] = set()
        counts: dict[str, int] = {}
        if "raw_salesforce.user" in tables:
            pool = {
                r[0]
                for r in con.execute(
                    "select id from raw_salesforce.user "
                    "where book_role_c = 'Pool' or list_contains(?, username)",
                    [list(policy.pool_users)],
                ).fetchall()
            }
            user_columns = {
                r[0]
                for r in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = 'raw_salesforce' and table_name = 'user'"
                ).fetchall()
            }
            if "is_active" in user_columns:
                departed = {
                    r[0]
                    for r in con.execute(
                        "select id from raw_salesforce.user where not coalesce(is_active, true)"
                    ).fetchall()
                }
        else:
            log.warning("%s has no raw_salesforce.user; pool users unknown", warehouse_path)
        if "raw_salesforce.account" in tables:
            counts = dict(
                con.execute(
                    "select owner_id, count(*) from raw_salesforce.account "
                    "where not coalesce(is_deleted, false) group by owner_id"
                ).fetchall()
            )
        recent: tuple[int, ...] = ()
        if "ops.write_plans" in tables:
            recent = tuple(
                r[0]
                for r in con.execute(
                    "select moves from ops.write_plans where run_id is distinct from ? "
                    "order by planned_seq desc limit ?",
                    [exclude_run, policy.recent_runs],
                ).fetchall()
            )
    return GuardContext(frozenset(pool), counts, recent, frozenset(departed - pool))


@dataclass
class ApiBudget:
    """Stops the writer before `share` of the daily API allocation is used.

    Usage comes from the connector's last `Sforce-Limit-Info` (used, max); before the first
    response it is unknown and one call is allowed to learn it.
    """

    share: float
    stopped: bool = False
    last_usage: tuple[int, int] | None = None

    def allows(self, usage: tuple[int, int] | None, calls: int) -> bool:
        """True if `calls` more requests keep usage at or under the cap."""
        if usage is None or not usage[1]:
            return True
        used, limit = usage
        self.last_usage = (used, limit)
        if used + calls > self.share * limit:
            if not self.stopped:
                log.warning(
                    "API budget: %d of %d daily calls used; %d more would cross %.0f%%; "
                    "stopping, the rest stays planned",
                    used,
                    limit,
                    calls,
                    self.share * 100,
                )
            self.stopped = True
            return False
        return True
