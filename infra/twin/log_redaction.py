"""Keeps tokens out of the twin's logs.

The twin's servers log requests and, at debug level, WebSocket handshake headers; the join
token rides in `Sec-WebSocket-Protocol` and bearer tokens in `Authorization`. This filter
rewrites any such record before it is emitted: JWTs, `token=` query values, bearer
credentials, webhook signing secrets (`whsec_...`) and signatures (`v1,...`), and API keys (`thk_...`, which a client may wrongly put in a URL: the API refuses
it, but the access log line is written anyway) become `[redacted]`. AWS never sees these logs; API Gateway's access log format
(infra/stacks/api.py) names no header or query string.
"""

from __future__ import annotations

import logging
import re

_SECRETS = re.compile(
    r"eyJ[\w-]{4,}\.[\w-]{4,}\.[\w-]+"  # a JWT (header.payload.signature)
    r"|(?<=token=)[^&\s\"']+"  # a token in a query string
    r"|(?<=Bearer )[\w.~+/=-]+"  # a bearer credential
    r"|thk_[\w-]+"  # a partner API key anywhere (a query string refused with 400 included)
    r"|whsec_[A-Za-z0-9+/=]+"  # a webhook signing secret
    r"|(?<=v1,)[A-Za-z0-9+/]{43}=",  # a webhook signature (base64 of 32 bytes)
)
REDACTED = "[redacted]"
# The loggers that see requests and handshakes in the twin's process.
LOGGERS = ("uvicorn.error", "uvicorn.access", "websockets.server", "websockets.protocol")


class TokenRedaction(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRETS.sub(REDACTED, message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install() -> None:
    """Add the filter to the twin's request loggers (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenRedaction) for f in logger.filters):
            logger.addFilter(TokenRedaction())
