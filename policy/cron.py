"""A small validator for standard 5-field cron strings (the form Dagster schedules accept).

Cadences in books.yml are cron strings; a typo there would only surface when Dagster loads the
schedule, so the policy model checks them at load with a message naming the bad part.
"""

from __future__ import annotations

import re

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")

# (name, low, high, names mapped to numbers)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {m: i + 1 for i, m in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {d: i for i, d in enumerate(_DAYS)}),
)

_ATOM = re.compile(r"^[0-9A-Za-z]+$")


def _value(token: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    if not _ATOM.match(token):
        raise ValueError(f"{name}: {token!r} is not a number")
    if token.isdigit():
        number = int(token)
    elif token.upper() in names:
        number = names[token.upper()]
    else:
        raise ValueError(f"{name}: {token!r} is not a number in {low}-{high}")
    if not low <= number <= high:
        raise ValueError(f"{name}: {number} is outside {low}-{high}")
    return number


def _check_item(item: str, name: str, low: int, high: int, names: dict[str, int]) -> None:
    base, slash, step = item.partition("/")
    if slash:
        if not step.isdigit() or int(step) < 1:
            raise ValueError(f"{name}: step {step!r} must be a positive integer")
    if base == "*":
        return
    start_s, dash, end_s = base.partition("-")
    start = _value(start_s, name, low, high, names)
    if dash:
        end = _value(end_s, name, low, high, names)
        if end < start:
            raise ValueError(f"{name}: range {base!r} runs backwards")


def validate_cron(expression: str) -> str:
    """Return the expression unchanged if it is a valid 5-field cron string, else raise.

    Supports `*`, numbers, names (JAN-DEC, SUN-SAT), ranges `a-b`, steps `*/n` and `a-b/n`,
    and comma lists; the error names the field (minute, hour, ...) and its allowed range.
    """
    if not isinstance(expression, str):
        raise ValueError("cron must be a string")
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(
            f"cron {expression!r} must have 5 fields (minute hour day-of-month month "
            f"day-of-week), got {len(parts)}"
        )
    for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True):
        for item in part.split(","):
            if not item:
                raise ValueError(f"{name}: empty item in {part!r}")
            _check_item(item, name, low, high, names)
    return expression
