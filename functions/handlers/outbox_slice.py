"""One slice of a large session's fan-out: post each connection its messages in order, and
answer which connections are gone. Invoked synchronously by the outbox consumer."""

from __future__ import annotations

from typing import Any

from townhall import runtime
from townhall.observability import logger
from townhall.outbox.fanout import read_slice_request


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    messages, deliveries = read_slice_request(event)
    poster = runtime.outbox_poster()
    gone = poster.post_sequences([(c, [messages[i] for i in idx]) for c, idx in deliveries])
    return {"gone": gone}
