"""One production cycle in its own process (`python -m simulation.attempt`), so chaos mode can
kill it at a random point: the same `run_cycle` call the lab's loop makes, paths from the
environment (BOOKS_POLICY, BOOKS_CRM_DB, BOOKS_WAREHOUSE, ...). Its progress lines ("step X
done") go to stdout, where the killer waits for its point."""

from __future__ import annotations

import argparse
import sys
from datetime import date


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulation.attempt")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--ids", default="", help="comma-separated ids of a sensor run")
    parser.add_argument("--key", default="")
    parser.add_argument("--override-guard", action="store_true")
    args = parser.parse_args(argv)

    from orchestration.runner import run_cycle
    from policy import resolve_paths

    summary = run_cycle(
        args.as_of, mode=args.mode, ids=tuple(i for i in args.ids.split(",") if i),
        key=args.key, override_guard=args.override_guard, paths=resolve_paths(),
        progress=_say,
    )  # fmt: skip
    return 0 if summary.success else 1


def _say(message: str, *_: object, **__: object) -> None:
    """A progress line on stdout (this is a program, not library code)."""
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def argv_for(
    day: date, mode: str, ids: tuple[str, ...], key: str, override_guard: bool
) -> list[str]:
    """The arguments that make `main` run the same cycle."""
    argv = ["--as-of", day.isoformat(), "--mode", mode, "--ids", ",".join(ids), "--key", key]
    return argv + (["--override-guard"] if override_guard else [])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
