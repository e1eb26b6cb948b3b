"""The demo world's constants: the one place `books demo`, the runner and the tests read them.

No heavy imports here, so the CLI can show these defaults in `--help` and still start fast.
"""

from __future__ import annotations

from datetime import date

# A Monday, so the weekly cadences line up with the demo's as-of date.
DEMO_AS_OF = date(2025, 6, 2)
DEMO_ACCOUNTS = 20_000
DEMO_REPS = 40
DEMO_SEED = 42
DEMO_MONTHS = 12
