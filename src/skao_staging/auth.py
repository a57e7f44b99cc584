"""Who is asking: ``none`` (development), a trusted proxy's header, or an OIDC bearer token; and,
beside any of them when ``STAGING_JUPYTERHUB_TOKEN_AUTH`` is on, a JupyterHub token (``hub_tokens``).

OIDC tokens (SKA IAM is an INDIGO IAM) are validated against the issuer's JWKS, discovered from
``<issuer>/.well-known/openid-configuration`` and cached; an unknown ``kid`` refreshes the key set
(key rotation). Signature, expiry (with a small leeway), issuer and audience are checked, and only
asymmetric algorithms are accepted, so ``alg: none`` and HMAC confusion cannot pass.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt

from .config import Settings
from .errors import StagingError
from .hub_tokens import HubTokenVerifier, looks_like_jwt
from .logs import get_logger

log = get_logger("auth")
ALLOWED_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256"]


@dataclass(frozen=True)
class Identity:
    """The caller. In ``none`` mode nobody is authenticated and the ``username`` parameter is trusted."""

    username: str | None
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    authenticated: bool = False
    uid: int | None = None
    gid: int | None = None
    email: str | None = None  # where notices go (token claim or proxy header); None: not known

    def acting_for(self, requested: str | None) -> str | None:
        """The user a request acts for: the caller, or another user when the caller is an admin."""
        if not self.authenticated:
            return requested
        if requested is None or requested == self.username:
            return self.username
        if self.is_admin:
            return requested
        raise StagingError("forbidden", f"'{self.username}' may not act for '{requested}'")

    @property
    def read_groups(self) -> frozenset[str] | None:
        """The groups that limit what storage this caller reads; None: not limited."""
        return self.groups if self.authenticated and not self.is_admin else None

    @property
    def may_administer(self) -> bool:
        """Admin-only tools: admins; in development mode (nobody authenticated) everyone is trusted."""
        return self.is_admin or not self.authenticated

    def require_admin(self) -> None:
        if not self.may_administer:
            raise StagingError("admin_only", "this is for the staging administrators")

    def may_see(self, owner: str | None) -> bool:
        return not self.authenticated or self.is_admin or owner == self.username


ANONYMOUS = Identity(username=None)


def _unauthenticated(detail: str, code: str = "unauthenticated") -> StagingError:
    return StagingError(code, detail)


class OidcVerifier:
    """Discovery and JWKS of one issuer, fetched lazily and cached."""

    def __init__(self, settings: Settings) -> None:
        if not settings.oidc_issuer or not settings.oidc_audience:
            raise ValueError("STAGING_AUTH_MODE=oidc needs STAGING_OIDC_ISSUER and STAGING_OIDC_AUDIENCE")
        self.settings = settings
        self.issuer = settings.oidc_issuer.rstrip("/")
        self._jwks: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def _client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._jwks is None:
                url = f"{self.issuer}/.well-known/openid-configuration"
                try:
                    discovery = httpx.get(url, timeout=10).raise_for_status().json()
                except (httpx.HTTPError, ValueError) as exc:
                    log.error("OIDC discovery at %s failed: %s", url, exc)
                    raise StagingError("oidc_unavailable", "the identity provider cannot be reached") from exc
                if discovery.get("issuer", "").rstrip("/") != self.issuer:
                    raise StagingError("oidc_unavailable", "the identity provider announces another issuer")
                self._jwks = jwt.PyJWKClient(
                    discovery["jwks_uri"],
                    lifespan=self.settings.oidc_jwks_cache_seconds,
                    cooldown_duration=self.settings.oidc_jwks_refresh_cooldown_seconds,
                    timeout=10,
                )
            return self._jwks

    def claims(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise _unauthenticated("the bearer token is not a JWT", "invalid_token") from None
        if header.get("alg") not in ALLOWED_ALGORITHMS:
            raise _unauthenticated("the token's algorithm is not accepted", "invalid_token")
        try:
            key = self._client().get_signing_key(str(header.get("kid")))
        except jwt.PyJWKClientConnectionError as exc:
            raise StagingError("oidc_unavailable", "the identity provider's keys cannot be fetched") from exc
        except jwt.PyJWKClientError:
            raise _unauthenticated("the token was signed with an unknown key", "invalid_token") from None
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=ALLOWED_ALGORITHMS,
                audience=self.settings.oidc_audience,
                issuer=self.issuer,
                leeway=self.settings.oidc_leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthenticated("the token has expired", "invalid_token") from None
        except jwt.PyJWTError as exc:
            raise _unauthenticated(f"the token is not valid here ({type(exc).__name__})", "invalid_token") from None
        return claims


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.mode = settings.auth_mode
        self.oidc = OidcVerifier(settings) if self.mode == "oidc" else None
        self.hub = HubTokenVerifier(settings) if settings.jupyterhub_token_auth else None
        self.proxies = [ipaddress.ip_network(proxy, strict=False) for proxy in settings.trusted_proxies]

    def identify(self, headers: httpx.Headers | Any, client_host: str | None) -> Identity:
        """The caller of a request, from its headers and peer address (blocking: may fetch keys)."""
        hub_token = self._hub_token(headers)
        if hub_token is not None:
            assert self.hub is not None
            user = self.hub.user(hub_token)
            return self._identity(user.name, list(user.groups), admin=user.admin)
        if self.mode == "none":
            return ANONYMOUS
        if self.mode == "header":
            return self._from_proxy(headers, client_host)
        return self._from_token(headers)

    def _hub_token(self, headers: Any) -> str | None:
        """A JupyterHub token in ``Authorization`` (``token X``, or ``Bearer X`` that is no JWT), when accepted."""
        if self.hub is None:
            return None
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        token = token.strip()
        if not token or scheme.lower() not in ("token", "bearer"):
            return None
        if scheme.lower() == "bearer" and looks_like_jwt(token):
            return None  # an OIDC access token
        return token

    def _identity(
        self,
        username: object,
        groups: object,
        claims: dict[str, Any] | None = None,
        email: object = None,
        admin: bool = False,
    ) -> Identity:
        if not isinstance(username, str) or not username:
            raise _unauthenticated("the identity carries no user name", "invalid_token")
        group_set = _groups(groups)
        claims = claims or {}
        return Identity(
            username=username,
            groups=group_set,
            is_admin=admin or self.settings.admin_group in group_set,
            authenticated=True,
            uid=_number(claims.get(self.settings.oidc_uid_claim or "")),
            gid=_number(claims.get(self.settings.oidc_gid_claim or "")),
            email=_email(email),
        )

    def _from_proxy(self, headers: Any, client_host: str | None) -> Identity:
        try:
            peer = ipaddress.ip_address(client_host or "")
        except ValueError:
            peer = None
        if peer is None or not any(peer in network for network in self.proxies):
            raise _unauthenticated("requests must come through the authenticating proxy")
        user = headers.get(self.settings.auth_user_header)
        if not user:
            raise _unauthenticated("the proxy sent no user")
        groups = headers.get(self.settings.auth_groups_header, "")
        return self._identity(user, groups, email=headers.get(self.settings.auth_email_header))

    def _from_token(self, headers: Any) -> Identity:
        assert self.oidc is not None
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("a bearer token is required")
        claims = self.oidc.claims(token.strip())
        return self._identity(
            claims.get(self.settings.oidc_username_claim),
            claims.get(self.settings.oidc_groups_claim, []),
            claims,
            claims.get(self.settings.oidc_email_claim),
        )


def _groups(value: object) -> frozenset[str]:
    """Groups from a claim or header: a list, or a comma-separated string; IAM paths lose their '/'."""
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, list) else []
    return frozenset(str(item).strip().strip("/") for item in items if str(item).strip())


def _number(value: object) -> int | None:
    """A uid or gid from a claim (an int, or digits in a string); None when absent or malformed."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _email(value: object) -> str | None:
    """An e-mail address from a claim or header: one ``@``, no spaces or control characters; else None."""
    if not isinstance(value, str) or len(value) > 254:
        return None
    local, at, domain = value.partition("@")
    if (
        not (local and at and domain)
        or "@" in domain
        or any(ch.isspace() or ord(ch) < 32 or ch == "\x7f" for ch in value)
    ):
        return None
    return value
