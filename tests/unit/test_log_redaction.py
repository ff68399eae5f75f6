"""The twin's request logs never hold a credential: an API key a client put in a URL (the API
refuses it with 400, but uvicorn logs the request line first) is redacted like a JWT."""

from __future__ import annotations

import logging

from infra.twin.log_redaction import REDACTED, TokenRedaction

KEY = "thk_k3v9x2m4q8w1z7p5_" + "Ab-_" * 10 + "xyz"


def _emitted(message: str, *args: object) -> str:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, message, args, None)
    assert TokenRedaction().filter(record)
    return record.getMessage()


def test_an_api_key_in_a_request_line_is_redacted() -> None:
    line = _emitted(
        '%s - "%s %s HTTP/1.1" %d',
        "127.0.0.1:5000",
        "GET",
        f"/api/v1/meetings?api_key={KEY}&x=1",
        400,
    )
    assert "thk_" not in line and KEY[4:] not in line
    assert f"api_key={REDACTED}&x=1" in line


def test_an_api_key_as_a_bearer_credential_is_redacted() -> None:
    assert _emitted(f"authorization: Bearer {KEY}") == f"authorization: Bearer {REDACTED}"


def test_webhook_secrets_and_signatures_are_redacted() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    signature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    line = _emitted("rotated to %s; sent %s", secret, f"webhook-signature: {signature}")
    assert "MfKQ9r8G" not in line and "g0hM9SsE" not in line
    assert line == f"rotated to {REDACTED}; sent webhook-signature: v1,{REDACTED}"
