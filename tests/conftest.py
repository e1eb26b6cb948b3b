"""Root pytest configuration: kept minimal on purpose; fixtures live next to the tests."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests in files marked `long_pole` go first (stable order otherwise), so `make test`'s
    workers (`--dist loadfile --no-loadscope-reorder`) start the longest files at once instead of
    finding a ten-minute file at the end of the queue with one worker left to run it."""
    items.sort(key=lambda item: item.get_closest_marker("long_pole") is None)
