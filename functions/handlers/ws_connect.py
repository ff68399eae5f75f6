"""`$connect`: record the connection, or refuse it (ended meeting, removed participant)."""

from __future__ import annotations

from typing import Any

from townhall import runtime
from townhall.auth.claims import JoinClaims
from townhall.errors import DomainError
from townhall.observability import MetricUnit, logger, metrics
from townhall.routes import SUBPROTOCOL, TOKEN_HEADER

_STATUS = {"not_found": 404, "gone": 410, "forbidden": 403}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event["requestContext"]
    claims = JoinClaims.from_authorizer_context(request["authorizer"])
    try:
        runtime.signaling_for_event(event).connect(
            claims, request["connectionId"], request.get("identity", {}).get("sourceIp", "")
        )
    except DomainError as exc:
        logger.info("connect refused", code=exc.code, reason=exc.message)
        metrics.add_metric(name="ConnectRefused", unit=MetricUnit.Count, value=1)
        return {"statusCode": _STATUS.get(exc.code, 400), "body": exc.message}
    metrics.add_metric(name="Connections", unit=MetricUnit.Count, value=1)
    # The browser offered "townhall, <token>"; selecting the first keeps the token out of the
    # answer, and a handshake that offered subprotocols fails unless one is selected.
    return {"statusCode": 200, "headers": {TOKEN_HEADER: SUBPROTOCOL}}
