"""OAuth 2.0 token endpoint and session checks (username-password and client-credentials flows),
with Salesforce's error bodies; the default integration user and connected app."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import parse_qs

from local_crm.api.base import ApiError, Request, Response
from local_crm.db import CrmStore, format_datetime, make_id

ORG_ID = make_id("00D", 1)
# Credentials start_in_process/serve register when the store has none (documented in README).
DEFAULT_CLIENT_ID = "books-local-client"
DEFAULT_CLIENT_SECRET = "books-local-secret"
DEFAULT_USERNAME = "integration@books.local"
DEFAULT_PASSWORD = "books-local-password"


class AuthRoutes:
    """Token requests and session checks; mixed into `server.CrmApi`, which holds the store."""

    def _token(self, req: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(req.body.decode("utf-8")).items()}
        grant = form.get("grant_type", "")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        req.client_id = client_id
        auth = req.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                client_id, _, client_secret = (
                    base64.b64decode(auth[6:]).decode("utf-8").partition(":")
                )
            except (ValueError, UnicodeDecodeError):
                return _oauth_error("invalid_client", "invalid client credentials")
        if grant not in ("password", "client_credentials"):
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        if not client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        run_as = self.store.check_client(client_id, client_secret or "")
        if run_as is None:
            if grant == "password" and not self._client_known(client_id):
                return _oauth_error("invalid_client_id", "client identifier invalid")
            return _oauth_error("invalid_client", "invalid client credentials")
        if grant == "password":
            user_id = self.store.check_password(form.get("username", ""), form.get("password", ""))
            if user_id is None:
                return _oauth_error("invalid_grant", "authentication failure")
        else:
            user_id = run_as
        token = self.issue_token(user_id, client_id)
        issued = str(int(self.store.clock.now().timestamp() * 1000))
        signature = base64.b64encode(
            hmac.new(self._signing_key, f"{user_id}{issued}".encode(), hashlib.sha256).digest()
        ).decode()
        return Response(
            200,
            {
                "access_token": token,
                "instance_url": self.base_url,
                "id": f"{self.base_url}/id/{ORG_ID}/{user_id}",
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": signature,
            },
        )

    def _client_known(self, client_id: str) -> bool:
        with self.store.connection() as con:
            return (
                con.execute(
                    "SELECT 1 FROM _connected_app WHERE client_id = ?", (client_id,)
                ).fetchone()
                is not None
            )

    def issue_token(self, user_id: str, client_id: str | None = None) -> str:
        """A session id for a user (persisted, so sessions survive a server restart)."""
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(48)}"
        with self.store.connection() as con, con:
            con.execute(
                "INSERT INTO _session(token, user_id, client_id, issued_at) VALUES (?, ?, ?, ?)",
                (token, user_id, client_id, format_datetime(self.store.clock.now())),
            )
        return token

    def _revoke(self, token: str) -> None:
        with self.store.connection() as con, con:
            con.execute("UPDATE _session SET revoked = 1 WHERE token = ?", (token,))

    def _authenticate(self, req: Request) -> None:
        auth = req.headers.get("Authorization", "")
        token = None
        for scheme in ("Bearer ", "OAuth "):
            if auth.startswith(scheme):
                token = auth[len(scheme) :].strip()
        row = None
        if token:
            with self.store.connection() as con:
                row = con.execute(
                    "SELECT user_id, client_id FROM _session WHERE token = ? AND revoked = 0",
                    (token,),
                ).fetchone()
        if row is None:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
        req.token, req.user_id, req.client_id = token, row[0], row[1]


def form_client_id(req: Request) -> str | None:
    try:
        form = parse_qs(req.body.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    values = form.get("client_id")
    return values[0] if values else None


def _oauth_error(error: str, description: str) -> Response:
    return Response(400, {"error": error, "error_description": description})


def ensure_default_credentials(store: CrmStore) -> tuple[str, str]:
    """If the store has no connected app, create the integration user and default credentials.

    Returns (client_id, client_secret) of the default app. Idempotent.
    """
    with store.connection() as con:
        has_app = con.execute("SELECT 1 FROM _connected_app LIMIT 1").fetchone() is not None
        row = con.execute(
            'SELECT "Id" FROM "User" WHERE "Username" = ?', (DEFAULT_USERNAME,)
        ).fetchone()
    if has_app and row is not None:
        return DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
    if row is None:
        user_id = store.insert(
            "User",
            [
                {
                    "Username": DEFAULT_USERNAME,
                    "Name": "Integration User",
                    "Email": DEFAULT_USERNAME,
                    "IsActive": True,
                    "Book_Role__c": "Admin",
                }
            ],
        )[0]
    else:
        user_id = row[0]
    if not has_app:
        store.add_connected_app(DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, user_id)
        store.set_password(DEFAULT_USERNAME, DEFAULT_PASSWORD)
    return DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
