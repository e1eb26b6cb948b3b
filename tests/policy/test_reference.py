"""docs/policy.md is the policy reference generated from the model: every key is described and
the committed file is current (regenerate: `python -m policy.reference > docs/policy.md`)."""

from __future__ import annotations

import typing
from pathlib import Path

from pydantic import BaseModel

from policy.model import Policy
from policy.reference import render

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def _models(model: type[BaseModel], seen: set[type]) -> set[type]:
    seen.add(model)
    for info in model.model_fields.values():
        stack = [info.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel) and tp not in seen:
                _models(tp, seen)
            stack.extend(typing.get_args(tp))
    return seen


def test_every_policy_key_has_a_description() -> None:
    missing = [
        f"{model.__name__}.{name}"
        for model in _models(Policy, set())
        for name, info in model.model_fields.items()
        if not (info.description or "").strip()
    ]
    assert missing == [], (
        f"policy keys without a description (docstring under the field): {missing}"
    )


def test_docs_policy_md_is_current() -> None:
    assert REFERENCE.read_text() == render(), (
        "docs/policy.md is not current: run `python -m policy.reference > docs/policy.md`"
    )


def test_reference_lists_every_key_with_its_default_and_range() -> None:
    text = render()
    for line in (
        "| `lifecycle.working_window_days` | integer | `30` | >= 15, <= 90 |",
        "| `guards.max_share_of_one_book` | number | `0.5` | > 0, <= 1 |",
        "| `crm.pool_users` | list of text | required | at least 1 item |",
    ):
        assert line in text
