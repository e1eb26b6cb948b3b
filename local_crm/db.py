"""SQLite store of the local CRM: one table per object, a persisted clock, Salesforce-style ids.

The store is the CRM's only state. The HTTP server and the world generator both write through it,
so Ids, system fields and field-history rows are produced in exactly one place. Timestamps come
from the persisted `Clock`, never from the wall clock, so a test or a simulation can move time.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from local_crm.schema import OBJECTS, TRACKED_ACCOUNT_FIELDS, Field, SObject

log = logging.getLogger(__name__)

DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.000+0000"
DEFAULT_EPOCH = datetime(2025, 1, 6, tzinfo=UTC)  # clock start of a fresh store (a Monday)
ARCHIVE_AFTER_DAYS = 365  # Tasks/Events older than this are archived (hidden from `query`)
ACTIVITY_OBJECTS = ("Task", "Event")
BATCH_ROWS = 100_000

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_INFIX = "Dy0"  # stands where Salesforce puts the pod and a reserved character

SYSTEM_DATETIME_FIELDS = ("CreatedDate", "LastModifiedDate", "SystemModstamp")


# ---------------------------------------------------------------------------- formats


def format_datetime(dt: datetime) -> str:
    """Storage/API format `YYYY-MM-DDTHH:MM:SS.000+0000` (UTC, sorts as text)."""
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: the CRM stores UTC, pass a tz-aware value")
    return dt.astimezone(UTC).strftime(DATETIME_FORMAT)


def advanced_stamp(now: datetime, previous: str | None) -> str:
    """A write's SystemModstamp: the clock, or one tick (the format keeps whole seconds) after
    the record's previous stamp when the clock has not passed it. Salesforce's stamp always
    advances on a write; a frozen clock (tests, hand-built worlds) must not hide one."""
    if previous is None:
        return format_datetime(now)
    return format_datetime(max(now, parse_datetime(previous) + timedelta(seconds=1)))


def format_date(d: date) -> str:
    """Storage/API format `YYYY-MM-DD`."""
    if isinstance(d, datetime):
        d = d.date()
    return d.isoformat()


def parse_datetime(text: str) -> datetime:
    """Parse the storage format and ISO-8601 variants (`Z`, `+00:00`, fractions) to UTC."""
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1] + "+00:00"
    if len(s) >= 5 and s[-5] in "+-" and s[-3] != ":":  # +0000 -> +00:00
        s = s[:-2] + ":" + s[-2:]
    try:
        dt = datetime.fromisoformat(s)
    except ValueError as exc:
        raise ValueError(f"not a datetime: {text!r}") from exc
    if dt.tzinfo is None:
        raise ValueError(f"datetime without a time zone: {text!r}")
    return dt.astimezone(UTC)


def parse_date(text: str) -> date:
    """Parse `YYYY-MM-DD`."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError as exc:
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}") from exc


# ---------------------------------------------------------------------------- ids


def id_checksum(id15: str) -> str:
    """Salesforce's case-safe suffix: one char per 5-char chunk encoding which chars are upper."""
    out = ""
    for start in (0, 5, 10):
        bits = 0
        for i, ch in enumerate(id15[start : start + 5]):
            if ch.isupper():
                bits |= 1 << i
        out += _CHECKSUM_CHARS[bits]
    return out


def to_id18(value: str) -> str:
    """Normalise a 15- or 18-char id to 18 chars (case-safe); raise ValueError otherwise."""
    if len(value) == 18 and value.isalnum():
        if id_checksum(value[:15]) != value[15:]:
            # Salesforce accepts an 18-char id whose suffix only differs in case of the base.
            raise ValueError(f"malformed id {value}")
        return value
    if len(value) == 15 and value.isalnum():
        return value + id_checksum(value)
    raise ValueError(f"malformed id {value}")


def make_id(key_prefix: str, number: int) -> str:
    """Id number `number` of an object: prefix + infix + 9 base62 digits + checksum."""
    return make_ids(key_prefix, number, 1)[0]


_ID_DIGITS = 9
_BASE62_CODES = np.frombuffer(_BASE62.encode(), dtype=np.uint8)
_CHECKSUM_CODES = np.frombuffer(_CHECKSUM_CHARS.encode(), dtype=np.uint8)


def make_ids(key_prefix: str, start: int, n: int) -> list[str]:
    """Ids number `start` .. `start + n - 1` of an object, computed with numpy.

    Why: the generator mints tens of millions of ids; the same prefix + infix + 9 base62
    digits + case-safe checksum as `id_checksum`, without a Python loop per id.
    """
    head = key_prefix + _ID_INFIX
    if len(head) != 6 or n < 0 or start < 0:
        raise ValueError(f"bad id request: prefix {key_prefix!r}, start {start}, n {n}")
    if start + n > 62**_ID_DIGITS:
        raise OverflowError(f"id sequence exhausted for prefix {key_prefix}")
    rest = np.arange(start, start + n, dtype=np.int64)
    digits = np.empty((n, _ID_DIGITS), dtype=np.int64)
    for pos in range(_ID_DIGITS - 1, -1, -1):
        rest, digits[:, pos] = np.divmod(rest, 62)
    chars = np.empty((n, 18), dtype=np.uint8)
    chars[:, :6] = np.frombuffer(head.encode(), dtype=np.uint8)
    chars[:, 6:15] = _BASE62_CODES[digits]
    upper = (chars[:, :15] >= ord("A")) & (chars[:, :15] <= ord("Z"))
    weights = 1 << np.arange(5)
    for k in range(3):  # one checksum char per 5-char chunk: bit i = char i is upper case
        chars[:, 15 + k] = _CHECKSUM_CODES[upper[:, 5 * k : 5 * k + 5] @ weights]
    return chars.view("S18").ravel().astype("U18").tolist()


def object_for_id(record_id: str) -> SObject | None:
    """The object whose key prefix the id carries, if any."""
    for obj in OBJECTS.values():
        if record_id.startswith(obj.key_prefix):
            return obj
    return None


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RecordError:
    """One error on one record, as Salesforce reports it (statusCode, message, fields)."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "statusCode": self.status_code,
            "message": self.message,
            "fields": list(self.fields),
        }


@dataclass
class RecordResult:
    """Outcome of one record of a write call; results keep request order."""

    id: str | None
    success: bool
    errors: list[RecordError] = field(default_factory=list)
    created: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "success": self.success,
            "errors": [e.as_json() for e in self.errors],
        }


class CrmWriteError(Exception):
    """A convenience write (`CrmStore.insert`) failed; carries the per-record results."""

    def __init__(self, object_name: str, results: list[RecordResult]):
        self.results = results
        bad = [(i, r) for i, r in enumerate(results) if not r.success]
        detail = "; ".join(
            f"record {i}: " + ", ".join(f"{e.status_code} {e.message}" for e in r.errors)
            for i, r in bad[:5]
        )
        super().__init__(f"{object_name}: {len(bad)} of {len(results)} records failed: {detail}")


ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header",
)


# ---------------------------------------------------------------------------- schema DDL


def sql_type(f: Field) -> str:
    if f.type in ("boolean", "int"):
        return "INTEGER"
    if f.type in ("double", "currency"):
        return "REAL"
    return "TEXT"


def qi(name: str) -> str:
    """Quote an identifier that comes from schema.py (never from a request)."""
    return '"' + name.replace('"', '""') + '"'


_FIELD_MAPS: dict[str, dict[str, Field]] = {
    o.name: {f.name: f for f in o.fields} for o in OBJECTS.values()
}


def field_map(obj: SObject) -> dict[str, Field]:
    """Field name -> Field of an object (a dict: validation runs per record)."""
    return _FIELD_MAPS[obj.name]


def get_object(object_name: str) -> SObject:
    try:
        return OBJECTS[object_name]
    except KeyError:
        raise KeyError(f"unknown CRM object {object_name!r}") from None


_INTERNAL_DDL = """
CREATE TABLE IF NOT EXISTS _meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _connected_app (
    client_id TEXT PRIMARY KEY, client_secret TEXT NOT NULL, run_as_user_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _credential (
    username TEXT PRIMARY KEY, password_sha256 TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS _session (
    token TEXT PRIMARY KEY, user_id TEXT NOT NULL, client_id TEXT, issued_at TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS _request_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, method TEXT NOT NULL,
    path TEXT NOT NULL, query TEXT, status INTEGER NOT NULL, records INTEGER NOT NULL DEFAULT 0,
    is_write INTEGER NOT NULL DEFAULT 0, user_id TEXT, error_code TEXT, duration_ms REAL,
    client_id TEXT, retry_after REAL, received_s REAL);
CREATE TABLE IF NOT EXISTS _bulk_job (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, object TEXT, operation TEXT NOT NULL, query TEXT,
    state TEXT NOT NULL, created_by TEXT, created_date TEXT NOT NULL, system_modstamp TEXT NOT NULL,
    column_delimiter TEXT NOT NULL, line_ending TEXT NOT NULL, processed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0, error_message TEXT, total_rows INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS _bulk_data (
    job_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (job_id, seq));
CREATE TABLE IF NOT EXISTS _bulk_result (
    job_id TEXT NOT NULL, kind TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (job_id, kind, seq));
"""

# Request-log columns added after the first release (client, Retry-After sent, arrival time on
# the server's monotonic clock: what a test needs to prove no request came before Retry-After).
_REQUEST_LOG_ADDED = {"client_id": "TEXT", "retry_after": "REAL", "received_s": "REAL"}


def _add_missing_columns(con: sqlite3.Connection, table: str, columns: dict[str, str]) -> None:
    have = {row[1] for row in con.execute(f'PRAGMA table_info("{table}")')}
    for name, kind in columns.items():
        if name not in have:
            con.execute(f'ALTER TABLE "{table}" ADD COLUMN "{name}" {kind}')


_INDEXES = {
    "Account": ("SystemModstamp", "OwnerId", "ParentId"),
    "Contact": ("SystemModstamp", "AccountId"),
    "Lead": ("SystemModstamp",),
    "Opportunity": ("SystemModstamp", "AccountId"),
    "Task": ("SystemModstamp", "AccountId", "ActivityDate"),
    "Event": ("SystemModstamp", "AccountId", "ActivityDate"),
    "Signal__c": ("SystemModstamp", "Account__c"),
    "AccountHistory": ("CreatedDate", "AccountId"),
    "User": ("SystemModstamp", "Username"),
}


def _schema_ddl() -> list[str]:
    out = []
    for obj in OBJECTS.values():
        cols = []
        for f in obj.fields:
            col = f"{qi(f.name)} {sql_type(f)}"
            if f.name == "Id":
                col += " PRIMARY KEY"
            cols.append(col)
        out.append(f"CREATE TABLE IF NOT EXISTS {qi(obj.name)} ({', '.join(cols)})")
    return out + [ddl for _, ddl in _index_ddl()]


def _index_ddl() -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of every secondary index of the object tables."""
    out = []
    for obj in OBJECTS.values():
        for col in _INDEXES.get(obj.name, ()):
            name = f"ix_{obj.name}_{col}"
            out.append(
                (name, f"CREATE INDEX IF NOT EXISTS {qi(name)} ON {qi(obj.name)} ({qi(col)})")
            )
    return out


# ---------------------------------------------------------------------------- clock


class Clock:
    """The CRM's notion of "now", persisted in `_meta` so every process shares one time."""

    _KEY = "clock"

    def __init__(self, store: CrmStore):
        self._store = store

    def now(self) -> datetime:
        with self._store.connection() as con:
            row = con.execute("SELECT value FROM _meta WHERE key = ?", (self._KEY,)).fetchone()
        return parse_datetime(row[0]) if row else DEFAULT_EPOCH

    def set(self, when: datetime) -> None:
        # Millisecond precision is all the storage format keeps; drop the rest up front.
        text = format_datetime(when)
        with self._store.connection() as con, con:
            con.execute(
                "INSERT INTO _meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (self._KEY, text),
            )

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

    def today(self) -> date:
        return self.now().date()


# ---------------------------------------------------------------------------- store


class CrmStore:
    """The local CRM's database. Thread-safe if each thread uses its own connection."""

    def __init__(self, path: str | Path):
        self.path = Path(path).resolve()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = Clock(self)
        self._local = threading.local()
        self._id_lock = threading.Lock()
        self._bulk_con: sqlite3.Connection | None = None  # open only inside bulk_session
        con = self.connect()
        try:
            con.execute("PRAGMA journal_mode=WAL")
            with con:
                con.executescript(_INTERNAL_DDL)
                _add_missing_columns(con, "_request_log", _REQUEST_LOG_ADDED)
                for stmt in _schema_ddl():
                    con.execute(stmt)
        finally:
            con.close()

    # -- connections

    def connect(self) -> sqlite3.Connection:
        """A new connection; use one per thread (or guard it with a lock)."""
        con = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA busy_timeout = 30000")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute("PRAGMA foreign_keys = OFF")
        # isolation_level=None: we control transactions explicitly with BEGIN/COMMIT.
        con.isolation_level = ""
        return con

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """This thread's cached connection (cheap for many small calls)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = self.connect()
            self._local.con = con
        yield con

    # -- ids

    def new_ids(self, object_name: str, n: int) -> list[str]:
        """Reserve `n` sequential ids of an object (deterministic: a counter in `_meta`)."""
        obj = get_object(object_name)
        if n <= 0:
            return []
        with self._id_lock, self.connection() as con:
            con.execute("BEGIN IMMEDIATE")  # other processes (generator, server) share the counter
            try:
                ids = self._new_ids_in(con, obj.name, n)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return ids

    # -- meta helpers

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        with self.connection() as con:
            row = con.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        with self.connection() as con, con:
            con.execute(
                "INSERT INTO _meta(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- credentials (configured on the server side, like a connected app in an org)

    def add_connected_app(self, client_id: str, client_secret: str, run_as_user_id: str) -> None:
        """Register OAuth client credentials; client_credentials logins run as this user."""
        with self.connection() as con, con:
            con.execute(
                "INSERT INTO _connected_app VALUES (?, ?, ?) ON CONFLICT(client_id) DO UPDATE "
                "SET client_secret = excluded.client_secret, "
                "run_as_user_id = excluded.run_as_user_id",
                (client_id, client_secret, run_as_user_id),
            )

    def set_password(self, username: str, password: str) -> None:
        """Set a user's password for the OAuth password flow (stored as a salted hash)."""
        with self.connection() as con, con:
            con.execute(
                "INSERT INTO _credential VALUES (?, ?) ON CONFLICT(username) DO UPDATE "
                "SET password_sha256 = excluded.password_sha256",
                (username, _password_hash(username, password)),
            )

    def check_password(self, username: str, password: str) -> str | None:
        """The active user's Id if the password matches, else None."""
        with self.connection() as con:
            row = con.execute(
                "SELECT c.password_sha256, u.Id, u.IsActive FROM _credential c "
                'JOIN "User" u ON u.Username = c.username AND u.IsDeleted = 0 '
                "WHERE c.username = ?",
                (username,),
            ).fetchone()
        if row and row[0] == _password_hash(username, password) and row[2]:
            return row[1]
        return None

    def check_client(self, client_id: str, client_secret: str) -> str | None:
        """The run-as user's Id if the client credentials match, else None."""
        with self.connection() as con:
            row = con.execute(
                "SELECT client_secret, run_as_user_id FROM _connected_app WHERE client_id = ?",
                (client_id,),
            ).fetchone()
        if row and row[0] == client_secret:
            return row[1]
        return None

    # -- bulk load (generator fast path)

    @contextmanager
    def bulk_session(self) -> Iterator[None]:
        """Load a new database fast: no journal, no fsync, secondary indexes built at the end.

        Why: maintaining four indexes row by row and journaling every page made generating a
        world cost far more than drawing it. This thread's connection is the only one while
        the session is open (others would see a half-built database); the journal is off, so a
        failed generation leaves a database to delete, never one to trust. On exit the indexes
        are created and the database returns to WAL mode.
        """
        self.close()
        con = self.connect()
        if con.execute("PRAGMA journal_mode=DELETE").fetchone()[0].lower() != "delete":
            con.close()
            raise RuntimeError(f"{self.path} is open elsewhere; bulk loading needs it alone")
        con.execute("PRAGMA journal_mode=OFF")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("PRAGMA cache_size=-262144")  # 256 MiB: index builds sort in memory
        con.execute("PRAGMA temp_store=MEMORY")
        for name, _ in _index_ddl():
            con.execute(f"DROP INDEX IF EXISTS {qi(name)}")
        self._local.con = con
        self._bulk_con = con
        try:
            yield
        finally:
            self._bulk_con = None
            self._local.con = None
            try:
                for _, ddl in _index_ddl():
                    con.execute(ddl)
                con.execute("PRAGMA journal_mode=WAL")
            finally:
                con.close()

    def bulk_load(self, object_name: str, columns: list[str], rows: Iterable[tuple]) -> int:
        """Append rows as given (caller supplies Id); missing system fields default from the clock.

        No validation and no AccountHistory: this is the generator's path, not the API's.
        """
        sql, extra = self._bulk_insert(object_name, columns)

        def checked() -> Iterator[tuple]:
            for i, row in enumerate(rows):
                if len(row) != len(columns):
                    raise ValueError(
                        f"bulk_load into {object_name}: row {i} has "
                        f"{len(row)} values for {len(columns)} columns"
                    )
                yield tuple(row) + extra

        return self._insert_many(sql, checked())

    def bulk_load_columns(self, object_name: str, columns: Mapping[str, Sequence[Any]]) -> int:
        """`bulk_load` for column-wise data (equal-length sequences): no per-row Python work."""
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"bulk_load into {object_name}: columns of unequal length {lengths}")
        n = lengths.pop() if lengths else 0
        sql, extra = self._bulk_insert(object_name, list(columns))
        values = [*columns.values(), *(itertools.repeat(v, n) for v in extra)]
        return self._insert_many(sql, zip(*values, strict=True))

    def _bulk_insert(self, object_name: str, columns: list[str]) -> tuple[str, tuple]:
        """INSERT statement for `columns` plus defaulted system fields, and the defaults."""
        obj = get_object(object_name)
        known = set(obj.field_names)
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise KeyError(f"{object_name} has no field(s) {unknown}")
        if "Id" not in columns:
            raise ValueError(f"bulk_load into {object_name}: the caller must supply Id")
        now = format_datetime(self.clock.now())
        defaults: list[tuple[str, Any]] = []
        for name in SYSTEM_DATETIME_FIELDS:
            if name in known and name not in columns:
                defaults.append((name, now))
        for name in ("IsDeleted", "IsArchived"):
            if name in known and name not in columns:
                defaults.append((name, 0))
        all_cols = list(columns) + [d[0] for d in defaults]
        sql = (
            f"INSERT INTO {qi(obj.name)} ({', '.join(qi(c) for c in all_cols)}) "
            f"VALUES ({', '.join('?' for _ in all_cols)})"
        )
        return sql, tuple(d[1] for d in defaults)

    def _insert_many(self, sql: str, rows: Iterator[tuple]) -> int:
        """executemany in transactions of BATCH_ROWS (the bulk session's connection if open)."""
        con = self._bulk_con or self.connect()
        total = 0
        try:
            while batch := list(itertools.islice(rows, BATCH_ROWS)):
                with con:
                    con.executemany(sql, batch)
                total += len(batch)
        finally:
            if con is not self._bulk_con:
                con.close()
        return total

    # -- API-style writes

    def insert(
        self, object_name: str, records: list[dict], actor_id: str | None = None
    ) -> list[str]:
        """Create records (all or none); returns their Ids or raises CrmWriteError."""
        results = self.create(object_name, records, actor_id=actor_id, all_or_none=True)
        if not all(r.success for r in results):
            raise CrmWriteError(object_name, results)
        return [r.id for r in results if r.id]

    def create(
        self,
        object_name: str,
        records: Sequence[Mapping[str, Any]],
        actor_id: str | None = None,
        all_or_none: bool = False,
        forced_errors: Mapping[int, RecordError] | None = None,
    ) -> list[RecordResult]:
        """API create: validates each record, sets Id and system fields from the clock."""
        obj = get_object(object_name)
        if not obj.createable:
            err = RecordError("INVALID_TYPE", f"entity type {obj.name} does not support create")
            return [RecordResult(None, False, [err]) for _ in records]
        forced = forced_errors or {}
        now = format_datetime(self.clock.now())
        seen: dict[tuple[str, str], Any] = {}
        with self.connection() as con:
            prepared: list[dict[str, Any] | None] = []
            results: list[RecordResult] = []
            for i, rec in enumerate(records):
                errors = list(_check_fields(obj, rec, for_insert=True))
                values: dict[str, Any] = {}
                if not errors:
                    values, errors = _coerce(obj, rec)
                if not errors:
                    values = _with_insert_defaults(obj, values, actor_id)
                    errors = _check_required(obj, values)
                if not errors:
                    errors = _check_references(con, obj, values, seen)
                if not errors and i in forced:
                    errors = [forced[i]]
                prepared.append(None if errors else values)
                results.append(RecordResult(None, not errors, errors))
            if all_or_none and not all(r.success for r in results):
                return _roll_back(results)
            ok = [i for i, v in enumerate(prepared) if v is not None]
            ids = self.new_ids(obj.name, len(ok))
            with con:
                for i, new_id in zip(ok, ids, strict=True):
                    values = dict(prepared[i] or {})
                    values.update(Id=new_id, IsDeleted=0)
                    for name in SYSTEM_DATETIME_FIELDS:
                        values[name] = now
                    cols = list(values)
                    con.execute(
                        f"INSERT INTO {qi(obj.name)} ({', '.join(qi(c) for c in cols)}) "
                        f"VALUES ({', '.join('?' for _ in cols)})",
                        [values[c] for c in cols],
                    )
                    results[i] = RecordResult(new_id, True, [], created=True)
        return results

    def update(
        self,
        object_name: str,
        records: Sequence[Mapping[str, Any]],
        actor_id: str | None = None,
        all_or_none: bool = False,
        forced_errors: Mapping[int, RecordError] | None = None,
    ) -> list[RecordResult]:
        """API update: per-record results in request order; writes AccountHistory for tracked
        fields and bumps LastModifiedDate/SystemModstamp of every updated record."""
        obj = get_object(object_name)
        forced = forced_errors or {}
        clock = self.clock.now()
        now = format_datetime(clock)
        with self.connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                results, changes = self._plan_update(con, obj, records, forced)
                if all_or_none and not all(r.success for r in results):
                    con.execute("ROLLBACK")
                    return _roll_back(results)
                history: list[tuple[str, str, str, str | None, str | None]] = []
                for rec_id, (old, new) in changes.items():
                    sets = dict(new)
                    sets["LastModifiedDate"] = now
                    sets["SystemModstamp"] = advanced_stamp(clock, old.get("SystemModstamp"))
                    con.execute(
                        f"UPDATE {qi(obj.name)} SET "
                        + ", ".join(f"{qi(c)} = ?" for c in sets)
                        + ' WHERE "Id" = ?',
                        [*sets.values(), rec_id],
                    )
                    if obj.name == "Account":
                        for fname in TRACKED_ACCOUNT_FIELDS:
                            if fname in new and new[fname] != old[fname]:
                                history.append((rec_id, fname, old[fname], new[fname], actor_id))
                self._write_history(con, history, now)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        return results

    def _plan_update(
        self,
        con: sqlite3.Connection,
        obj: SObject,
        records: Sequence[Mapping[str, Any]],
        forced: Mapping[int, RecordError],
    ) -> tuple[list[RecordResult], dict[str, tuple[dict, dict]]]:
        results: list[RecordResult] = []
        changes: dict[str, tuple[dict, dict]] = {}
        seen: dict[tuple[str, str], Any] = {}
        for i, rec in enumerate(records):
            raw_id = rec.get("Id")
            rec_id: str | None = None
            errors: list[RecordError] = []
            if not raw_id:
                errors = [RecordError("MISSING_ARGUMENT", "Id not specified in an update call")]
            else:
                try:
                    rec_id = to_id18(str(raw_id))
                except ValueError:
                    errors = [RecordError("MALFORMED_ID", f"malformed id {raw_id}", ("Id",))]
                else:
                    if not rec_id.startswith(obj.key_prefix):
                        errors = [
                            RecordError(
                                "MALFORMED_ID",
                                f"{obj.name} ID: id value of incorrect type: {raw_id}",
                                ("Id",),
                            )
                        ]
            old: dict[str, Any] = {}
            if not errors:
                row = con.execute(
                    f'SELECT * FROM {qi(obj.name)} WHERE "Id" = ?', (rec_id,)
                ).fetchone()
                if row is None:
                    errors = [
                        RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                    ]
                else:
                    old = dict(zip(obj.field_names, row, strict=True))
                    if old.get("IsDeleted"):
                        errors = [RecordError("ENTITY_IS_DELETED", "entity is deleted")]
            body = {k: v for k, v in rec.items() if k not in ("Id", "attributes")}
            if not errors:
                errors = list(_check_fields(obj, body, for_insert=False))
            new: dict[str, Any] = {}
            if not errors:
                new, errors = _coerce(obj, body)
            if not errors:
                merged = {**old, **new}
                errors = _check_required(obj, merged)
            if not errors:
                errors = _check_references(con, obj, new, seen)
            if not errors:
                errors = _validation_rules(obj, old, new)
            if not errors and i in forced:
                errors = [forced[i]]
            if not errors and rec_id in changes:
                errors = [RecordError("DUPLICATE_VALUE", f"Duplicate id in list: {rec_id}")]
            if not errors and rec_id:
                changes[rec_id] = (old, new)
            results.append(RecordResult(rec_id, not errors, errors))
        return results, changes

    def _write_history(
        self,
        con: sqlite3.Connection,
        history: list[tuple[str, str, Any, Any, str | None]],
        now: str,
    ) -> None:
        if not history:
            return
        ids = self._new_ids_in(con, "AccountHistory", len(history))
        con.executemany(
            'INSERT INTO "AccountHistory" ("Id", "IsDeleted", "AccountId", "CreatedById", '
            '"CreatedDate", "Field", "OldValue", "NewValue") VALUES (?, 0, ?, ?, ?, ?, ?, ?)',
            [
                (hid, acc, actor, now, fname, _history_text(old), _history_text(new))
                for hid, (acc, fname, old, new, actor) in zip(ids, history, strict=True)
            ],
        )

    def _new_ids_in(self, con: sqlite3.Connection, object_name: str, n: int) -> list[str]:
        """Like new_ids, inside the caller's open transaction."""
        obj = get_object(object_name)
        key = f"seq:{obj.name}"
        row = con.execute("SELECT value FROM _meta WHERE key = ?", (key,)).fetchone()
        start = int(row[0]) if row else 1
        con.execute(
            "INSERT INTO _meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(start + n)),
        )
        return make_ids(obj.key_prefix, start, n)

    def delete(
        self,
        object_name: str,
        ids: Sequence[str],
        all_or_none: bool = False,
        forced_errors: Mapping[int, RecordError] | None = None,
    ) -> list[RecordResult]:
        """Soft delete (IsDeleted=1, like the recycle bin); deleted rows stay in queryAll."""
        obj = get_object(object_name)
        forced = forced_errors or {}
        clock = self.clock.now()
        now = format_datetime(clock)
        results: list[RecordResult] = []
        with self.connection() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                targets: list[tuple[str, str]] = []  # (id, its new SystemModstamp)
                for i, raw in enumerate(ids):
                    try:
                        rec_id = to_id18(str(raw))
                    except ValueError:
                        results.append(
                            RecordResult(
                                None, False, [RecordError("MALFORMED_ID", f"malformed id {raw}")]
                            )
                        )
                        continue
                    row = con.execute(
                        f'SELECT "IsDeleted", "SystemModstamp" FROM {qi(obj.name)} WHERE "Id" = ?',
                        (rec_id,),
                    ).fetchone()
                    err: RecordError | None = None
                    if row is None or not rec_id.startswith(obj.key_prefix):
                        err = RecordError(
                            "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"
                        )
                    elif row[0]:
                        err = RecordError("ENTITY_IS_DELETED", "entity is deleted")
                    elif i in forced:
                        err = forced[i]
                    elif rec_id in {t for t, _ in targets}:
                        err = RecordError("DUPLICATE_VALUE", f"Duplicate id in list: {rec_id}")
                    results.append(RecordResult(rec_id, err is None, [err] if err else []))
                    if err is None:
                        targets.append((rec_id, advanced_stamp(clock, row[1])))
                if all_or_none and not all(r.success for r in results):
                    con.execute("ROLLBACK")
                    return _roll_back(results)
                con.executemany(
                    f'UPDATE {qi(obj.name)} SET "IsDeleted" = 1, "LastModifiedDate" = ?, '
                    '"SystemModstamp" = ? WHERE "Id" = ?',
                    [(now, stamp, t) for t, stamp in targets],
                )
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:
                    con.execute("ROLLBACK")
                raise
        return results

    # -- reads

    def get(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        """One record by Id as a dict of storage values (deleted rows included)."""
        rec_id = to_id18(record_id)
        return self.get_many(object_name, [rec_id]).get(rec_id)

    def get_many(self, object_name: str, record_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Records by 18-char Id (deleted rows included), one query per 500 ids (SQLite's
        bound-parameter budget)."""
        obj = get_object(object_name)
        out: dict[str, dict[str, Any]] = {}
        with self.connection() as con:
            for start in range(0, len(record_ids), 500):
                chunk = list(record_ids[start : start + 500])
                marks = ",".join("?" * len(chunk))
                sql = f'SELECT * FROM {qi(obj.name)} WHERE "Id" IN ({marks})'
                for row in con.execute(sql, chunk):
                    rec = dict(zip(obj.field_names, row, strict=True))
                    out[rec["Id"]] = rec
        return out

    def count(self, object_name: str, include_deleted: bool = False) -> int:
        obj = get_object(object_name)
        sql = f"SELECT COUNT(*) FROM {qi(obj.name)}"
        if not include_deleted:
            sql += ' WHERE "IsDeleted" = 0'
        with self.connection() as con:
            return int(con.execute(sql).fetchone()[0])

    def archive_cutoff(self) -> str:
        """ActivityDate before which Tasks/Events count as archived, from the clock."""
        return format_date(self.clock.today() - timedelta(days=ARCHIVE_AFTER_DAYS))

    def content_hash(self) -> str:
        """Stable SHA-256 of all object tables (rows ordered by Id, schema column order)."""
        h = hashlib.sha256()
        with self.connection() as con:
            for obj in OBJECTS.values():
                h.update(f"\x00table:{obj.name}\x00".encode())
                cols = ", ".join(qi(c) for c in obj.field_names)
                cur = con.execute(f'SELECT {cols} FROM {qi(obj.name)} ORDER BY "Id"')
                while rows := cur.fetchmany(10_000):
                    for row in rows:
                        h.update(json.dumps(row, separators=(",", ":")).encode())
                        h.update(b"\n")
        return h.hexdigest()

    def close(self) -> None:
        """Close this thread's cached connection."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


# ---------------------------------------------------------------------------- validation


def _password_hash(username: str, password: str) -> str:
    return hashlib.sha256(f"local-crm:{username}:{password}".encode()).hexdigest()


def _history_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _roll_back(results: list[RecordResult]) -> list[RecordResult]:
    return [
        RecordResult(r.id, False, r.errors if not r.success else [ROLLED_BACK]) for r in results
    ]


def _check_fields(obj: SObject, rec: Mapping[str, Any], for_insert: bool) -> Iterator[RecordError]:
    known = field_map(obj)
    unknown = [k for k in rec if k != "attributes" and k not in known]
    if unknown:
        yield RecordError(
            "INVALID_FIELD",
            f"No such column '{unknown[0]}' on sobject of type {obj.name}",
            (unknown[0],),
        )
        return
    locked = []
    for k in rec:
        if k == "attributes":
            continue
        f = field_map(obj)[k]
        system = k in ("Id", "IsDeleted", "IsArchived", *SYSTEM_DATETIME_FIELDS)
        if system or (not for_insert and not f.updateable):
            # AccountId on activities is derived from WhatId, so it is read-only on insert too.
            locked.append(k)
        elif for_insert and k == "AccountId" and obj.name in ACTIVITY_OBJECTS:
            locked.append(k)
    if locked:
        yield RecordError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to create/update fields: {', '.join(locked)}. Please check the security "
            "settings of this field and verify that it is read/write for your profile or "
            "permission set.",
            tuple(locked),
        )


def _coerce(obj: SObject, rec: Mapping[str, Any]) -> tuple[dict[str, Any], list[RecordError]]:
    """JSON values -> storage values, with Salesforce's type and picklist errors."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if k == "attributes":
            continue
        f = field_map(obj)[k]
        if v is None or v == "":  # Salesforce stores empty text as null
            out[k] = None
            continue
        try:
            out[k] = _coerce_value(f, v)
        except (TypeError, ValueError):
            if f.type == "reference":
                return {}, [
                    RecordError("MALFORMED_ID", f"{k}: id value of incorrect type: {v}", (k,))
                ]
            return {}, [
                RecordError(
                    "INVALID_TYPE_ON_FIELD_IN_RECORD",
                    f"{k}: value not of required type: {v}",
                    (k,),
                )
            ]
        limit = f.max_length
        if limit is not None and isinstance(out[k], str) and len(out[k]) > limit:
            return {}, [_too_long(f, out[k], limit)]
        if f.picklist and out[k] not in f.picklist:
            return {}, [
                RecordError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{k}: bad value for restricted picklist field: {v}",
                    (k,),
                )
            ]
    return out, []


def _too_long(f: Field, value: str, limit: int) -> RecordError:
    """Salesforce's error for a text value over its field's length (the value shown cut short)."""
    shown = value if len(value) <= 40 else value[:40] + "..."
    return RecordError(
        "STRING_TOO_LONG",
        f"{f.name}: data value too large: {shown} (max length={limit})",
        (f.name,),
    )


def _coerce_value(f: Field, v: Any) -> Any:
    t = f.type
    if t == "boolean":
        if isinstance(v, bool):
            return int(v)
        if isinstance(v, str) and v.lower() in ("true", "false"):
            return int(v.lower() == "true")
        raise TypeError(v)
    if t == "int":
        if isinstance(v, bool):
            raise TypeError(v)
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return int(v)
    if t in ("double", "currency"):
        if isinstance(v, bool):
            raise TypeError(v)
        return float(v)
    if t == "date":
        return format_date(parse_date(str(v)))
    if t == "datetime":
        return format_datetime(parse_datetime(str(v)))
    if t in ("id", "reference"):
        return to_id18(str(v))
    if not isinstance(v, str | int | float) or isinstance(v, bool):
        raise TypeError(v)
    return str(v)


def _with_insert_defaults(obj: SObject, values: dict[str, Any], actor_id: str | None) -> dict:
    out = dict(values)
    for f in obj.fields:
        if f.type == "boolean" and f.name not in out and f.name != "IsDeleted":
            out[f.name] = 1 if (obj.name, f.name) == ("User", "IsActive") else 0
    if "OwnerId" in obj.field_names and out.get("OwnerId") is None and actor_id:
        out["OwnerId"] = actor_id
    if obj.name in ACTIVITY_OBJECTS and out.get("WhatId", "") and out["WhatId"].startswith("001"):
        out["AccountId"] = out["WhatId"]
    if obj.name == "Opportunity" and out.get("StageName"):
        out["IsClosed"] = int(out["StageName"].startswith("Closed"))
        out["IsWon"] = int(out["StageName"] == "Closed Won")
    return out


def _check_required(obj: SObject, values: Mapping[str, Any]) -> list[RecordError]:
    skip = {"Id", "IsDeleted", *SYSTEM_DATETIME_FIELDS}
    missing = [
        f.name
        for f in obj.fields
        if not f.nillable and f.name not in skip and values.get(f.name) is None
    ]
    if missing:
        return [
            RecordError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                tuple(missing),
            )
        ]
    return []


def _check_references(
    con: sqlite3.Connection,
    obj: SObject,
    values: Mapping[str, Any],
    seen: dict[tuple[str, str], Any] | None = None,
) -> list[RecordError]:
    """Each reference must name a live record of its target (owners: an active user).

    `seen` memoises lookups within one call (a bulk chunk often repeats the same owner)."""
    memo = {} if seen is None else seen
    for name, value in values.items():
        f = field_map(obj)[name]
        if f.type != "reference" or value is None or not f.reference_to:
            continue
        target = get_object(f.reference_to)
        key = (target.name, value)
        if key not in memo:
            cols = '"IsDeleted", "IsActive"' if target.name == "User" else '"IsDeleted", 1'
            memo[key] = con.execute(
                f'SELECT {cols} FROM {qi(target.name)} WHERE "Id" = ?', (value,)
            ).fetchone()
        row = memo[key]
        if row is None or row[0]:
            return [
                RecordError(
                    "INVALID_CROSS_REFERENCE_KEY",
                    f"invalid cross reference id: {name} = {value}",
                    (name,),
                )
            ]
        if name == "OwnerId" and not row[1]:
            return [
                RecordError(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{value}] as owner of "
                    f"[{obj.name.lower()}]",
                    (name,),
                )
            ]
    return []


# The one validation rule of the local org, so FIELD_CUSTOM_VALIDATION_EXCEPTION is testable:
# an existing Account named INVALID cannot be updated.
LOCKED_ACCOUNT_NAME = "INVALID"


def _validation_rules(
    obj: SObject, old: Mapping[str, Any], new: Mapping[str, Any]
) -> list[RecordError]:
    if obj.name == "Account" and old.get("Name") == LOCKED_ACCOUNT_NAME:
        return [
            RecordError(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                f"Accounts named {LOCKED_ACCOUNT_NAME} are locked (validation rule "
                "Locked_Test_Account)",
            )
        ]
    return []
