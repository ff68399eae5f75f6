"""`$disconnect`: mark the participant offline and tell the others. Best-effort in AWS, so a
410 on a later post triggers the same clean-up (see townhall.signaling.service)."""

from __future__ import annotations

from typing import Any

from townhall import runtime
from townhall.auth.claims import JoinClaims
from townhall.observability import MetricUnit, logger, metrics
from townhall.signaling.context import Caller


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event["requestContext"]
    caller = Caller(
        JoinClaims.from_authorizer_context(request["authorizer"]), request["connectionId"]
    )
    reason = f"{request.get('disconnectStatusCode', '')} {request.get('disconnectReason', '')}"
    runtime.signaling_for_event(event).disconnect(caller, reason.strip() or "disconnected")
    metrics.add_metric(name="Disconnections", unit=MetricUnit.Count, value=1)
    return {"statusCode": 200}
