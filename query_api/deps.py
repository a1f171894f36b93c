"""Who is asking, and the one scoped transaction each request runs in.

A route's signature says what it needs: ``principal: CurrentPrincipal`` for the caller,
``conn: ViewConn`` for a read-only transaction scoped to one org, ``conn: AdminConn`` to
change the org's own configuration, ``StaffReadConn`` / ``StaffWriteConn`` for staff
routes across orgs. Each opens exactly one transaction with
:func:`storage.transaction.scoped_transaction` (one ``act_as``); the database decides what
it may see, so no reader can escalate. The transaction commits before the response is
sent (``scope="function"``), so a failed commit is still answered as an error.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine, text

from query_api.errors import ApiError, validation_error
from query_api.ratelimit import RateLimiter, retry_after_seconds
from storage import DbRole, Scope, parse_prefix, scoped_transaction
from storage import authenticate as authenticate_key

PrincipalKind = Literal["api_key", "user"]
PrincipalRole = Literal["admin", "member", "alias_admin", "alias_support"]
STAFF_ROLES: frozenset[str] = frozenset({"alias_admin", "alias_support"})
STAFF_ORG_PREFIX = "/v1/staff/orgs/{org_id}"

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key (`aeos_ak_…`, `aeos_mk_…`, `aeos_sa_…`, `aeos_ss_…`) or an OIDC "
    "access token (JWT) of a configured issuer.",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: an API key or a person (OIDC)."""

    kind: PrincipalKind
    role: PrincipalRole
    org_id: uuid.UUID | None
    key_id: uuid.UUID | None
    user_id: uuid.UUID | None
    subject: str  # the key prefix, or the person's email (or IdP subject)

    @property
    def is_staff(self) -> bool:
        """ALIAS staff: reads every org."""
        return self.role in STAFF_ROLES

    @property
    def can_write_org(self) -> bool:
        """May change an org's configuration (its own, or any for ``alias_admin``)."""
        return self.role in ("admin", "alias_admin")

    @property
    def rate_key(self) -> str:
        """The rate limit bucket: one per credential."""
        return f"key:{self.key_id}" if self.kind == "api_key" else f"user:{self.user_id}"


def _unauthorized(detail: str) -> ApiError:
    return ApiError(
        401, "unauthorized", "Unauthorized", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def _forbidden(detail: str) -> ApiError:
    return ApiError(403, "forbidden", "Forbidden", detail)


def _key_principal(engine: Engine, token: str) -> Principal:
    with engine.begin() as conn:  # aeos_authenticate_key is SECURITY DEFINER: no role needed
        identity = authenticate_key(conn, token)
    if identity is None:
        raise _unauthorized("unknown or revoked API key")
    if identity.role not in ("admin", "member", *STAFF_ROLES):
        raise _forbidden("an ingest key can only send telemetry; use an admin or member key")
    prefix = parse_prefix(token.strip()) or ""
    role: PrincipalRole = identity.role  # type: ignore[assignment]  # checked just above
    return Principal("api_key", role, identity.org_id, identity.key_id, None, prefix)


async def authenticate(request: Request, token: str) -> Principal:
    """The principal of a bearer token (API key or OIDC access token).

    Raises:
        ApiError: 401 for a malformed, unknown, revoked or invalid credential; 403 for an
            ingest key or an identity with no access.
    """
    engine: Engine = request.app.state.engine
    if parse_prefix(token.strip()) is not None:
        return await run_in_threadpool(_key_principal, engine, token)
    oidc = getattr(request.app.state, "oidc", None)
    if oidc is not None and token.count(".") == 2:
        principal: Principal = await oidc.principal(engine, token)
        return principal
    raise _unauthorized("the bearer token is neither an API key nor an accepted access token")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller (``Authorization: Bearer …``), within its rate limit.

    Raises:
        ApiError: 401 without a valid credential, 403 for an ingest key, 429 over the rate.
    """
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("send Authorization: Bearer <API key or access token>")
    principal = await authenticate(request, credentials.credentials)
    limiter: RateLimiter = request.app.state.limiter
    wait = limiter.acquire(principal.rate_key)
    if wait > 0:
        seconds = retry_after_seconds(wait)
        raise ApiError(
            429,
            "rate-limited",
            "Too many requests",
            f"this credential is over its rate limit; retry in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
    request.state.principal = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


_STAFF_ORG_PATH = STAFF_ORG_PREFIX.removesuffix("{org_id}")


def _on_staff_org_path(request: Request) -> bool:
    # Routers are mounted under both prefixes; the request path tells which mount matched
    # (FastAPI may hand dependencies the router's own route, without the prefix).
    path = str(request.scope.get("path", ""))
    root = str(request.scope.get("root_path", ""))
    path = path.removeprefix(root) if root and path.startswith(root) else path
    return "org_id" in request.path_params and path.startswith(_STAFF_ORG_PATH)


def _path_org(request: Request) -> uuid.UUID:
    raw = request.path_params.get("org_id", "")
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        raise validation_error("org_id", f"not a UUID: {raw!r}") from None


def _own_org(principal: Principal) -> uuid.UUID:
    if principal.org_id is None:
        raise _forbidden("this credential belongs to no org; use /v1/staff/orgs/{org_id}/…")
    return principal.org_id


def _require_org_exists(conn: Connection, org_id: uuid.UUID) -> None:
    # Scoped to that org, the row is visible exactly when the org exists.
    found = conn.execute(text("SELECT 1 FROM orgs WHERE id = :org"), {"org": org_id}).scalar()
    if found is None:
        raise ApiError(404, "not-found", "Not found", f"no org {org_id}")


def _target_org(request: Request, principal: Principal) -> tuple[uuid.UUID, bool]:
    """The org a view reads, and whether it came from the staff path."""
    if _on_staff_org_path(request):
        if not principal.is_staff:
            raise _forbidden("only ALIAS staff may read another org")
        return _path_org(request), True
    return _own_org(principal), False


def target_org(request: Request, principal: CurrentPrincipal) -> uuid.UUID:
    """The org a view route reads (own org, or the staff path's ``{org_id}``; 404 unknown)."""
    org_id, staff_path = _target_org(request, principal)
    if staff_path:
        with scoped_transaction(request.app.state.engine, Scope(DbRole.TENANT, org_id)) as conn:
            _require_org_exists(conn, org_id)
    return org_id


TargetOrg = Annotated[uuid.UUID, Depends(target_org)]


def view_connection(request: Request, principal: CurrentPrincipal) -> Iterator[Connection]:
    """A read-only transaction as the tenant role for the view's org."""
    org_id, staff_path = _target_org(request, principal)
    engine: Engine = request.app.state.engine
    with scoped_transaction(engine, Scope(DbRole.TENANT, org_id)) as conn:
        # Going read-only is allowed at any point of a transaction; the database then
        # refuses every write, whoever the caller (alias_support never writes).
        conn.execute(text("SET TRANSACTION READ ONLY"))
        if staff_path:
            _require_org_exists(conn, org_id)
        yield conn


def admin_connection(request: Request, principal: CurrentPrincipal) -> Iterator[Connection]:
    """A read-write tenant transaction for an org admin (or alias_admin on the staff path)."""
    org_id, staff_path = _target_org(request, principal)
    allowed = principal.role == "alias_admin" if staff_path else principal.role == "admin"
    if not allowed:
        raise _forbidden(
            "needs an org admin credential"
            + (" (alias_admin on /v1/staff/orgs/…)" if staff_path else "")
        )
    with scoped_transaction(request.app.state.engine, Scope(DbRole.TENANT, org_id)) as conn:
        if staff_path:
            _require_org_exists(conn, org_id)
        yield conn


def staff_read_connection(principal: CurrentPrincipal, request: Request) -> Iterator[Connection]:
    """A read-only transaction across orgs (support role) for ALIAS staff."""
    if not principal.is_staff:
        raise _forbidden("only ALIAS staff (alias_admin, alias_support) may use staff views")
    with scoped_transaction(request.app.state.engine, Scope(DbRole.SUPPORT)) as conn:
        conn.execute(text("SET TRANSACTION READ ONLY"))
        yield conn


def staff_write_connection(principal: CurrentPrincipal, request: Request) -> Iterator[Connection]:
    """A read-write transaction across orgs (staff role) for ``alias_admin`` only."""
    if principal.role != "alias_admin":
        raise _forbidden("only alias_admin may change platform configuration")
    with scoped_transaction(request.app.state.engine, Scope(DbRole.STAFF)) as conn:
        yield conn


def app_engine(request: Request, _principal: CurrentPrincipal) -> Engine:
    """The service's engine, for routes that open several short transactions (SSE).

    Open each with ``scoped_transaction(engine, scope_for(principal, org_id))``.
    """
    engine: Engine = request.app.state.engine
    return engine


def scope_for(principal: Principal, org_id: uuid.UUID | None = None) -> Scope:
    """The tenant scope of ``org_id`` (staff only, unless it is the principal's own org).

    Raises:
        ApiError: 403 for another org without staff rights, or no org at all.
    """
    if org_id is None or org_id == principal.org_id:
        return Scope(DbRole.TENANT, _own_org(principal))
    if not principal.is_staff:
        raise _forbidden("only ALIAS staff may read another org")
    return Scope(DbRole.TENANT, org_id)


ViewConn = Annotated[Connection, Depends(view_connection, scope="function")]
AdminConn = Annotated[Connection, Depends(admin_connection, scope="function")]
StaffReadConn = Annotated[Connection, Depends(staff_read_connection, scope="function")]
StaffWriteConn = Annotated[Connection, Depends(staff_write_connection, scope="function")]
AppEngine = Annotated[Engine, Depends(app_engine)]
