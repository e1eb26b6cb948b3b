"""The `people` section of books.yml (rep departures, manual changes): defaults and bad values."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policy import PolicyError, load_policy
from tests.policy.test_policy_model import default_data, set_path, write

BAD_PEOPLE = [
    ("people.departures.release_on", ["owner_inactive", "fired"], "release_on[1]", "'role_change'"),
    ("people.departures.release_on", ["role_change", "role_change"], "release_on", "duplicate"),
    ("people.departures.out_of_office_release_days", 0, "out_of_office_release_days", "1..3650"),
    ("people.manual_changes.write_back_users", ["integration"], "write_back_users", "username"),
    ("people.manual_changes.write_back_users", [], "write_back_users", "at least 1"),
    ("people.departures.release", ["owner_inactive"], "people.departures.release", "release_on"),
]


@pytest.mark.parametrize(("dotted", "value", "field", "allowed"), BAD_PEOPLE)
def test_bad_people_value_fails_naming_field(
    tmp_path: Path, dotted: str, value: Any, field: str, allowed: str
) -> None:
    data = default_data()
    set_path(data, dotted, value)
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, data))
    assert field in str(caught.value) and allowed in str(caught.value), str(caught.value)


def test_without_people_section_departures_release_and_out_of_office_is_off(
    tmp_path: Path,
) -> None:
    data = default_data()
    del data["people"]
    people = load_policy(write(tmp_path, data)).people
    assert set(people.departures.release_on) == {"owner_inactive", "role_change", "segment_change"}
    assert people.departures.out_of_office_release_days is None
    assert people.manual_changes.write_back_users == ["integration@books.local"]
