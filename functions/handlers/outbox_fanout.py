"""The outbox consumer: the Meetings table's stream (event items only) to the connections each
event concerns. See townhall.outbox.fanout."""

from __future__ import annotations

from typing import Any

from townhall import runtime
from townhall.observability import MetricUnit, logger, metrics
from townhall.outbox.fanout import PoisonedRecord


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    metrics.add_metric(name="OutboxBatches", unit=MetricUnit.Count, value=1)
    try:
        failures = runtime.outbox_fanout().handle(event)
    except PoisonedRecord:
        # Raised on purpose: the event source mapping bisects the batch around the record.
        metrics.add_metric(name="OutboxPoisonedBatches", unit=MetricUnit.Count, value=1)
        raise
    if failures:
        metrics.add_metric(name="OutboxBatchFailures", unit=MetricUnit.Count, value=1)
    return {"batchItemFailures": [{"itemIdentifier": s} for s in failures]}
