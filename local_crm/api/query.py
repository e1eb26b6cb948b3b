"""REST `query` / `queryAll` with query locators (`nextRecordsUrl`): each open cursor is a read
snapshot on its own connection, expired when idle as Salesforce does."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from local_crm.api.base import ApiError, Request, Response
from local_crm.db import make_id
from local_crm.soql import CompiledQuery, SoqlError, compile_soql, json_value

CURSOR_IDLE_SECONDS = 15 * 60  # Salesforce expires idle query locators after 15 minutes
MAX_OPEN_CURSORS = 50


class QueryRoutes:
    """SOQL over REST, paged by query locators; mixed into `server.CrmApi`."""

    def _query(self, req: Request, parts: list[str], include_deleted: bool) -> Response:
        size = self.page_size
        options = req.headers.get("Sforce-Query-Options", "")
        mm = re.search(r"batchSize=(\d+)", options)
        if mm:
            size = max(200, min(2000, int(mm.group(1))))
        if len(parts) == 2:  # /query/<locator>-<offset>
            return self._query_more(req, parts[1], size)
        if len(parts) != 1:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        self._expire_cursors()
        text = req.param("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "query parameter q is required")
        try:
            q = compile_soql(text, include_deleted=include_deleted, now=self.store.clock.now())
        except SoqlError as err:
            raise ApiError(400, err.error_code, err.message) from None
        con = self.store.connect()
        try:
            con.execute("BEGIN")  # one read snapshot for the count and every page (WAL)
            total = int(con.execute(q.count_sql, q.count_params).fetchone()[0])
            if q.is_count:
                con.rollback()
                con.close()
                return Response(200, {"totalSize": total, "done": True, "records": []})
            cur = con.execute(q.sql, q.params)
        except Exception:
            con.close()
            raise
        cursor = Cursor(con, cur, q, total, 0, include_deleted, req.user_id or "", time.monotonic())
        locator = make_id("01g", next(self._locator_seq))
        return self._page(req, locator, cursor, size, first=True)

    def _query_more(self, req: Request, token: str, size: int) -> Response:
        locator, _, offset = token.rpartition("-")
        self._expire_cursors()
        with self._cursor_lock:
            cursor = self._cursors.get(locator)
        if cursor is None or not offset.isdigit() or int(offset) != cursor.fetched:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(req, locator, cursor, size, first=False)

    def _page(self, req: Request, locator: str, cursor: Cursor, size: int, first: bool) -> Response:
        with cursor.lock:
            rows = cursor.cur.fetchmany(size)
            cursor.fetched += len(rows)
            cursor.last_used = time.monotonic()
            done = len(rows) < size or cursor.fetched >= cursor.total
            obj = cursor.query.object
            prefix = f"/services/data/v{req.version}/sobjects/{obj.name}/"
            records = []
            for row in rows:
                rec: dict[str, Any] = {"attributes": {"type": obj.name, "url": prefix + row[0]}}
                for f, value in zip(cursor.query.fields, row[1:], strict=True):
                    rec[f.name] = json_value(f, value)
                records.append(rec)
        body: dict[str, Any] = {"totalSize": cursor.total, "done": done}
        with self._cursor_lock:
            if done:
                self._cursors.pop(locator, None)
                cursor.close()
            else:
                self._cursors[locator] = cursor
                self._cursors.move_to_end(locator)
                kind = "queryAll" if cursor.include_deleted else "query"
                body["nextRecordsUrl"] = (
                    f"/services/data/v{req.version}/{kind}/{locator}-{cursor.fetched}"
                )
                while len(self._cursors) > MAX_OPEN_CURSORS:
                    _, old = self._cursors.popitem(last=False)
                    old.close()
        body["records"] = records
        return Response(200, body, records=len(records))

    def _expire_cursors(self) -> None:
        now = time.monotonic()
        with self._cursor_lock:
            for key in [
                k for k, c in self._cursors.items() if now - c.last_used > CURSOR_IDLE_SECONDS
            ]:
                self._cursors.pop(key).close()
            for key in [
                k for k, c in self._query_jobs.items() if now - c.last_used > CURSOR_IDLE_SECONDS
            ]:
                self._query_jobs.pop(key).close()


@dataclass
class Cursor:
    """An open query locator: a read transaction (snapshot) on its own connection."""

    con: Any
    cur: Any
    query: CompiledQuery
    total: int
    fetched: int
    include_deleted: bool
    user_id: str
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        try:
            self.con.rollback()
        finally:
            self.con.close()
