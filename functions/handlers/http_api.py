"""HTTP API (payload format 2.0) → FastAPI, through Mangum."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Tracer
from mangum import Mangum

from townhall.api.app import create_app
from townhall.observability import MetricUnit, logger, metrics

_asgi = Mangum(create_app(), lifespan="off")
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result: dict[str, Any] = _asgi(event, context)
    status = int(result.get("statusCode", 500))
    metrics.add_metric(name=f"Http{status // 100}xx", unit=MetricUnit.Count, value=1)
    return result
