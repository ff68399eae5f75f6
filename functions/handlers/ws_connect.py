"""`$connect`: record the connection, or refuse it (ended meeting, removed participant)."""

from __future__ import annotations

from typing import Any

from townhall import runtime
from townhall.auth.claims import JoinClaims
from townhall.errors import DomainError

_STATUS = {"not_found": 404, "gone": 410, "forbidden": 403}


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event["requestContext"]
    claims = JoinClaims.from_authorizer_context(request["authorizer"])
    try:
        runtime.signaling_for_event(event).connect(
            claims, request["connectionId"], request.get("identity", {}).get("sourceIp", "")
        )
    except DomainError as exc:
        return {"statusCode": _STATUS.get(exc.code, 400), "body": exc.message}
    return {"statusCode": 200}
