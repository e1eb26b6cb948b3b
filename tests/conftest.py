"""Root pytest configuration: kept minimal on purpose; fixtures live next to the tests."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `spark` need the spark extra and Java (make test-spark): they run only when
    `-m` names `spark`, and are otherwise deselected (reported as such, never skipped).

    Tests in files marked `long_pole` go first (stable order otherwise), so `make test`'s
    workers (`--dist loadfile --no-loadscope-reorder`) start the longest files at once instead of
    finding a ten-minute file at the end of the queue with one worker left to run it."""
    if "spark" not in config.option.markexpr:
        spark = [item for item in items if item.get_closest_marker("spark") is not None]
        if spark:
            config.hook.pytest_deselected(items=spark)
            items[:] = [item for item in items if item.get_closest_marker("spark") is None]
    items.sort(key=lambda item: item.get_closest_marker("long_pole") is None)
