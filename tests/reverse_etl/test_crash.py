"""Crash safety: SIGKILL the writer at >= 30 random points, recover, and check nothing is lost
or doubled."""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reverse_etl import WritePolicy, apply_plan, ledger, plan_write_back, recover
from tests.reverse_etl.wb_world import POOL_USERNAME, build_world, fixed_clock

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
EVENTS = [
    ("planned", 1),  # plan committed, nothing sent
    ("collection_before_call", 1),  # rows `sending`, request not sent
    ("collection_before_call", 2),
    ("collection_after_ack", 1),  # CRM saved the batch, ledger not yet told
    ("collection_after_ack", 2),
    ("bulk_before_create", 1),
    ("bulk_created", 1),  # job open, no data
    ("bulk_closed", 1),  # data uploaded and job closed, results not read
    ("bulk_polling", 1),
    ("bulk_after_results", 1),  # results read, ledger not yet told
]
KILLS_NEEDED = 30
CHANGES_PER_RUN = 60


@pytest.mark.slow
def test_sigkill_at_random_points_loses_and_doubles_nothing(tmp_path: Path) -> None:
    world = build_world(tmp_path, n_accounts=300)
    rng = random.Random(20250303)
    kills = 0
    iteration = 0
    figures = {"lost": 0, "duplicated": 0, "left_sending": 0}
    try:
        while kills < KILLS_NEEDED:
            iteration += 1
            assert iteration <= 60, f"only {kills} kills landed in {iteration - 1} runs"
            run_id = f"crash-{iteration}"
            shift = rng.randint(1, len(world.reps) - 1)
            accounts = rng.sample(world.accounts, CHANGES_PER_RUN)
            wanted = {}
            for acc in accounts:
                owner = world.crm_values(acc)["OwnerId"]
                wanted[acc] = {
                    "OwnerId": world.reps[(world.reps.index(owner) + shift) % len(world.reps)],
                    "Book_Status__c": rng.choice(["working", "ready", "stale"]),
                }
            world.sync_changes(run_id, wanted)
            bulk = iteration % 2 == 0
            args: dict = {
                "warehouse": str(world.warehouse),
                "url": world.server.url,
                "run_id": run_id,
                "bulk_threshold": 20 if bulk else 2000,
            }
            if iteration % 3 == 0:
                args["kill_after"] = rng.uniform(0.0, 0.8)  # anywhere, mid-commit included
            else:
                options = [
                    e for e in EVENTS if e[0].startswith("bulk") == bulk or e[0] == "planned"
                ]
                args["kill_event"], args["kill_nth"] = rng.choice(options)
            hist = world.history_seq()
            proc = subprocess.run(
                [sys.executable, "-m", "tests.reverse_etl.writer_proc", json.dumps(args)],
                cwd=REPO,
                capture_output=True,
                timeout=180,
            )
            killed = proc.returncode == -signal.SIGKILL
            assert killed or proc.returncode == 0, proc.stderr.decode()[-2000:]
            kills += killed

            # Recovery run: finish in-flight rows, then the same run again (idempotent keys).
            conn = world.connect()
            recover(conn, world.warehouse, clock=fixed_clock)
            policy = WritePolicy(pool_users=(POOL_USERNAME,), bulk_threshold=args["bulk_threshold"])
            # Re-planning the same run is idempotent: same change keys, states kept.
            plan = plan_write_back(world.warehouse, run_id, policy=policy, clock=fixed_clock)
            apply_plan(conn, world.warehouse, plan, clock=fixed_clock, sleep=world.time.sleep)

            history = world.owner_history(hist)
            per_account: dict[str, int] = {}
            for acc, _old, _new in history:
                per_account[acc] = per_account.get(acc, 0) + 1
            lost = [a for a, w in wanted.items() if world.crm_values(a)["OwnerId"] != w["OwnerId"]]
            dup = [a for a, n in per_account.items() if n > 1]
            sending = sum(
                n for s, n in ledger.counts(world.warehouse).items() if s in ("sending", "acked")
            )
            figures["lost"] += len(lost)
            figures["duplicated"] += len(dup)
            figures["left_sending"] += sending
            assert not lost, (iteration, args, lost)
            assert not dup, (iteration, args, dup)
            assert sending == 0, (iteration, args)
            assert sorted(per_account) == sorted(wanted)
            assert ledger.counts(world.warehouse, run_id) == {"applied": CHANGES_PER_RUN}
    finally:
        world.server.stop()
    log.info("crash test: %d kills in %d runs: %s", kills, iteration, figures)
    print(f"crash test: {kills} SIGKILLs in {iteration} runs -> {figures}")
