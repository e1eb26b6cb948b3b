"""`books` with faults switched on in its in-process local CRM (a test harness, run as a module).

    python -m tests.e2e.books_with_faults --slow 'composite/*' -- run --as-of 2025-06-02

Each `--slow PATTERN` slows every matching CRM call by `--delay` seconds, so a test can kill
the process while a chosen step is busy (the write-back, the extract) and not after it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slow", action="append", default=[], metavar="PATTERN")
    parser.add_argument("--delay", type=float, default=30.0)
    parser.add_argument("books_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    import local_crm.server as server

    start = server.start_in_process

    def start_with_faults(*a: Any, **k: Any) -> Any:
        crm = start(*a, **k)
        for pattern in args.slow:
            crm.faults.add("slow", path=pattern, delay=args.delay)
        return crm

    server.start_in_process = start_with_faults  # type: ignore[assignment]
    from books_cli.main import main as books

    rest = args.books_args[1:] if args.books_args[:1] == ["--"] else args.books_args
    return books(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
