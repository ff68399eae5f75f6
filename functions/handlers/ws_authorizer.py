"""`$connect` REQUEST authorizer: admits a WebSocket only with a valid join token.

The token comes as the second WebSocket subprotocol (`townhall.routes`: browsers cannot set
headers on a WebSocket, and a query string would land in access logs). Its verified claims
become the authorizer context, which API Gateway attaches to every later event of the
connection, so the other handlers never re-verify it.
"""

from __future__ import annotations

from typing import Any

from townhall import runtime
from townhall.errors import Unauthenticated
from townhall.observability import MetricUnit, logger, metrics
from townhall.routes import MEETING_QUERY_PARAMETER, TOKEN_HEADER, token_from_subprotocols


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    token = token_from_subprotocols(headers.get(TOKEN_HEADER.lower())) or ""
    try:
        # The client names the meeting it means to enter; a token for any other is refused.
        meeting_id = query.get(MEETING_QUERY_PARAMETER)
        if not meeting_id:
            raise Unauthenticated(f"the '{MEETING_QUERY_PARAMETER}' query parameter is required")
        claims = runtime.token_service().verify_join(token, meeting_id)
    except Unauthenticated as exc:
        logger.info("connect refused", reason=exc.message)
        metrics.add_metric(name="ConnectRefused", unit=MetricUnit.Count, value=1)
        return _policy("anonymous", "Deny", event["methodArn"], {"reason": exc.message})
    metrics.add_metric(name="ConnectAuthorized", unit=MetricUnit.Count, value=1)
    return _policy(
        claims.participant_id, "Allow", event["methodArn"], claims.as_authorizer_context()
    )


def _policy(principal: str, effect: str, resource: str, context: dict[str, Any]) -> dict[str, Any]:
    return {
        "principalId": principal,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}],
        },
        "context": context,
    }
