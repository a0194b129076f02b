"""The OAuth 2.0 authorization server of the sandbox (guide §8), built on oauthlib's WebApplicationServer.

oauthlib does the protocol (code grant, refresh grant, bearer validation); this module only stores
records in :class:`~sandbox.state.SandboxState` and bends the token answer into MTT's quirky shape.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from oauthlib.common import Request as OAuthRequest
from oauthlib.oauth2 import FatalClientError, OAuth2Error, RequestValidator, WebApplicationServer
from werkzeug.wrappers import Request, Response

from . import pages
from .config import CODE_GRANT_SCOPE, REFRESH_GRANT_SCOPE, REQUESTED_SCOPE
from .state import AuthCode, IssuedToken, OAuthClient, SandboxState
from .web import apply_fault, json_response

logger = logging.getLogger(__name__)

# Query parameters of the authorize request that the login form carries along in hidden fields.
AUTHORIZE_PARAMS = (
    "client_id",
    "redirect_uri",
    "scope",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
)


class SandboxRequestValidator(RequestValidator):
    """oauthlib's storage and policy hooks, backed by the in-memory state."""

    def __init__(self, state: SandboxState) -> None:
        super().__init__()
        self.state = state

    # --- clients ---------------------------------------------------------------------------------

    def _client(self, client_id: str | None) -> OAuthClient | None:
        with self.state.lock:
            return self.state.clients.get(client_id or "")

    def validate_client_id(self, client_id: str, request: OAuthRequest, *args: Any, **kwargs: Any) -> bool:
        client = self._client(client_id)
        request.client = client
        return client is not None

    def client_authentication_required(self, request: OAuthRequest, *args: Any, **kwargs: Any) -> bool:
        # MTT clients are confidential: every token request carries the client secret.
        return True

    def authenticate_client(self, request: OAuthRequest, *args: Any, **kwargs: Any) -> bool:
        client_id, secret = request.client_id, request.client_secret
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:].strip()).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return False
            client_id, _, secret = decoded.partition(":")
        client = self._client(client_id)
        if client is None or not secret or not secrets.compare_digest(client.client_secret, secret):
            logger.info("Sandbox OAuth: client authentication failed for client_id=%s", client_id)
            return False
        request.client = client
        request.client_id = client.client_id
        return True

    def authenticate_client_id(
        self, client_id: str, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> bool:
        return False  # no public clients

    # --- redirect URIs and scopes ----------------------------------------------------------------

    def validate_redirect_uri(
        self, client_id: str, redirect_uri: str, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> bool:
        # As if the portal had registered whatever http(s) URL the client brings.
        parts = urlsplit(redirect_uri)
        return parts.scheme in ("http", "https") and bool(parts.netloc)

    def get_default_redirect_uri(
        self, client_id: str, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> str | None:
        client = self._client(client_id)
        return client.redirect_uri if client else None

    def validate_response_type(
        self,
        client_id: str,
        response_type: str,
        client: Any,
        request: OAuthRequest,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        return response_type == "code"

    def validate_scopes(
        self, client_id: str, scopes: list[str], client: Any, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> bool:
        return True

    def get_default_scopes(
        self, client_id: str, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> list[str]:
        return [REQUESTED_SCOPE]

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> bool:
        return grant_type in ("authorization_code", "refresh_token")

    # --- authorization codes ---------------------------------------------------------------------

    def save_authorization_code(
        self, client_id: str, code: dict[str, Any], request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> None:
        record = AuthCode(
            code=code["code"],
            client_id=client_id,
            redirect_uri=request.redirect_uri,
            scopes=list(request.scopes or []),
            user=request.user or "",
            expires_at=self.state.clock() + self.state.config.authorization_code_lifetime,
            code_challenge=request.code_challenge,
            code_challenge_method=request.code_challenge_method,
        )
        with self.state.lock:
            self.state.codes[record.code] = record
        # The portal's one Redirect URI also receives the notifications.
        self.state.remember_redirect_uri(client_id, request.redirect_uri)

    def _live_code(self, code: str) -> AuthCode | None:
        with self.state.lock:
            record = self.state.codes.get(code)
        if record is None or record.expires_at <= self.state.clock():
            return None
        return record

    def validate_code(
        self, client_id: str, code: str, client: Any, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> bool:
        record = self._live_code(code)
        if record is None or record.client_id != client_id:
            return False
        request.user = record.user
        request.scopes = record.scopes
        return True

    def confirm_redirect_uri(
        self,
        client_id: str,
        code: str,
        redirect_uri: str,
        client: Any,
        request: OAuthRequest,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        record = self._live_code(code)
        return record is not None and record.redirect_uri == redirect_uri

    def invalidate_authorization_code(
        self, client_id: str, code: str, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> None:
        with self.state.lock:
            self.state.codes.pop(code, None)

    def get_code_challenge(self, code: str, request: OAuthRequest) -> str | None:
        record = self._live_code(code)
        return record.code_challenge if record else None

    def get_code_challenge_method(self, code: str, request: OAuthRequest) -> str | None:
        record = self._live_code(code)
        return record.code_challenge_method if record else None

    # --- tokens ----------------------------------------------------------------------------------

    def save_bearer_token(
        self, token: dict[str, Any], request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> None:
        now = self.state.clock()
        cfg = self.state.config
        client_id = request.client.client_id
        scopes = list(request.scopes or [])
        user = request.user or cfg.login
        with self.state.lock:
            self.state.access_tokens[token["access_token"]] = IssuedToken(
                token["access_token"], client_id, scopes, user, now + int(token["expires_in"])
            )
            if request.refresh_token and cfg.has("refresh_revokes_tokens"):
                # The access tokens issued before this refresh answer 401 from now on.
                self.state.revoke_access_tokens(client_id, keep=token["access_token"])
            if token.get("refresh_token"):
                # Rotation: the refresh token just used dies as the new one is born.
                if request.refresh_token:
                    self.state.refresh_tokens.pop(request.refresh_token, None)
                self.state.refresh_tokens[token["refresh_token"]] = IssuedToken(
                    token["refresh_token"], client_id, scopes, user, now + cfg.refresh_token_lifetime
                )

    def rotate_refresh_token(self, request: OAuthRequest) -> bool:
        return True

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> bool:
        with self.state.lock:
            record = self.state.refresh_tokens.get(refresh_token)
        if record is None or record.client_id != client.client_id or record.expires_at <= self.state.clock():
            return False
        request.user = record.user
        return True

    def get_original_scopes(
        self, refresh_token: str, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> list[str]:
        with self.state.lock:
            record = self.state.refresh_tokens.get(refresh_token)
        return list(record.scopes) if record else []

    def is_within_original_scope(
        self, request_scopes: list[str], refresh_token: str, request: OAuthRequest, *args: Any, **kwargs: Any
    ) -> bool:
        return True  # the real server ignores scope on refresh, so do we

    def validate_bearer_token(self, token: str, scopes: list[str], request: OAuthRequest) -> bool:
        client_id = self.state.client_for_access_token(token or "")
        if client_id is None:
            return False
        request.client_id = client_id
        return True


TokenModifier = Callable[[dict[str, Any], Any, OAuthRequest], dict[str, Any]]


def _mtt_shape(scope: str) -> TokenModifier:
    """A token modifier giving the guide's key order and its scope string, not the requested one."""

    def modifier(token: dict[str, Any], token_handler: Any, request: OAuthRequest) -> dict[str, Any]:
        return {
            "access_token": token["access_token"],
            "expires_in": token["expires_in"],
            "refresh_token": token.get("refresh_token"),
            "scope": scope,
            "token_type": "Bearer",
        }

    return modifier


def build_server(state: SandboxState) -> WebApplicationServer:
    server = WebApplicationServer(
        SandboxRequestValidator(state),
        token_generator=lambda request: secrets.token_urlsafe(32),
        refresh_token_generator=lambda request: secrets.token_urlsafe(32),
        # A callable so /_sandbox/config can shorten lifetimes while the server runs.
        token_expires_in=lambda request: state.config.access_token_lifetime,
    )
    server.auth_grant.register_token_modifier(_mtt_shape(CODE_GRANT_SCOPE))
    server.refresh_grant.register_token_modifier(_mtt_shape(REFRESH_GRANT_SCOPE))
    return server


class OAuthEndpoints:
    """The HTTP side: the portal login page, the redirect with a code, and the token endpoint."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.server = build_server(state)

    def _authorize_uri(self, request: Request, params: dict[str, str]) -> str:
        query = urlencode({k: v for k, v in params.items() if v})
        return f"{request.base_url}?{query}"

    def authorize(self, request: Request) -> Response:
        if request.method == "POST":
            return self._authorize_post(request)
        params = {k: request.args.get(k, "") for k in AUTHORIZE_PARAMS}
        try:
            # Validate before showing the login: an unknown client or bad redirect_uri gets an error page.
            self.server.validate_authorization_request(
                self._authorize_uri(request, params), http_method="GET"
            )
        except FatalClientError as exc:
            return self._fatal(exc)
        except OAuth2Error as exc:
            return self._redirect_error(params, exc)
        return pages.login_page(params, self.state.config)

    def _authorize_post(self, request: Request) -> Response:
        params = {k: request.form.get(k, "") for k in AUTHORIZE_PARAMS}
        login, password = request.form.get("login", ""), request.form.get("password", "")
        cfg = self.state.config
        with self.state.lock:
            client_known = params["client_id"] in self.state.clients
        if not client_known:
            return pages.error_page("Неизвестный client_id / Unknown client_id", status=400)
        good = secrets.compare_digest(login.encode(), cfg.login.encode()) and secrets.compare_digest(
            password.encode(), cfg.password.encode()
        )
        if not good:
            logger.info("Sandbox OAuth: bad portal login for client_id=%s", params["client_id"])
            return pages.login_page(params, cfg, error="Неверный логин или пароль / Wrong login or password")
        scopes = (params["scope"] or REQUESTED_SCOPE).split()
        try:
            headers, _body, status = self.server.create_authorization_response(
                self._authorize_uri(request, params),
                http_method="GET",
                scopes=scopes,
                credentials={"user": login},
            )
        except FatalClientError as exc:
            return self._fatal(exc)
        logger.info("Sandbox OAuth: client_id=%s authorized, redirecting", params["client_id"])
        response = Response(status=status)
        response.headers["Location"] = headers["Location"]
        return response

    def _fatal(self, exc: FatalClientError) -> Response:
        return pages.error_page(f"{exc.error}: {exc.description}", status=400)

    def _redirect_error(self, params: dict[str, str], exc: OAuth2Error) -> Response:
        redirect_uri = params["redirect_uri"]
        sep = "&" if urlsplit(redirect_uri).query else "?"
        pairs = list(exc.twotuples)
        if params.get("state") and not any(k == "state" for k, _ in pairs):
            pairs.append(("state", params["state"]))
        response = Response(status=302)
        response.headers["Location"] = redirect_uri + sep + urlencode(pairs)
        return response

    def token(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        form = dict(parse_qsl(body, keep_blank_values=True))
        grant_type = form.get("grant_type")
        # Never log secrets, codes or tokens: the grant type is what tests count.
        log_body = {"grant_type": grant_type}
        faulted = apply_fault(self.state, request.path)
        if faulted is not None:
            response = faulted
        elif grant_type == "refresh_token" and self.state.config.refuse_refresh:
            response = json_response(
                {"error": "invalid_grant", "error_description": "Refresh refused by the sandbox."}, 400
            )
        else:
            try:
                headers, payload, status = self.server.create_token_response(
                    request.base_url, http_method="POST", body=body, headers=dict(request.headers)
                )
                response = json_response(json.loads(payload), status, headers)
            except OAuth2Error as exc:
                response = json_response(json.loads(exc.json), exc.status_code, exc.headers)
        logger.info("Sandbox OAuth: token request grant_type=%s -> %s", grant_type, response.status_code)
        self.state.log_request(request.method, request.path, log_body, response.status_code)
        return response
