"""The outbox's webhook consumer: the Meetings table's stream (event types webhooks carry) to
a delivery per subscription, enqueued. See townhall.outbox.webhooks."""

from __future__ import annotations

from typing import Any

from townhall import runtime
from townhall.observability import MetricUnit, logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = runtime.webhook_enqueuer().handle(event)
    if failures:
        metrics.add_metric(name="WebhookEnqueueFailures", unit=MetricUnit.Count, value=1)
    return {"batchItemFailures": [{"itemIdentifier": s} for s in failures]}
