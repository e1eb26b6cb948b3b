"""Answering a request with an injected fault (`local_crm.faults`): Salesforce's status,
error body and Retry-After, a slow answer or a dropped connection."""

from __future__ import annotations

import time

from local_crm.api.base import Request, Response
from local_crm.faults import RequestFault


class FaultRoutes:
    """Injected request faults; mixed into `server.CrmApi`."""

    def _request_faults(self, req: Request) -> tuple[bool, Response | None]:
        """(True, response) if an injected fault answers this call; response None = drop."""
        for f in self.faults.on_request(req.method, req.api_path):
            if f.kind == "slow":
                time.sleep(f.delay)
                continue
            if f.kind == "drop":
                return True, None
            if f.kind == "expired_session" and req.token:
                self._revoke(req.token)
            return True, _fault_response(f)
        return False, None


def _fault_response(f: RequestFault) -> Response:
    headers = {"Retry-After": str(f.retry_after)} if f.retry_after is not None else {}
    return Response(f.status, [{"message": f.message, "errorCode": f.error_code}], headers=headers)
