"""The outbox consumer: the Meetings table's stream (event items only) to the connections each
event concerns. See townhall.outbox.fanout."""

from __future__ import annotations

from typing import Any

from townhall import runtime
from townhall.observability import MetricUnit, logger, metrics


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    failures = runtime.outbox_fanout().handle(event)
    metrics.add_metric(name="OutboxBatches", unit=MetricUnit.Count, value=1)
    if failures:
        metrics.add_metric(name="OutboxBatchFailures", unit=MetricUnit.Count, value=1)
    return {"batchItemFailures": [{"itemIdentifier": s} for s in failures]}
