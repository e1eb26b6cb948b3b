"""Load books.yml into a validated Policy, fingerprint it, and hand it to dbt.

Errors are `PolicyError`s whose message names the file, the field path
(`lifecycle.working_window_days`) and what is allowed, so the CLI can print one line and exit
non-zero without a traceback.
"""

from __future__ import annotations

import hashlib
import json
import re
import types
import typing
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from policy.model import Policy


class PolicyError(ValueError):
    """A policy file that cannot be used; `errors` holds (field path, message) pairs."""

    def __init__(self, path: str | Path, errors: list[tuple[str, str]]):
        self.path = str(path)
        self.errors = errors
        shown = "; ".join(f"{field}: {msg}" if field else msg for field, msg in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        super().__init__(f"{self.path}: {shown}{more}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses duplicate keys (YAML would keep the last silently)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def _field_path(loc: tuple[int | str, ...], data: Any = None) -> str:
    """`('fit', 'rules', 0, 'op')` -> `fit.rules[target_industry].op` (name/key when valid)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            item = data[part] if isinstance(data, list) and part < len(data) else None
            label = item.get("name", item.get("key")) if isinstance(item, dict) else None
            out += f"[{label}]" if isinstance(label, str) and _NAME.match(label) else f"[{part}]"
            data = item
        else:
            out += f".{part}" if out else str(part)
            data = data.get(part) if isinstance(data, dict) else None
    return out


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types inside Optional/Union/list/Annotated annotations."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _field_info(loc: tuple[int | str, ...]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """Walk the model along an error location: the owning model and the FieldInfo at the end."""
    model: type[BaseModel] | None = Policy
    info: FieldInfo | None = None
    for part in loc:
        if isinstance(part, int):
            continue
        if model is None or part not in model.model_fields:
            return model, None
        info = model.model_fields[part]
        model = None
        for candidate in _unwrap(info.annotation):
            if typing.get_origin(candidate) in (list, dict):
                candidate = typing.get_args(candidate)[-1]
            for inner in _unwrap(candidate):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    model = inner
    return model, info


def _hint(error: dict[str, Any]) -> str:
    """What is allowed at the error's location: keys, enum values or a numeric range."""
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        model, _ = _field_info(loc[:-1])
        if model is not None:
            return f" (allowed keys: {', '.join(model.model_fields)})"
        return ""
    _, info = _field_info(loc)
    if info is None:
        return ""
    bounds = {}
    for meta in info.metadata:
        for name in ("ge", "gt", "le", "lt"):
            if getattr(meta, name, None) is not None:
                bounds[name] = getattr(meta, name)
    if bounds and error["type"] in (
        "greater_than_equal",
        "greater_than",
        "less_than_equal",
        "less_than",
    ):
        low = f"{bounds['ge']}" if "ge" in bounds else f">{bounds['gt']}" if "gt" in bounds else ""
        high = f"{bounds['le']}" if "le" in bounds else f"<{bounds['lt']}" if "lt" in bounds else ""
        return f" (allowed range: {low}..{high})"
    return ""


def _message(error: dict[str, Any]) -> str:
    msg = str(error["msg"])
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if error["type"] == "missing":
        return "required field is missing"
    return msg + _hint(error)


def validate_policy_data(data: Any, path: str | Path = "<policy>") -> Policy:
    """Validate already-parsed YAML data (used by tests and by load_policy)."""
    if not isinstance(data, dict):
        raise PolicyError(path, [("", "the file must be a YAML mapping of sections")])
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        errors = [(_field_path(tuple(e["loc"]), data), _message(e)) for e in exc.errors()]
        raise PolicyError(path, errors) from None


def load_policy(path: str | Path) -> Policy:
    """Read and validate a policy file; raise PolicyError naming the file and field."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(file, [("", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(file, [("", f"cannot read: {exc}")]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise PolicyError(file, [("", f"invalid YAML at {where}{problem}")]) from None
    return validate_policy_data(data, file)


def canonical_json(policy: Policy) -> str:
    """The normalised policy: validated, defaults applied, keys sorted, compact."""
    return json.dumps(
        policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )


def policy_version(policy: Policy) -> str:
    """sha256 hex of the canonical JSON; comments, key order and formatting do not change it."""
    return hashlib.sha256(canonical_json(policy).encode("utf-8")).hexdigest()


def short_version(policy: Policy) -> str:
    """The first 12 hex characters of policy_version, for display."""
    return policy_version(policy)[:12]


# The environment variable through which dbt reads the validated policy (macros/policy.sql).
DBT_POLICY_ENV = "BOOKS_DBT_POLICY"


def policy_dbt_vars(policy: Policy) -> dict[str, Any]:
    """The validated books.yml as the dict dbt reads (`policy` in `to_dbt_vars`); dbt gets it
    through the environment (`policy_dbt_env`), never as a command-line var.

    Filters travel as structured data; dbt renders them (macros/policy_filter.sql), the one SQL
    renderer."""
    return {"policy": policy.model_dump(mode="json")}


def policy_dbt_env(policy: Policy | Mapping[str, Any]) -> dict[str, str]:
    """The environment every dbt invocation gets the policy from (`DBT_POLICY_ENV`, the JSON of
    the validated books.yml, or of a policy dict as `policy_dbt_vars` makes it).

    Why not `--vars`: the command line is printed with the dbt command and shown in the process
    list, and dbt reparses the whole project when vars change; an environment variable is
    neither, and when it changes dbt reparses only the models that read it. (dbt 1.11 reads
    vars only from the command line, and its Jinja cannot open a file.)"""
    data = policy.model_dump(mode="json") if isinstance(policy, Policy) else dict(policy)
    return {DBT_POLICY_ENV: json.dumps(data, sort_keys=True, separators=(",", ":"))}


def to_dbt_vars(policy: Policy, as_of_date: date | str, run_id: str) -> dict[str, Any]:
    """`policy_dbt_vars` plus the run's as-of date, run id and policy version: for dbt unit
    tests and ad-hoc runs, where these vars override ops.run_context (CONTRACTS.md). The
    `policy` entry goes to dbt by `policy_dbt_env`, the others as `--vars`."""
    if isinstance(as_of_date, str):
        try:
            as_of_date = date.fromisoformat(as_of_date)
        except ValueError:
            raise ValueError(f"as_of_date {as_of_date!r} is not a date YYYY-MM-DD") from None
    if isinstance(as_of_date, datetime):
        as_of_date = as_of_date.date()
    if not isinstance(as_of_date, date):
        raise ValueError(f"as_of_date must be a date, got {as_of_date!r}")
    if not run_id:
        raise ValueError("run_id must be a non-empty string")
    return {
        "as_of_date": as_of_date.isoformat(),
        "run_id": str(run_id),
        "policy_version": policy_version(policy),
        **policy_dbt_vars(policy),
    }
