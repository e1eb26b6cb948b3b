"""Run one stage in a fresh child process and measure its wall time and peak RSS.

How peak memory is measured: each stage runs in a `spawn`ed child (a fresh interpreter, so no
memory inherited from the harness), which times the stage itself with `perf_counter` (imports
and interpreter start are outside the timing) and reports `getrusage(RUSAGE_SELF).ru_maxrss`
(the kernel's high-water mark of resident memory, KiB on Linux), taking the larger of it and
RUSAGE_CHILDREN for stages that start their own subprocesses.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing as mp
import resource
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)

OK, FAILED, UNAVAILABLE = "ok", "failed", "not available"


class Unavailable(Exception):
    """A product piece the stage needs is not there yet (reported, the run goes on)."""


@dataclass
class StageResult:
    """One measured stage; `data` holds stage figures (rows, API calls, ...)."""

    name: str
    status: str
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def say(message: str) -> None:
    """A progress line of the benchmark, from the harness or a stage's child."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _peak_rss_mib() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) / 1024


def _child(target: str, kwargs: dict[str, Any], queue: Any) -> None:
    logging.basicConfig(level=logging.WARNING)
    module, _, func = target.rpartition(".")
    started = time.perf_counter()
    try:
        fn = getattr(importlib.import_module(module), func)
        started = time.perf_counter()
        data = fn(**kwargs) or {}
        error = str(data.pop("_failed", "") or "")
        status = FAILED if error else OK
    except Unavailable as exc:
        data, status, error = {}, UNAVAILABLE, str(exc)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which goes on
        data, status = {}, FAILED
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    seconds = time.perf_counter() - started
    queue.put({"status": status, "seconds": seconds, "data": data, "error": error,
               "peak_rss_mib": _peak_rss_mib()})  # fmt: skip


def run_stage(name: str, target: str, **kwargs: Any) -> StageResult:
    """Run `target` ("module.function") with kwargs in a spawned child; never raises."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(target, kwargs, queue), name=f"bench-{name}")
    proc.start()
    try:
        out = queue.get()
    except BaseException:
        proc.kill()
        raise
    finally:
        proc.join()
    result = StageResult(name=name, **out)
    if result.status == FAILED:
        log.error("stage %s failed: %s", name, result.error)
    return result
