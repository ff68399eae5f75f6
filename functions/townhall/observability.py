"""Powertools logging, metrics and tracing, set up once for every handler.

Structured JSON logs carry the Lambda context and a correlation id; metrics go out as
CloudWatch embedded metric format (EMF) log lines in the `Townhall` namespace (from
POWERTOOLS_METRICS_NAMESPACE). The library's own modules log through the standard `logging`
module; their loggers get the same JSON formatting here.

Tracing: every function runs with Lambda's active X-Ray tracing (set in CDK), which records
each invocation without any SDK. Powertools' Tracer adds subsegments per AWS call, but it
imports the X-Ray SDK, about 330 ms of cold start even when disabled, so only the HTTP API
(whose FastAPI import dominates anyway) uses it; the WebSocket handlers, which sit on every
join's critical path, do not.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import utils
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()

utils.copy_config_to_registered_loggers(source_logger=logger, include={"townhall"})

__all__ = ["MetricUnit", "logger", "metrics"]
