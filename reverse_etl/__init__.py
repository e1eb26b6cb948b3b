"""Safe write-back of book decisions to the CRM: plan -> ledger (outbox) -> guarded apply.

No Dagster imports: the orchestration asset is a thin wrapper around these functions.
"""

from reverse_etl.apply import ApplyReport, Conflict, apply_plan, recover
from reverse_etl.plan import (
    SYNC_OBJECTS,
    Change,
    Plan,
    PlanError,
    SyncObject,
    build_plan,
    load_sync_rows,
    plan_write_back,
)
from reverse_etl.policy import WritePolicy

__all__ = [
    "ApplyReport",
    "Change",
    "Conflict",
    "Plan",
    "PlanError",
    "SYNC_OBJECTS",
    "SyncObject",
    "WritePolicy",
    "apply_plan",
    "build_plan",
    "load_sync_rows",
    "plan_write_back",
    "recover",
]
