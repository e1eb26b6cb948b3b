"""A write-back process for the crash test: plans and applies one run, then may SIGKILL itself.

`python -m tests.reverse_etl.writer_proc ARGS_JSON`; ARGS_JSON holds warehouse, url, run_id,
bulk_threshold, and either kill_event + kill_nth (die at the nth occurrence of a writer event)
or kill_after (die after that many seconds, wherever the writer is).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from crm.salesforce import CrmSettings, connect
from local_crm.server import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from reverse_etl import WritePolicy, apply_plan, plan_write_back


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(args: dict) -> None:
    policy = WritePolicy(pool_users=("pool-1@books.local",), bulk_threshold=args["bulk_threshold"])
    seen: dict[str, int] = {}

    def on_event(name: str) -> None:
        seen[name] = seen.get(name, 0) + 1
        if name == args.get("kill_event") and seen[name] == args.get("kill_nth", 1):
            _die()

    conn = connect(
        CrmSettings(
            kind="local",
            base_url=args["url"],
            client_id=DEFAULT_CLIENT_ID,
            client_secret=DEFAULT_CLIENT_SECRET,
        )
    )
    if args.get("kill_after") is not None:
        threading.Timer(args["kill_after"], _die).start()
    plan = plan_write_back(args["warehouse"], args["run_id"], policy=policy)
    on_event("planned")
    apply_plan(conn, args["warehouse"], plan, on_event=on_event, sleep=lambda _s: None)
    on_event("done")
    os._exit(0)  # a pending kill timer must not keep the process alive


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
