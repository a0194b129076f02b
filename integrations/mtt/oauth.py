"""OAuth 2.0 authorization-code grant against MTT's OAuth server (guide §8) with requests-oauthlib.

Only this module and ``client.py`` talk HTTP to MTT: this one to the OAuth server, ``client.py`` to
the API. Token values never reach a log line.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone
from oauthlib.oauth2 import OAuth2Error
from requests_oauthlib import OAuth2Session

from .errors import MttError, MttPermanentError, MttReconnectRequired, MttTransientError

logger = logging.getLogger(__name__)

# API.md: "The scope in responses differs from the one requested ... compare nothing on it."
os.environ["OAUTHLIB_RELAX_TOKEN_SCOPE"] = "1"

# The guide gives no lifetime field for the refresh token; it says 3 days (§7.6).
REFRESH_TOKEN_LIFETIME = timedelta(days=3)


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str
    access_expires_at: datetime
    refresh_expires_at: datetime | None

    def __repr__(self) -> str:  # never show token values, even in a traceback
        return f"TokenSet(access_expires_at={self.access_expires_at!r})"


@dataclass(frozen=True)
class OAuthEndpoints:
    client_id: str
    client_secret: str
    oauth_url: str
    redirect_uri: str

    @property
    def authorize_url(self) -> str:
        return self.oauth_url.rstrip("/") + "/oauth/authorize"

    @property
    def token_url(self) -> str:
        return self.oauth_url.rstrip("/") + "/oauth/token"

    def __repr__(self) -> str:
        return f"OAuthEndpoints(client_id={self.client_id!r}, oauth_url={self.oauth_url!r})"


def _insecure_allowed(url: str) -> None:
    # oauthlib refuses plain http; a local sandbox speaks http, so allow it only where configured.
    if url.startswith("http://"):
        if not settings.MTT_ALLOW_INSECURE_OAUTH:
            raise MttPermanentError(
                "The OAuth server URL must be https "
                "(set MTT_ALLOW_INSECURE_OAUTH=true only for a local sandbox)."
            )
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"


def _session(ep: OAuthEndpoints, state: str | None = None) -> OAuth2Session:
    _insecure_allowed(ep.oauth_url)
    session = OAuth2Session(
        client_id=ep.client_id,
        redirect_uri=ep.redirect_uri,
        scope=[settings.MTT_OAUTH_SCOPE],
        state=state,
    )

    def check_status(response: requests.Response) -> requests.Response:
        # oauthlib only looks at the body; a 5xx/429 is an outage, not a refusal.
        if response.status_code >= 500 or response.status_code == 429:
            raise MttTransientError(
                f"OAuth server answered HTTP {response.status_code}",
                method="oauth/token",
                status_code=response.status_code,
            )
        return response

    session.register_compliance_hook("access_token_response", check_status)
    session.register_compliance_hook("refresh_token_response", check_status)
    return session


def authorization_url(ep: OAuthEndpoints, *, state: str) -> str:
    url, _state = _session(ep, state=state).authorization_url(ep.authorize_url, state=state)
    return str(url)


def _to_tokenset(token: dict[str, Any], *, previous_refresh: str = "") -> TokenSet:
    access = token.get("access_token")
    if not access:
        raise MttPermanentError("OAuth server answered without an access_token", method="oauth/token")
    now = timezone.now()
    try:
        expires_in = int(token.get("expires_in") or 7200)
    except (TypeError, ValueError):
        expires_in = 7200
    refresh = token.get("refresh_token") or ""
    return TokenSet(
        access_token=str(access),
        refresh_token=str(refresh or previous_refresh),
        access_expires_at=now + timedelta(seconds=expires_in),
        refresh_expires_at=(now + REFRESH_TOKEN_LIFETIME) if refresh else None,
    )


def _timeout() -> tuple[float, float]:
    return (settings.MTT_CONNECT_TIMEOUT, settings.MTT_READ_TIMEOUT)


def exchange_code(ep: OAuthEndpoints, *, code: str) -> TokenSet:
    """Trade the authorization code for tokens (guide §8.2)."""
    session = _session(ep)
    try:
        token = session.fetch_token(
            ep.token_url,
            code=code,
            client_secret=ep.client_secret,
            include_client_id=True,
            scope=settings.MTT_OAUTH_SCOPE,
            timeout=_timeout(),
        )
    except MttError:
        raise
    except OAuth2Error as exc:
        raise MttPermanentError(
            f"OAuth server refused the code: {exc.error}", method="oauth/token", status_code=exc.status_code
        ) from None
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise MttTransientError(
            f"OAuth server unreachable: {type(exc).__name__}", method="oauth/token"
        ) from None
    except (ValueError, requests.RequestException) as exc:
        raise MttPermanentError(
            f"OAuth server answered badly: {type(exc).__name__}", method="oauth/token"
        ) from None
    logger.info("MTT OAuth: code exchanged for tokens (client_id=%s)", ep.client_id)
    return _to_tokenset(dict(token))


def refresh(ep: OAuthEndpoints, *, refresh_token: str) -> TokenSet:
    """Exchange the refresh token for new tokens (guide §8.3).

    Raises ``MttReconnectRequired`` when the server refuses (a person must log in again) and
    ``MttTransientError`` when it cannot be reached (try again later).
    """
    if not refresh_token:
        raise MttReconnectRequired("No refresh token stored", method="oauth/token")
    session = _session(ep)
    try:
        token = session.refresh_token(
            ep.token_url,
            refresh_token=refresh_token,
            client_id=ep.client_id,
            client_secret=ep.client_secret,
            timeout=_timeout(),
        )
    except MttError:
        raise
    except OAuth2Error as exc:
        raise MttReconnectRequired(
            f"OAuth server refused the refresh: {exc.error}",
            method="oauth/token",
            status_code=exc.status_code,
        ) from None
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise MttTransientError(
            f"OAuth server unreachable: {type(exc).__name__}", method="oauth/token"
        ) from None
    except (ValueError, requests.RequestException) as exc:
        raise MttTransientError(
            f"OAuth server answered badly: {type(exc).__name__}", method="oauth/token"
        ) from None
    logger.info("MTT OAuth: tokens refreshed (client_id=%s)", ep.client_id)
    return _to_tokenset(dict(token), previous_refresh=refresh_token)
