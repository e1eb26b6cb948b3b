"""What every surface of the local CRM's API shares: the request, the response and Salesforce's error shape."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from local_crm.schema import OBJECTS, SObject


class ApiError(Exception):
    """An error response in Salesforce's REST shape `[{"message", "errorCode", ...}]`."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields
        self.headers = headers or {}

    def body(self) -> list[dict[str, Any]]:
        out: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            out["fields"] = self.fields
        return [out]


@dataclass
class Response:
    status: int
    body: Any = None  # JSON-serialisable, or bytes/str for CSV
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    records: int = 0


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any
    body: bytes
    version: str = ""
    api_path: str = ""
    user_id: str | None = None
    token: str | None = None
    client_id: str | None = None  # the connected app: the session's, or the token request's
    received_s: float = 0.0  # arrival on the API's monotonic clock

    def json(self) -> Any:
        try:
            return json.loads(self.body.decode("utf-8") or "null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected content: {exc}") from None

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


def method_not_allowed(method: str, allowed: str) -> ApiError:
    return ApiError(
        405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}"
    )


def object_or_404(name: str, status: int = 404) -> SObject:
    if name not in OBJECTS:
        code = "NOT_FOUND" if status == 404 else "INVALID_TYPE"
        raise ApiError(
            status, code, f"The requested resource does not exist: sObject type '{name}'"
        )
    return OBJECTS[name]
