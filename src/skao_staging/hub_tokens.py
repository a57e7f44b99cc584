"""Signing in with a JupyterHub token: the single-user server's ``JUPYTERHUB_API_TOKEN`` or a user's API token.

The hub is asked who holds the token (``GET /hub/api/user`` with it, as JupyterHub's own ``HubAuth``
does). The token must carry ``STAGING_JUPYTERHUB_TOKEN_SCOPE`` (by default
``access:services!service=staging``: JupyterHub's way of saying a token may be used at a service),
so a token made for something else does not sign in here. The user's groups and admin flag are read
with the service's own hub token when the user's token may not read them. Answers are cached for
``STAGING_JUPYTERHUB_TOKEN_CACHE_SECONDS`` under the token's SHA-256; tokens are never logged or kept.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from cachetools import TTLCache

from .config import Settings
from .errors import StagingError
from .logs import get_logger

log = get_logger("hub_tokens")
CACHE_ENTRIES = 4096


@dataclass(frozen=True)
class HubUser:
    """Who a JupyterHub token belongs to."""

    name: str
    groups: tuple[str, ...]
    admin: bool


def looks_like_jwt(token: str) -> bool:
    """A JWT (an OIDC access token) has three dot-separated parts; JupyterHub tokens are hex."""
    return token.count(".") == 2


def holds_scope(scopes: list[str], required: str) -> bool:
    """``required``, or its unfiltered form (``access:services`` holds ``access:services!service=x``)."""
    return required in scopes or required.partition("!")[0] in scopes


class HubTokenVerifier:
    """Asks the hub who holds a token; answers are cached for a short time."""

    def __init__(self, settings: Settings) -> None:
        if not settings.jupyterhub_url:
            raise ValueError("STAGING_JUPYTERHUB_TOKEN_AUTH needs STAGING_JUPYTERHUB_URL")
        self.api = f"{settings.jupyterhub_url.rstrip('/')}/hub/api"
        self.required_scope = settings.jupyterhub_token_scope
        self.service_token = settings.jupyterhub_api_token.get_secret_value() if settings.jupyterhub_api_token else None
        self.client = httpx.Client(timeout=httpx.Timeout(settings.jupyter_request_timeout_seconds, connect=5))
        self._cache: TTLCache[str, HubUser] = TTLCache(CACHE_ENTRIES, settings.jupyterhub_token_cache_seconds)
        self._lock = threading.Lock()

    def user(self, token: str) -> HubUser:
        """The token's user; 401 ``invalid_token`` when the hub does not know it or it lacks the scope."""
        key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        user = self._ask_hub(token)
        with self._lock:
            self._cache[key] = user
        return user

    def _ask_hub(self, token: str) -> HubUser:
        model = self._get("/user", token)
        if model is None:
            raise StagingError("invalid_token", "JupyterHub does not accept this token (expired or revoked)")
        if model.get("kind", "user") != "user" or not isinstance(model.get("name"), str):
            raise StagingError("invalid_token", "this JupyterHub token is not a user's")
        scopes = [str(scope) for scope in model.get("scopes") or []]
        if self.required_scope and not holds_scope(scopes, self.required_scope):
            raise StagingError("invalid_token", f"this JupyterHub token does not carry the scope {self.required_scope}")
        name: str = model["name"]
        if ("groups" not in model or "admin" not in model) and self.service_token:
            model = {**model, **(self._get(f"/users/{quote(name)}", self.service_token) or {})}
        groups = tuple(str(group) for group in model.get("groups") or [])
        return HubUser(name=name, groups=groups, admin=model.get("admin") is True)

    def _get(self, path: str, token: str) -> dict[str, Any] | None:
        """A hub API answer (None for 401/403/404); an unreachable or failing hub is 503."""
        try:
            response = self.client.get(f"{self.api}{path}", headers={"Authorization": f"token {token}"})
        except httpx.TransportError as exc:
            log.warning("JupyterHub cannot be reached to check a token: %s", type(exc).__name__)
            raise StagingError("jupyter_unavailable", "JupyterHub cannot be reached to check the token") from exc
        if response.status_code in (401, 403, 404):
            return None
        if response.status_code != 200:
            raise StagingError("jupyter_unavailable", f"JupyterHub answered {response.status_code} about a token")
        body: dict[str, Any] = response.json()
        return body

    def close(self) -> None:
        self.client.close()
