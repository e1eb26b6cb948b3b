"""The write-back knobs, read from the validated policy (books.yml `guards` and `crm.pool_users`).

Kept as a small frozen dataclass so the writer does not depend on the policy package's model
shape: `WritePolicy.from_policy` accepts the pydantic policy, a plain dict of books.yml, or a
`WritePolicy` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class WritePolicy:
    """Guards and batching for one write-back; defaults mirror books.yml."""

    max_move_share_of_owned: float = 0.25
    max_move_vs_recent_median: float = 3.0
    max_share_of_one_book: float = 0.5
    api_budget_share: float = 0.85
    bulk_threshold: int = 2000
    pool_users: tuple[str, ...] = ()
    # A rep's book must hold at least this many accounts before the per-book share applies
    # (returning the only account of a 1-account book is not a blast).
    min_book_for_share_guard: int = 4
    # How many previous plans make "recent runs" for the median guard (needs >= 3 of them).
    recent_runs: int = 10
    batch_size: int = 200  # sObject Collections hard limit
    read_chunk: int = 2000  # ids per sObject Collections retrieve (its POST limit)
    max_attempts: int = 5  # per record, across batches of one run
    retry_base_delay: float = 0.5
    retry_max_delay: float = 30.0
    bulk_poll_interval: float = 0.5
    bulk_poll_max: int = 600

    def __post_init__(self) -> None:
        for name in ("max_move_share_of_owned", "max_share_of_one_book", "api_budget_share"):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ValueError(f"guards.{name} must be in (0, 1], got {value!r}")
        if not 1 <= self.batch_size <= 200:
            raise ValueError(f"batch_size must be in 1..200, got {self.batch_size}")
        if not 1 <= self.read_chunk <= 2000:
            raise ValueError(f"read_chunk must be in 1..2000, got {self.read_chunk}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be >= 1, got {self.max_attempts}")

    @classmethod
    def from_policy(cls, policy: Any) -> WritePolicy:
        """Pick the write-back knobs out of the books policy (model or dict)."""
        if isinstance(policy, WritePolicy):
            return policy
        if policy is None:
            return cls()
        guards = _get(policy, "guards") or {}
        crm = _get(policy, "crm") or {}
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for name in known:
            value = _get(guards, name)
            if value is not None:
                values[name] = value
        pool = _get(crm, "pool_users")
        if pool is not None:
            values["pool_users"] = tuple(pool)
        return cls(**values)


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)
