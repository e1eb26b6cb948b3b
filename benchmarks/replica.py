"""XL by replication: a raw layer N times the size of a benchmarked one, built inside DuckDB.

Why: generating the XL world (10M accounts) through the local CRM needs ~86 GB of disk for its
SQLite file and hours; the warehouse side of a full rebuild (contracts, dbt, decisions, the
write-back plan) needs only raw tables of XL size. So the L run's raw layer is copied `copies`
times into a new warehouse, each copy a world of its own:

- every record id gets the copy number in its first counter character ('001Dy0000000001IAA' ->
  '001Dy3000000001IAA'); that character is '0' at L (checked) and a digit keeps the 18-character
  checksum valid; user ids follow their *user group* (`copies / user_groups` copies share one
  group of reps): at XL, 5 groups of L's 1,000 reps, each owning two copies (2,000 accounts a
  rep, where L has 1,000);
- web domains and e-mail domains get a label appended ('acme.com' -> 'acme.com.k3', users
  'books.local' -> 'books.local.u1'), so domain, subdomain and e-mail matching stay within a
  copy; free-mail addresses keep their domain and get the tag on the local part instead;
- account and lead company names get a tag glued to their first word ('Xk3Acme Robotics'), so
  name matching stays within a copy (a separate word would give every name one more word-prefix,
  'xk3', shared by a million accounts); engagement activity ids and dlt row ids get a suffix;
- tasks: copy k keeps the half of the source's tasks whose id hash has k's parity when
  `task_share` is 2 (XL has 10 activities per account, L 20).

Nothing else changes: dates, owners' relative order, statuses, scores. Copy 0 is the source.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
FREE_MAIL_SEED = REPO_ROOT / "dbt_project" / "seeds" / "free_mail_domains.csv"
RAW_SCHEMAS = ("raw_salesforce", "raw_files")
USER_PREFIX = "005"
# Columns holding record ids (beside `id`): the id's 3-character key prefix says whose copy it
# follows (a user's group, or the record's copy).
ID_COLUMNS = {"parent_id", "owner_id", "account_id", "what_id", "who_id", "manager_id",
              "converted_account_id", "created_by_id", "account_c", "return_requested_by_c"}  # fmt: skip
URL_COLUMNS = {("account", "website"), ("lead", "website"), ("intent_surges", "domain"),
               ("engagement_activities", "account_domain")}  # fmt: skip
EMAIL_COLUMNS = {("contact", "email"), ("lead", "email"),
                 ("engagement_activities", "contact_email")}  # fmt: skip
USER_EMAIL_COLUMNS = {("user", "email"), ("user", "username"),
                      ("engagement_activities", "rep_email")}  # fmt: skip
NAME_COLUMNS = {("account", "name"), ("lead", "company")}
SUFFIX_COLUMNS = {"_dlt_id", "activity_id"}
# Optional scheme and user part, then the host (it must contain a dot: 'N/A' is left alone).
# The same pieces `normalize_domain` strips, so normalize(rehost(x)) = normalize(x) + '.tag'.
HOST_RE = r"^(\s*(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/]*@)?)([^/:?#@\s]*\.[^/:?#@\s]*)"


def _free_mail_domains() -> list[str]:
    with FREE_MAIL_SEED.open(newline="", encoding="utf-8") as fh:
        return [row["web_domain"].strip().lower() for row in csv.DictReader(fh)]


def _macros(con: Any) -> None:
    free = ", ".join(f"'{d}'" for d in _free_mail_domains())
    con.execute(f"""
        create or replace temp macro rid(x, n) as
            case when x is null or n = 0 then x
                 else substr(x, 1, 5) || cast(n as varchar) || substr(x, 7) end;
        create or replace temp macro copy_id(x, k, g) as
            rid(x, case when substr(x, 1, 3) = '{USER_PREFIX}' then g else k end);
        create or replace temp macro host_of(x) as
            regexp_replace(lower(regexp_extract(x, '{HOST_RE}', 2)), '^www[0-9]*[.]', '');
        create or replace temp macro rehost(x, tag) as
            case when tag = '' or x is null then x
                 when coalesce(host_of(x), '') not like '%_._%' then x  -- not a domain
                 when host_of(x) in ({free}) then
                     case when contains(x, '@') then regexp_replace(x, '@', '.' || tag || '@')
                          else x end
                 else regexp_replace(x, '{HOST_RE}', '\\1\\2.' || tag) end;
    """)  # fmt: skip


def _check_ids(con: Any, table: str, columns: list[str]) -> None:
    """Every id must carry '0' where the copy number goes, or copies would collide."""
    for col in columns:
        bad = con.execute(
            f"select {col} from src.{table} where {col} is not null "
            f"and (length({col}) <> 18 or substr({col}, 6, 1) <> '0') limit 1"
        ).fetchone()
        if bad:
            raise ValueError(
                f"src.{table}.{col}: id {bad[0]!r} has no '0' at its 6th character; "
                "this raw layer cannot be replicated by id (ids must be 18-character CRM ids "
                "below 62^9 in their counter)"
            )


def _select(table: str, name: str, columns: list[str], task_share: int) -> str:
    """The select of one source table for each copy `k` (user group `g`, tags kt, gt); users
    are copied once per group (relation `user_copies`), everything else once per copy."""
    out = []
    for col in columns:
        if col == "id" or col in ID_COLUMNS:
            expr = f"copy_id({col}, k, g)"
        elif (name, col) in URL_COLUMNS or (name, col) in EMAIL_COLUMNS:
            expr = f"rehost({col}, kt)"
        elif (name, col) in USER_EMAIL_COLUMNS:
            expr = f"rehost({col}, gt)"
        elif (name, col) in NAME_COLUMNS:
            expr = f"case when k = 0 then {col} else 'Xk' || k || {col} end"
        elif col in SUFFIX_COLUMNS:
            expr = f"case when k = 0 then {col} else {col} || '-k' || k end"
        else:
            expr = col
        out.append(f"{expr} as {col}")
    where = f" where hash(src_t.id) % {task_share} = k % {task_share}" if (
        name == "task" and task_share > 1) else ""  # fmt: skip
    copies = "user_copies" if name == "user" else "copies"
    return f"select {', '.join(out)} from {table} as src_t, {copies}{where}"


def replicate(
    source: Path,
    target: Path,
    *,
    copies: int = 10,
    user_groups: int = 5,
    task_share: int = 2,
    progress: Any = print,
) -> dict[str, int]:
    """Write `target` (a new DuckDB file) with `copies` copies of `source`'s raw schemas;
    returns the rows of each table written."""
    import duckdb

    if not 1 <= copies <= 10 or copies % user_groups:
        raise ValueError(
            f"copies must be 1-10 and a multiple of user_groups ({copies=}, {user_groups=})"
        )
    if target.exists():
        raise FileExistsError(f"{target} exists; remove it first (the replica is built once)")
    target.parent.mkdir(parents=True, exist_ok=True)
    rows: dict[str, int] = {}
    con = duckdb.connect(str(target))
    try:
        con.execute("set preserve_insertion_order = false")
        con.execute(f"attach '{source}' as src (read_only)")
        _macros(con)
        per_group = copies // user_groups
        con.execute(
            "create temp table copies as select k, k // $per as g, "
            "case when k = 0 then '' else 'k' || k end as kt, "
            "case when k // $per = 0 then '' else 'u' || (k // $per) end as gt "
            "from range($n) as r(k)",
            {"per": per_group, "n": copies},
        )
        con.execute(
            f"create temp table user_copies as select * from copies where k % {per_group} = 0"
        )
        tables = con.execute(
            "select schema_name, table_name from duckdb_tables() where database_name = 'src' "
            f"and schema_name in ({', '.join(repr(s) for s in RAW_SCHEMAS)}) order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            con.execute(f"create schema if not exists {schema}")
            columns = [c for (c,) in con.execute(
                "select column_name from duckdb_columns() where database_name = 'src' "
                "and schema_name = ? and table_name = ? order by column_index", [schema, table],
            ).fetchall()]  # fmt: skip
            source_rel = f'src.{schema}."{table}"'
            step = time.perf_counter()
            if table.startswith("_"):  # dlt's and the file ledger's own tables: as they are
                con.execute(f'create table {schema}."{table}" as select * from {source_rel}')
            else:
                if schema == "raw_salesforce":
                    _check_ids(con, f'{schema}."{table}"',
                               [c for c in columns if c == "id" or c in ID_COLUMNS])  # fmt: skip
                sql = _select(source_rel, table, columns, task_share)
                con.execute(f'create table {schema}."{table}" as {sql}')
            rows[f"{schema}.{table}"] = con.execute(
                f'select count(*) from {schema}."{table}"'
            ).fetchone()[0]
            progress(f"replica {schema}.{table}: {rows[f'{schema}.{table}']:,} rows "
                     f"in {time.perf_counter() - step:.1f} s")  # fmt: skip
        con.execute("detach src")
        con.execute("checkpoint")
    except BaseException:
        con.close()
        target.unlink(missing_ok=True)
        raise
    con.close()
    return rows
