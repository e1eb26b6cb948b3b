"""Where a long command's output goes: progress and the summary on the console, the detail
(Dagster's event lines, every dbt node, library logging) in a log file whose path is printed.

dagster-dbt writes dbt's lines to `sys.stdout` and Dagster's console logger writes to
`sys.stderr`, both from inside the run; so for the run's length both streams point at the log
file (with `-v`, at the log file and the console). The progress printer and the summary keep the
real console streams, taken before the switch.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_file_for(warehouse: Path, command: str) -> Path:
    """A new log file per command run, in `logs/` beside the warehouse (the product's data)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return warehouse.parent / "logs" / f"books-{command}-{stamp}-{os.getpid()}.log"


class _Tee:
    """A write-only text stream that copies everything to two streams (for `-v`)."""

    def __init__(self, first: TextIO, second: TextIO) -> None:
        self._streams = (first, second)

    def write(self, text: str) -> int:
        for stream in self._streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self._streams:
            stream.flush()

    def isatty(self) -> bool:
        return False


# A warning or error line, from Python logging (`... WARNING name: ...`) or Dagster's console
# logger (`... - WARNING - ...`); dbt's `ERROR=0` tallies do not match.
_PROBLEM = re.compile(r"(?:^|\s)(?:-\s)?(?:WARNING|ERROR)(?:\s|:)")


@dataclass
class Detail:
    """The log of one command: its path and the real console streams."""

    path: Path
    stdout: TextIO
    stderr: TextIO

    def problems(self) -> int:
        """Warning and error lines in the log (read after the block)."""
        with self.path.open(encoding="utf-8", errors="replace") as file:
            return sum(1 for line in file if _PROBLEM.search(line))

    def footer(self) -> str:
        """The line that points at the detail (printed after the summary)."""
        count = self.problems()
        noted = f"  ({count:,} warning or error line{'' if count == 1 else 's'})" if count else ""
        return f"log:       {self.path}{noted}"


@contextmanager
def detail_to_log(path: Path, *, verbose: bool = False) -> Iterator[Detail]:
    """Send logging and anything written to stdout/stderr to `path` for the block's length.

    `verbose`: also show it all on the console, and log at DEBUG (else INFO).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    saved = (sys.stdout, sys.stderr, root.level, list(root.handlers))
    real_out, real_err = sys.stdout, sys.stderr
    with path.open("a", encoding="utf-8") as file:
        to_file = logging.StreamHandler(file)
        to_file.setFormatter(logging.Formatter(LOG_FORMAT))
        handlers: list[logging.Handler] = [to_file]
        if verbose:
            to_console = logging.StreamHandler(real_err)
            to_console.setFormatter(logging.Formatter(LOG_FORMAT))
            handlers.append(to_console)
        root.handlers = handlers
        root.setLevel(logging.DEBUG if verbose else logging.INFO)
        sys.stdout = _Tee(file, real_out) if verbose else file  # type: ignore[assignment]
        sys.stderr = _Tee(file, real_err) if verbose else file  # type: ignore[assignment]
        try:
            yield Detail(path, real_out, real_err)
        finally:
            sys.stdout, sys.stderr = saved[0], saved[1]
            root.setLevel(saved[2])
            root.handlers = saved[3]
