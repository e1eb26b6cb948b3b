"""One real books cycle in its own process, for the single-writer test.

`runner`: `run_cycle`, as `books run` does. `schedule`: the `books_cycle` job executed by
Dagster with the tags a schedule's run request carries, without the runner (so only the
warehouse resource's lease protects it). Prints one JSON line; a busy warehouse prints one
line on stderr and exits 3, as the CLI does.
"""

from __future__ import annotations

import json
import sys
from datetime import date

import dagster as dg

from orchestration.cycle import cycle_tags, make_run_id
from orchestration.definitions import JOB_NAME, build_definitions
from orchestration.resources import WarehouseResource
from orchestration.runner import open_instance, run_cycle
from policy import load_policy, policy_version, resolve_paths
from warehouse.lease import WarehouseBusyError


def run_schedule(as_of: date, wait: float) -> dict:
    paths = resolve_paths()
    defs = build_definitions(paths)
    warehouse = WarehouseResource(
        path=str(paths.warehouse), landing_dir=str(paths.landing), lease_wait_seconds=wait
    )
    defs = dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, jobs=defs.jobs,
        resources={**(defs.resources or {}), "warehouse": warehouse},
    )  # fmt: skip
    version = policy_version(load_policy(paths.policy))
    run_id = make_run_id(as_of, version, mode="distribution")
    instance = open_instance(paths.dagster_home)
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        instance=instance, tags=cycle_tags(as_of, run_id, mode="distribution"),
        raise_on_error=False,
    )  # fmt: skip
    if not result.success:
        for event in result.all_events:
            error = getattr(event.event_specific_data, "error", None)
            text = error.message.strip() if error is not None else ""
            if "WarehouseBusyError" in text or "is in use by" in text:
                raise WarehouseBusyError(text.splitlines()[-1].split(": ", 1)[-1])
    return {"success": result.success, "run_id": run_id, "dagster_run_id": result.run_id}


def main(mode: str, as_of: str, wait: float) -> int:
    day = date.fromisoformat(as_of)
    try:
        if mode == "runner":
            summary = run_cycle(day, override_guard=True, lease_wait_seconds=wait)
            out = {"success": summary.success, "run_id": summary.run_id,
                   "dagster_run_id": summary.dagster_run_id}  # fmt: skip
        else:
            out = run_schedule(day, wait)
    except WarehouseBusyError as exc:
        sys.stderr.write(f"books: error: {exc}\n")
        return 3
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
