"""The policy reference (docs/policy.md), generated from the pydantic model.

Why generated: the model is the one place a key, its type, default, range and meaning are
defined; a hand-written reference would drift. `python -m policy.reference > docs/policy.md`
rewrites it, and tests/policy/test_reference.py fails when the file is not current.
"""

from __future__ import annotations

import json
import sys
import types
import typing
from typing import Any, Literal

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from policy.model import Policy

HEADER = """# Policy reference (books.yml)

Generated from the pydantic model in `policy/` by `python -m policy.reference > docs/policy.md`;
do not edit by hand (a test fails when this file is not current). Every key of `books.yml`, with
its type, default, allowed values and what it changes. A key without a default is required.
Unknown keys are errors, and a bad value fails at load naming the key
(`books validate-policy books.yml`). Words such as *pool*, *book*, *slot* or *rest* are
explained in [domain.md](domain.md).
"""

# Sections read as "section"; the list items of the filter language get their own name.
MODEL_NAMES = {"Condition": "condition", "FitRule": "fit rule (a condition with points)"}


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _args(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp)


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _type_name(tp: Any) -> str:
    """A reader's name for a type: `int`, `list of text`, `one of a, b`, `X or null`."""
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is typing.Annotated:
        return _type_name(_args(tp)[0])
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in _args(tp))
    if _is_union(tp):
        return " or ".join(_type_name(a) for a in _args(tp))
    if origin is list:
        return f"list of {_type_name(_args(tp)[0])}"
    if _is_model(tp):
        return MODEL_NAMES.get(tp.__name__, "section")
    names = {str: "text", int: "integer", float: "number", bool: "true/false"}
    return names.get(tp, getattr(tp, "__name__", str(tp)))


def _bounds(info: FieldInfo, tp: Any) -> str:
    """Allowed range from the field's constraints (and an Annotated alias's)."""
    metadata = list(info.metadata)
    if typing.get_origin(tp) is typing.Annotated:
        for extra in _args(tp)[1:]:
            metadata.extend(getattr(extra, "metadata", [extra]))
    parts = []
    for item in metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            value = getattr(item, attr, None)
            if isinstance(item, annotated_types.BaseMetadata) and value is not None:
                parts.append(f"{sign} {value:g}" if isinstance(value, float) else f"{sign} {value}")
        min_length = getattr(item, "min_length", None)
        if min_length:
            parts.append(f"at least {min_length} item{'s' if min_length > 1 else ''}")
    return ", ".join(parts)


def _default(info: FieldInfo) -> str:
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return "`" + json.dumps(value, ensure_ascii=False) + "`"


def _submodel(tp: Any) -> type[BaseModel] | None:
    """The section model a field holds (directly, in a list or as `X | None`)."""
    if _is_model(tp):
        return tp
    if typing.get_origin(tp) is list or _is_union(tp):
        for arg in _args(tp):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _rows(model: type[BaseModel], prefix: str, seen: dict[type, str]) -> list[tuple[str, ...]]:
    """One row per key of `model` under `prefix`, then the keys of its sections."""
    rows: list[tuple[str, ...]] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, info in model.model_fields.items():
        tp = info.annotation
        key = f"{prefix}{name}"
        sub = _submodel(tp)
        if sub is not None and typing.get_origin(tp) is list:
            key_of_items = f"{key}[]"
        else:
            key_of_items = key
        description = info.description or ""
        if sub is not None:
            if sub in seen:
                description += f" Same keys as `{seen[sub]}`."
            else:
                seen[sub] = key_of_items
                nested.append((key_of_items, sub))
        rows.append(
            (
                f"`{key}`",
                _cell(_type_name(tp)),
                _cell(_default(info)),
                _cell(_bounds(info, tp)),
                _cell(description),
            )
        )
    for key, sub in nested:
        rows.extend(_rows(sub, f"{key}.", seen))
    return rows


def render() -> str:
    """docs/policy.md: one table per top-level section of the policy."""
    lines = [HEADER]
    seen: dict[type, str] = {}
    top = Policy.model_fields
    simple = [(n, i) for n, i in top.items() if _submodel(i.annotation) is None]
    lines += ["## Top level", "", "| key | type | default | allowed | what it changes |"]
    lines += ["|---|---|---|---|---|"]
    for name, info in simple:
        lines.append(
            f"| `{name}` | {_cell(_type_name(info.annotation))} | {_cell(_default(info))} | "
            f"{_cell(_bounds(info, info.annotation))} | {_cell(info.description or '')} |"
        )
    for name, info in top.items():
        sub = _submodel(info.annotation)
        if sub is None:
            continue
        key = f"{name}[]" if typing.get_origin(info.annotation) is list else name
        seen[sub] = key
        lines += ["", f"## `{name}`", "", _cell(info.description or ""), ""]
        lines += [f"Default: {_cell(_default(info))}." if _default(info) != "required" else ""]
        lines += [
            "",
            "| key | type | default | allowed | what it changes |",
            "|---|---|---|---|---|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in _rows(sub, f"{key}.", seen)]
    return "\n".join(line for line in _collapse(lines)) + "\n"


def _collapse(lines: list[str]) -> list[str]:
    """Drop repeated blank lines (sections without a default)."""
    out: list[str] = []
    for line in lines:
        if line == "" and out and out[-1] == "":
            continue
        out.append(line)
    return out


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
