"""sObject REST (describe, get, create, update, delete) and sObject Collections (composite/sobjects:
create, update, delete, retrieve), with Salesforce's per-record results."""

from __future__ import annotations

from typing import Any

from local_crm.api.base import ApiError, Request, Response, method_not_allowed, object_or_404
from local_crm.db import RecordError, RecordResult, object_for_id, to_id18
from local_crm.schema import OBJECTS, SObject
from local_crm.soql import json_value

MAX_COLLECTION = 200
MAX_COLLECTION_RETRIEVE = 2000  # sObject Collections retrieve by POST; GET is capped by URL length


class SObjectRoutes:
    """sObject and sObject Collections endpoints; mixed into `server.CrmApi`."""

    def _sobjects(self, req: Request, parts: list[str]) -> Response:
        m = req.method
        if not parts:
            if m != "GET":
                raise method_not_allowed(m, "GET")
            return Response(
                200,
                {
                    "encoding": "UTF-8",
                    "maxBatchSize": MAX_COLLECTION,
                    "sobjects": [_describe_short(o) for o in OBJECTS.values()],
                },
            )
        obj = object_or_404(parts[0])
        if len(parts) == 1:
            if m == "GET":
                return Response(200, {"objectDescribe": _describe_short(obj), "recentItems": []})
            if m == "POST":
                results = self._create(req, obj, [req.json() or {}])
                r = results[0]
                if not r.success:
                    raise _record_api_error(r)
                return Response(201, r.as_json(), records=1)
            raise method_not_allowed(m, "GET, POST")
        if len(parts) == 2 and parts[1] == "describe":
            if m != "GET":
                raise method_not_allowed(m, "GET")
            return Response(200, describe(obj))
        if len(parts) != 2:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        try:
            rec_id = to_id18(parts[1])
        except ValueError:
            raise ApiError(
                404,
                "NOT_FOUND",
                "Provided external ID field does not exist or is not accessible: " + parts[1],
            ) from None
        if m == "GET":
            return self._get_record(req, obj, rec_id)
        if m == "PATCH":
            body = req.json()
            if not isinstance(body, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "Expected a JSON object")
            forced = self.faults.record_errors(m, req.api_path, [rec_id])
            result = self.store.update(
                obj.name, [{**body, "Id": rec_id}], req.user_id, False, forced
            )[0]
            if not result.success:
                raise _record_api_error(result)
            return Response(204, records=1)
        if m == "DELETE":
            forced = self.faults.record_errors(m, req.api_path, [rec_id])
            result = self.store.delete(obj.name, [rec_id], False, forced)[0]
            if not result.success:
                raise _record_api_error(result)
            return Response(204, records=1)
        raise method_not_allowed(m, "GET, PATCH, DELETE")

    def _get_record(self, req: Request, obj: SObject, rec_id: str) -> Response:
        row = self.store.get(obj.name, rec_id) if rec_id.startswith(obj.key_prefix) else None
        if row is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        if row.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
        wanted = req.param("fields")
        names = _field_names(obj, wanted.split(",")) if wanted else obj.field_names
        return Response(200, self._record_json(req, obj, row, names), records=1)

    def _record_json(
        self, req: Request, obj: SObject, row: dict[str, Any], names: list[str]
    ) -> dict[str, Any]:
        """One stored row as the API shows a record: attributes, then the asked fields."""
        rec: dict[str, Any] = {
            "attributes": {
                "type": obj.name,
                "url": f"/services/data/v{req.version}/sobjects/{obj.name}/{row['Id']}",
            }
        }
        if "IsArchived" in names and obj.name in ("Task", "Event"):
            cutoff = self.store.archive_cutoff()
            row["IsArchived"] = int(bool(row.get("ActivityDate")) and row["ActivityDate"] < cutoff)
        for n in names:
            rec[n] = json_value(obj.field(n), row[n])
        return rec

    def _create(
        self, req: Request, obj: SObject, records: list[dict], all_or_none: bool = False
    ) -> list[RecordResult]:
        forced = self.faults.record_errors(req.method, req.api_path, [None] * len(records))
        clean = [{k: v for k, v in r.items() if k != "attributes"} for r in records]
        return self.store.create(obj.name, clean, req.user_id, all_or_none, forced)

    def _collections(self, req: Request) -> Response:
        m = req.method
        if m == "DELETE":
            ids = [i for i in (req.param("ids") or "").split(",") if i]
            all_or_none = (req.param("allOrNone") or "false").lower() == "true"
            if not ids:
                raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
            _check_collection_size(len(ids))
            objs = {o.name for o in (object_for_id(i) for i in ids) if o is not None}
            if len(objs) != 1:
                raise ApiError(
                    400, "INVALID_ID_FIELD", "ids must all be valid ids of one sObject type"
                )
            forced = self.faults.record_errors(m, req.api_path, ids)
            results = self.store.delete(objs.pop(), ids, all_or_none, forced)
            return Response(200, [r.as_json() for r in results], records=len(ids))
        if m not in ("POST", "PATCH"):
            raise method_not_allowed(m, "POST, PATCH, DELETE")
        body = req.json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(
                400, "JSON_PARSER_ERROR", 'Expected {"allOrNone": bool, "records": [...]}'
            )
        records = body["records"]
        all_or_none = bool(body.get("allOrNone", False))
        _check_collection_size(len(records))
        if not records:
            return Response(200, [])
        types = set()
        for i, r in enumerate(records):
            t = (r.get("attributes") or {}).get("type") if isinstance(r, dict) else None
            if not t:
                raise ApiError(400, "INVALID_TYPE", f"Record {i}: attributes.type is required")
            types.add(t)
        if len(types) != 1:
            raise ApiError(
                400,
                "INVALID_TYPE",
                "The local CRM requires one sObject type per collection request",
            )
        obj = object_or_404(types.pop(), status=400)
        if m == "POST":
            if any("Id" in r for r in records):
                raise ApiError(400, "INVALID_FIELD", "Records in a create call cannot have an Id")
            results = self._create(req, obj, records, all_or_none)
        else:
            ids = []
            for r in records:
                try:
                    ids.append(to_id18(str(r.get("Id"))))
                except ValueError:
                    ids.append(None)
            forced = self.faults.record_errors(m, req.api_path, ids)
            results = self._update(
                req.api_path, obj, records, ids, req.user_id, all_or_none, forced
            )
        return Response(200, [r.as_json() for r in results], records=len(records))

    def _update(
        self,
        api_path: str,
        obj: SObject,
        records: list[dict[str, Any]],
        ids: list[str | None],
        actor_id: str | None,
        all_or_none: bool,
        forced: dict[int, RecordError],
    ) -> list[RecordResult]:
        """store.update, except records a `silent_drop` fault picks: answered saved, not saved."""
        dropped = self.faults.silent_drops("PATCH", api_path, ids) - set(forced)
        if not dropped:
            return self.store.update(obj.name, records, actor_id, all_or_none, forced)
        kept = [i for i in range(len(records)) if i not in dropped]
        results = self.store.update(
            obj.name,
            [records[i] for i in kept],
            actor_id,
            all_or_none,
            {n: forced[i] for n, i in enumerate(kept) if i in forced},
        )
        out: list[RecordResult] = [RecordResult(ids[i], True) for i in range(len(records))]
        for n, i in enumerate(kept):
            out[i] = results[n]
        return out

    def _collections_retrieve(self, req: Request, object_name: str) -> Response:
        """GET `?ids=&fields=` or POST `{"ids", "fields"}`: one entry per id, in the ids' order,
        null where the id is invalid, of another object, unknown or deleted."""
        obj = object_or_404(object_name)
        if req.method == "GET":
            ids = [i for i in (req.param("ids") or "").split(",") if i]
            wanted = [f for f in (req.param("fields") or "").split(",") if f]
        elif req.method == "POST":
            body = req.json()
            ids = body.get("ids") if isinstance(body, dict) else None
            wanted = body.get("fields") if isinstance(body, dict) else None
            if not isinstance(ids, list) or not isinstance(wanted, list):
                raise ApiError(400, "JSON_PARSER_ERROR", 'Expected {"ids": [...], "fields": [...]}')
        else:
            raise method_not_allowed(req.method, "GET, POST")
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if not wanted:
            raise ApiError(400, "MISSING_ARGUMENT", "fields parameter is required")
        if len(ids) > MAX_COLLECTION_RETRIEVE:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                f"cannot retrieve more than {MAX_COLLECTION_RETRIEVE} records in one call",
            )
        names = _field_names(obj, [str(w) for w in wanted])
        wanted_ids: list[str | None] = []
        for i in ids:
            try:
                rec_id = to_id18(str(i))
            except ValueError:
                rec_id = None
            ok = rec_id is not None and rec_id.startswith(obj.key_prefix)
            wanted_ids.append(rec_id if ok else None)
        rows = self.store.get_many(obj.name, [i for i in wanted_ids if i is not None])
        out: list[dict[str, Any] | None] = []
        for rec_id in wanted_ids:
            row = rows.get(rec_id) if rec_id is not None else None
            if row is None or row.get("IsDeleted"):
                out.append(None)
            else:
                out.append(self._record_json(req, obj, row, names))
        return Response(200, out, records=len(ids))


def _field_names(obj: SObject, wanted: list[str]) -> list[str]:
    """The asked field names in the schema's spelling (the API is case-insensitive)."""
    lookup = {n.lower(): n for n in obj.field_names}
    names = []
    for w in wanted:
        name = lookup.get(w.strip().lower())
        if name is None:
            raise ApiError(
                400, "INVALID_FIELD", f"No such column '{w.strip()}' on entity '{obj.name}'"
            )
        names.append(name)
    return names


def _check_collection_size(n: int) -> None:
    if n > MAX_COLLECTION:
        raise ApiError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {MAX_COLLECTION} records into "
            "this call",
        )


def _record_api_error(result: RecordResult) -> ApiError:
    """A single-record call's failure; an unknown record id is a 404, as in Salesforce."""
    err = result.errors[0]
    if err.status_code == "INVALID_CROSS_REFERENCE_KEY" and not err.fields:
        return ApiError(404, "NOT_FOUND", "The requested resource does not exist")
    return ApiError(400, err.status_code, err.message, list(err.fields))


def _describe_short(obj: SObject) -> dict[str, Any]:
    return {
        "name": obj.name,
        "label": obj.name.replace("__c", "").replace("_", " "),
        "keyPrefix": obj.key_prefix,
        "custom": obj.custom,
        "createable": obj.createable,
        "updateable": obj.createable,
        "deletable": obj.createable,
        "queryable": True,
        "urls": {
            "sobject": f"/services/data/v62.0/sobjects/{obj.name}",
            "describe": f"/services/data/v62.0/sobjects/{obj.name}/describe",
        },
    }


def describe(obj: SObject) -> dict[str, Any]:
    """`sobjects/<Object>/describe` from schema.py."""
    fields = []
    for f in obj.fields:
        system = f.name in (
            "Id",
            "IsDeleted",
            "CreatedDate",
            "LastModifiedDate",
            "SystemModstamp",
            "IsArchived",
        )
        fields.append(
            {
                "name": f.name,
                "label": f.name.replace("__c", "").replace("_", " "),
                "type": f.type,
                "soapType": _soap_type(f.type),
                "length": f.max_length or 0,
                "custom": f.custom,
                "nillable": f.nillable,
                "createable": obj.createable and not system,
                "updateable": obj.createable and f.updateable and not system,
                "filterable": True,
                "sortable": True,
                "referenceTo": [f.reference_to] if f.reference_to else [],
                "relationshipName": None,
                "restrictedPicklist": bool(f.picklist),
                "picklistValues": [
                    {"value": v, "label": v, "active": True, "defaultValue": False}
                    for v in f.picklist
                ],
            }
        )
    return {
        **_describe_short(obj),
        "fields": fields,
        "childRelationships": [],
        "recordTypeInfos": [],
    }


def _soap_type(t: str) -> str:
    return {
        "id": "tns:ID",
        "reference": "tns:ID",
        "boolean": "xsd:boolean",
        "int": "xsd:int",
        "double": "xsd:double",
        "currency": "xsd:double",
        "date": "xsd:date",
        "datetime": "xsd:dateTime",
    }.get(t, "xsd:string")
