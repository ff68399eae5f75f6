"""The webhook sender: SQS delivery messages in, signed POSTs out, retries re-enqueued. See
townhall.webhooks.sender."""

from __future__ import annotations

from typing import Any

from townhall import runtime
from townhall.observability import MetricUnit, logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = runtime.webhook_sender().handle(event)
    if failures:
        metrics.add_metric(name="WebhookSenderFailures", unit=MetricUnit.Count, value=len(failures))
    return {"batchItemFailures": [{"itemIdentifier": m} for m in failures]}
