"""The fake AWS identity the twin presents: account, Region, credentials, and id formats.

Everything here is made up but shaped like the real thing, so handler code that parses an
ARN, logs a request id or builds a key from a connection id sees values of the right form.
"""

from __future__ import annotations

import base64
import os
import secrets
import string
import time
from typing import Any

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

# moto accepts any credentials; these are the values its documentation suggests. The twin's own
# boto3 clients pass them explicitly, and the handlers get them through the environment.
FAKE_CREDENTIALS: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


def fake_session() -> Any:
    """A boto3 session with the twin's made-up identity and Region, passed explicitly so that
    no credentials of the machine's environment are ever picked up by the twin's clients."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=REGION,
    )


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def new_gateway_id() -> str:
    """An id in API Gateway's format for connection, request and message ids.

    AWS ids look like "LmxFocX0IAMCJfg=": 11 bytes in URL-safe base64, so 16 characters ending
    in '='. The '=' matters: botocore percent-encodes it in @connections paths.
    """
    return base64.urlsafe_b64encode(os.urandom(11)).decode("ascii")


def new_api_id() -> str:
    """An API id like "a1b2c3d4e5": ten lowercase letters and digits."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(10))


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def gateway_request_time(epoch_ms: int) -> str:
    """API Gateway's `requestTime`, e.g. "21/Nov/2026:12:56:19 +0000" (English month, UTC).

    Written out by hand because strftime's %b follows the process locale.
    """
    t = time.gmtime(epoch_ms / 1000)
    return (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )


def iso8601(epoch_ms: int) -> str:
    """The management API's timestamp format, e.g. "2026-11-21T12:56:19.123Z"."""
    t = time.gmtime(epoch_ms / 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{epoch_ms % 1000:03d}Z"
