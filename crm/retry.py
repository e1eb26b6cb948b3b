"""Retry policy shared by ingestion and write-back: what is transient, and how long to wait.

Salesforce tells a client to slow down in several ways (429, 503, 403 REQUEST_LIMIT_EXCEEDED,
per-record UNABLE_TO_LOCK_ROW); all of them are retried with capped exponential backoff and
jitter, never earlier than a server-sent `Retry-After`. Jitter comes from a seeded RNG and the
clock/sleep are injectable, so tests are deterministic and can assert on every wait.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

# HTTP statuses that mean "try again later" for the whole request.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# Salesforce error codes (request- or record-level) that are worth retrying unchanged.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "REQUEST_LIMIT_EXCEEDED",
        "UNABLE_TO_LOCK_ROW",
        "SERVER_UNAVAILABLE",
        "TXN_SECURITY_NO_ACCESS_RETRY",
    }
)
SESSION_EXPIRED_CODES = frozenset({"INVALID_SESSION_ID", "INVALID_AUTH_HEADER"})


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to wait; defaults suit a nightly batch against an org."""

    max_attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0
    # Never wait longer than this for a single Retry-After (a misbehaving server must not hang us).
    max_retry_after: float = 300.0
    timeout: float = 120.0  # per HTTP request, seconds
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < self.base_delay:
            raise ValueError(
                "RetryPolicy needs 0 <= base_delay <= max_delay, "
                f"got base_delay={self.base_delay} max_delay={self.max_delay}"
            )


@dataclass
class Backoff:
    """Computes waits for attempt n (1-based): full jitter on a capped exponential.

    One instance per connection; its RNG is seeded from the policy so a test run is replayable.
    """

    policy: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.policy.seed)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`; at least `retry_after` when given."""
        cap = min(self.policy.max_delay, self.policy.base_delay * (2 ** max(attempt - 1, 0)))
        wait = self._rng.uniform(cap / 2, cap)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.policy.max_retry_after))
        return wait

    def wait(self, attempt: int, retry_after: float | None = None) -> float:
        """Sleep until the next attempt may be sent; returns the seconds waited."""
        wait = self.delay(attempt, retry_after)
        deadline = self.clock() + wait
        self.sleep(wait)
        # A sleep may return early (signals, fake clocks); never send before Retry-After.
        remaining = deadline - self.clock()
        while remaining > 1e-6:
            self.sleep(remaining)
            remaining = deadline - self.clock()
        return wait


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: either delta-seconds or an HTTP date (relative to its Date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    # An HTTP date needs "now" to become a delay; the wall clock is acceptable here because the
    # date itself is the server's wall clock. Local CRM and Salesforce both send delta-seconds.
    return max(when.timestamp() - time.time(), 0.0)
