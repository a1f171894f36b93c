"""``/v1/notification-endpoints``: where notifications go besides the inbox.

Webhook secrets (``whsec_…``) are shown once, on creation and on rotation; after a
rotation the previous secret still signs (a second ``webhook-signature``) for a day.
``POST /{id}/test`` queues a test notification to that endpoint only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Response

from query_api.deps import AdminConn, TargetOrg, ViewConn
from query_api.models.alerts import (
    ENDPOINT_EXAMPLES,
    EndpointBody,
    EndpointCreated,
    EndpointPublic,
    SecretPublic,
    TestQueued,
)
from query_api.routes._alerting import endpoint_spec
from storage import NotFoundError, alert_config

router = APIRouter(tags=["alerts"])


def _find(conn: ViewConn, endpoint_id: uuid.UUID) -> EndpointPublic:
    for e in alert_config.list_endpoints(conn):
        if e["id"] == endpoint_id:
            return EndpointPublic(**e)
    raise NotFoundError(f"no notification endpoint {endpoint_id}")


@router.get("/notification-endpoints", response_model=list[EndpointPublic], summary="Endpoints")
def list_endpoints(conn: ViewConn) -> list[EndpointPublic]:
    """The org's endpoints (secrets are never listed)."""
    return [EndpointPublic(**e) for e in alert_config.list_endpoints(conn)]


@router.post(
    "/notification-endpoints",
    response_model=EndpointCreated,
    status_code=201,
    summary="Add an endpoint",
)
def create_endpoint(
    conn: AdminConn,
    org_id: TargetOrg,
    body: Annotated[EndpointBody, Body(openapi_examples=ENDPOINT_EXAMPLES)],
) -> EndpointCreated:
    """Adds an endpoint; a webhook's signing secret is in the answer, and only there."""
    endpoint_id, secret = alert_config.create_endpoint(conn, org_id, endpoint_spec(body))
    return EndpointCreated(**_find(conn, endpoint_id).model_dump(), secret=secret)


@router.get(
    "/notification-endpoints/{endpoint_id}", response_model=EndpointPublic, summary="One endpoint"
)
def get_endpoint(conn: ViewConn, endpoint_id: uuid.UUID) -> EndpointPublic:
    """One endpoint."""
    return _find(conn, endpoint_id)


@router.post(
    "/notification-endpoints/{endpoint_id}/enable",
    response_model=EndpointPublic,
    summary="Enable an endpoint",
)
def enable_endpoint(conn: AdminConn, endpoint_id: uuid.UUID) -> EndpointPublic:
    """Enables an endpoint again (clears its failure record)."""
    alert_config.set_endpoint_enabled(conn, endpoint_id, True)
    return _find(conn, endpoint_id)


@router.post(
    "/notification-endpoints/{endpoint_id}/disable",
    response_model=EndpointPublic,
    summary="Disable an endpoint",
)
def disable_endpoint(conn: AdminConn, endpoint_id: uuid.UUID) -> EndpointPublic:
    """Stops deliveries to an endpoint."""
    alert_config.set_endpoint_enabled(conn, endpoint_id, False)
    return _find(conn, endpoint_id)


@router.delete(
    "/notification-endpoints/{endpoint_id}", status_code=204, summary="Delete an endpoint"
)
def delete_endpoint(conn: AdminConn, endpoint_id: uuid.UUID) -> Response:
    """Deletes an endpoint and its delivery log."""
    alert_config.delete_endpoint(conn, endpoint_id)
    return Response(status_code=204)


@router.post(
    "/notification-endpoints/{endpoint_id}/rotate-secret",
    response_model=SecretPublic,
    summary="Rotate a webhook secret",
)
def rotate_secret(conn: AdminConn, endpoint_id: uuid.UUID) -> SecretPublic:
    """A new signing secret (shown once); the old one also signs for a day."""
    now = datetime.now(UTC)
    secret = alert_config.rotate_secret(conn, endpoint_id, now)
    return SecretPublic(secret=secret, previous_until=now + alert_config.ROTATION_OVERLAP)


@router.post(
    "/notification-endpoints/{endpoint_id}/test",
    response_model=TestQueued,
    status_code=202,
    summary="Send a test notification",
)
def test_endpoint(conn: AdminConn, endpoint_id: uuid.UUID) -> TestQueued:
    """Queues a test notification to this endpoint; the delivery worker sends it."""
    return TestQueued(
        webhook_id=alert_config.queue_test_delivery(conn, endpoint_id, datetime.now(UTC))
    )
