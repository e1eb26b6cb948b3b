"""Which of the policy's scheduled runs fire on a simulated day (5-field cron, UTC).

Dagster evaluates the schedules in production; the lab replays them day by day, so it needs
only "does this cron fire on this date, and at what times". Day-of-month and day-of-week
follow cron's rule: when both are restricted, either one matching is enough.
"""

from __future__ import annotations

from datetime import date, time

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_RANGES = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
           (0, 7, {d: i for i, d in enumerate(_DAYS)}))  # fmt: skip


def _expand(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    out: set[int] = set()
    for item in field.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            first, last = _value(a, names), _value(b, names)
        else:
            first = _value(base, names)
            last = high if step_text else first
        out.update(range(first, last + 1, step))
    return out


def _value(token: str, names: dict[str, int]) -> int:
    return int(token) if token.isdigit() else names[token.upper()]


def fire_times(cron: str, day: date) -> list[time]:
    """The times of `day` (UTC) at which `cron` fires; empty if it does not fire that day."""
    parts = cron.split()
    if len(parts) != 5:
        raise ValueError(f"cron {cron!r} must have 5 fields")
    minutes, hours, doms, months, dows = (
        _expand(p, lo, hi, names) for p, (lo, hi, names) in zip(parts, _RANGES, strict=True)
    )
    dows = {0 if d == 7 else d for d in dows}
    if day.month not in months:
        return []
    dom_hit = day.day in doms
    dow_hit = (day.isoweekday() % 7) in dows
    restricted_dom, restricted_dow = parts[2] != "*", parts[4] != "*"
    hit = (dom_hit or dow_hit) if (restricted_dom and restricted_dow) else (dom_hit and dow_hit)
    if not hit:
        return []
    return [time(h, m) for h in sorted(hours) for m in sorted(minutes)]
