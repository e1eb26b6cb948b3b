"""A tiny progress printer for long CLI steps: one line per update on stderr, with elapsed time.

Passed as `progress=` to the generator and the runner: `progress(message, done, total)`;
`done`/`total` are optional. A counted stage prints its last update, and before that one line
per `min_interval` seconds, so a short stage is one line and a long one a few, not hundreds.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class ProgressPrinter:
    def __init__(
        self, stream: TextIO | None = None, *, min_interval: float = 10.0, quiet: bool = False
    ):
        self._stream = stream if stream is not None else sys.stderr
        self._start = time.monotonic()
        self._min_interval = min_interval
        self._quiet = quiet
        self._last: dict[str, float] = {}

    def __call__(
        self, message: str, done: int | None = None, total: int | None = None, **_: Any
    ) -> None:
        if self._quiet:
            return
        now = time.monotonic()
        finished = done is not None and total is not None and done >= total
        if done is not None and not finished:
            # A counted stage prints when it ends, and meanwhile once per interval (measured from
            # its first update): a short stage is one line.
            last = self._last.setdefault(message, now)
            if now - last < self._min_interval:
                return
        self._last[message] = now
        counter = ""
        if done is not None and total:
            counter = f" {done:,}/{total:,} ({100 * done / total:.0f}%)"
        elif done is not None:
            counter = f" {done:,}"
        self._stream.write(f"[{now - self._start:7.1f}s] {message}{counter}\n")
        self._stream.flush()
