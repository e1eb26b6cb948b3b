"""Root pytest configuration: kept minimal on purpose; fixtures live next to the tests."""
