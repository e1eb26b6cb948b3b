"""The destination's record reads: one sObject Collections retrieve, matched by Id."""

from __future__ import annotations

from local_crm.db import make_id
from reverse_etl import destination as dest


class _Response:
    def __init__(self, body: object):
        self.body = body

    def json(self) -> object:
        return self.body


class _Conn:
    """Answers a retrieve with its entries reversed and a null where a record is gone."""

    api_usage = None
    request_count = 0

    def __init__(self, records: dict[str, dict]):
        self.records = records
        self.calls: list[tuple[str, str, dict]] = []

    def request(self, method: str, path: str, **kwargs: object) -> _Response:
        body = kwargs["json"]
        self.calls.append((method, path, body))  # type: ignore[arg-type]
        found = [self.records.get(i) for i in body["ids"]]  # type: ignore[index]
        return _Response(list(reversed(found)))


def test_read_records_matches_entries_by_id_not_position() -> None:
    a, b, gone = (make_id("001", n) for n in (1, 2, 3))
    conn = _Conn({
        a: {"attributes": {"type": "Account"}, "Id": a, "OwnerId": "005x", "Rest_Until__c": None},
        b: {"attributes": {"type": "Account"}, "Id": b[:15], "OwnerId": "005y", "Rest_Until__c": "2025-01-02"},
    })  # fmt: skip
    got = dest.read_records(conn, "Account", [a[:15], b, gone], ["OwnerId", "Rest_Until__c"])
    assert got == {
        a: {"OwnerId": "005x", "Rest_Until__c": None},
        b: {"OwnerId": "005y", "Rest_Until__c": "2025-01-02"},
    }
    ((method, path, body),) = conn.calls
    assert (method, path) == ("POST", "composite/sobjects/Account")
    assert body == {"ids": [a, b, gone], "fields": ["Id", "OwnerId", "Rest_Until__c"]}
