"""The behaviour model's parameters: a validated YAML (`behaviour.yml` holds the defaults).

Strict like the policy: unknown keys are errors, rates have ranges, and a bad file is named
with the field at fault (`BehaviourError`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from local_crm.schema import RETURN_REASONS, SIGNAL_TYPES

DEFAULTS_FILE = Path(__file__).with_name("behaviour.yml")
TIERS = ("A", "B", "C", "D")
Share = Annotated[float, Field(ge=0, le=1)]
Rate = Annotated[float, Field(ge=0, le=10_000)]
Style = Literal["diligent", "hoarder", "idle"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RepOverride(_Strict):
    """One rep's fixed behaviour (by Username), beating the calibration."""

    style: Style | None = None
    accounts_per_week: Rate | None = None
    touches_per_account: Annotated[float, Field(ge=1, le=100)] | None = None


class Reps(_Strict):
    accounts_per_week: Rate = 10
    touches_per_account: Annotated[float, Field(ge=1, le=100)] = 1.5
    workdays: tuple[Annotated[int, Field(ge=0, le=6)], ...] = (0, 1, 2, 3, 4)
    hoarder_worked_share: Share = 0.35
    hoarder_focus_share: Share = 0.25
    hot_response_days: Annotated[float, Field(ge=0, le=365)] = 2.0
    return_propensity: Share = 0.03
    return_reasons: dict[str, Annotated[float, Field(ge=0)]] = {"no_response": 1.0}
    overrides: dict[str, RepOverride] = {}

    @field_validator("return_reasons")
    @classmethod
    def _known_reasons(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(RETURN_REASONS))
        if unknown:
            raise ValueError(f"unknown return reason(s) {unknown}; allowed: {list(RETURN_REASONS)}")
        if not sum(value.values()) > 0:
            raise ValueError("return_reasons must have a positive share")
        return value

    @field_validator("workdays")
    @classmethod
    def _some_days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value:
            raise ValueError("workdays must list at least one day (Monday = 0)")
        return tuple(sorted(set(value)))


class Opportunities(_Strict):
    touched_week_chance: dict[str, Share] = {"A": 0.03, "B": 0.02, "C": 0.01, "D": 0.005}
    per_touch_lift: Annotated[float, Field(ge=0, le=10)] = 0.2
    hot_lift: Annotated[float, Field(ge=0, le=100)] = 2.0
    amount: Annotated[float, Field(ge=0)] = 25000
    close_in_days: Annotated[int, Field(ge=1, le=3650)] = 60

    @field_validator("touched_week_chance")
    @classmethod
    def _every_tier(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != set(TIERS):
            raise ValueError(f"touched_week_chance needs exactly the tiers {list(TIERS)}")
        return value


class Market(_Strict):
    signals_per_week: Rate | None = None
    leads_per_week: Rate | None = None
    signal_score: Annotated[float, Field(ge=0, le=100)] = 90
    signal_type: Literal[SIGNAL_TYPES] = "intent_surge"  # type: ignore[valid-type]


class BehaviourParams(_Strict):
    version: Literal[1] = 1
    seed: int = 7
    history_weeks: Annotated[int, Field(ge=1, le=104)] = 8
    reps: Reps = Reps()
    opportunities: Opportunities = Opportunities()
    market: Market = Market()


class BehaviourError(ValueError):
    """A behaviour file that does not validate; the message names the file and field."""


def load_params(path: Path | None = None, **overrides: object) -> BehaviourParams:
    """Read a behaviour file (default: the shipped `behaviour.yml`), then apply `overrides`
    (top-level keys, e.g. seed=3) and validate."""
    file = Path(path) if path else DEFAULTS_FILE
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise BehaviourError(f"{file}: file not found") from None
    except yaml.YAMLError as exc:
        raise BehaviourError(f"{file}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise BehaviourError(f"{file}: the top level must be a mapping")
    data.update(overrides)
    try:
        return BehaviourParams.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BehaviourError(f"{file}: {where}: {first['msg']}") from None
