"""Who may call what: bearer tokens with roles read / admin / ingest, checked in constant time.

Tokens are kept only as SHA-256 digests and every configured digest is compared on every
request (no early exit), so neither timing nor logs reveal a token. `admin` includes `read`;
`ingest` keys only reach the ingest routes, /v1/collect and /v1/otlp/... (they live in
browsers, so they must not read).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, Iterable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import SecretStr

from api.errors import ApiError

if TYPE_CHECKING:
    from api.settings import ApiSettings


class Role(StrEnum):
    READ = "read"
    ADMIN = "admin"
    INGEST = "ingest"


GRANTS: dict[Role, frozenset[Role]] = {
    Role.READ: frozenset({Role.READ}),
    Role.ADMIN: frozenset({Role.ADMIN, Role.READ}),
    Role.INGEST: frozenset({Role.INGEST}),
}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class TokenBook:
    """The configured tokens, by role, as digests."""

    def __init__(self, tokens: dict[Role, Iterable[SecretStr]]) -> None:
        self._entries = [
            (_digest(token.get_secret_value()), role)
            for role, secrets in tokens.items()
            for token in secrets
        ]

    def roles_of(self, presented: str) -> frozenset[Role]:
        """Roles granted to `presented`; empty when it matches no configured token."""
        probe = _digest(presented)
        granted: set[Role] = set()
        for digest, role in self._entries:
            if hmac.compare_digest(probe, digest):
                granted |= GRANTS[role]
        return frozenset(granted)


bearer_scheme = HTTPBearer(auto_error=False, description="A read, admin or ingest token.")
ingest_header = APIKeyHeader(
    name="X-GenPulse-Key", auto_error=False, description="Ingest key (alternative to Bearer)."
)
ingest_query = APIKeyQuery(
    name="key", auto_error=False, description="Ingest key as a query parameter, for sendBeacon."
)

Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="genpulse"'}


def _check(request: Request, presented: str | None, role: Role) -> frozenset[Role]:
    if not presented:
        raise ApiError(
            401,
            "unauthorized",
            f"missing token: this route needs the {role} role; "
            "send 'Authorization: Bearer <token>'",
            headers=_CHALLENGE,
        )
    book: TokenBook = request.app.state.tokens
    roles = book.roles_of(presented)
    if not roles:
        raise ApiError(401, "unauthorized", "the token is not recognised", headers=_CHALLENGE)
    if role not in roles:
        have = ", ".join(sorted(roles))
        raise ApiError(403, "forbidden", f"this route needs the {role} role; the token has {have}")
    return roles


def require(role: Role) -> Callable[..., Awaitable[frozenset[Role]]]:
    """A dependency admitting bearer tokens that carry `role`."""

    async def dependency(
        request: Request,
        credentials: Bearer,
    ) -> frozenset[Role]:
        return _check(request, credentials.credentials if credentials else None, role)

    return dependency


async def require_ingest(
    request: Request,
    credentials: Bearer,
    header_key: Annotated[str | None, Security(ingest_header)],
    query_key: Annotated[str | None, Security(ingest_query)],
) -> frozenset[Role]:
    """Ingest keys come as a bearer token, an X-GenPulse-Key header or (beacons) `?key=`."""
    presented = (credentials.credentials if credentials else None) or header_key or query_key
    return _check(request, presented, Role.INGEST)


def check_origin(request: Request, settings: ApiSettings) -> None:
    """Browsers name the page's origin; only allow-listed ones (or this API's own) may ingest."""
    origin = request.headers.get("origin")
    if origin is None or origin in settings.api_cors_origins:
        return
    if urlsplit(origin).netloc != request.headers.get("host"):
        raise ApiError(
            403,
            "origin_not_allowed",
            "this page's origin is not in GENPULSE_API_CORS_ORIGINS",
        )
