"""A lean client for API Gateway's management API (`@connections`): SigV4-signed HTTPS
requests over one pooled urllib3 manager.

botocore's generic client spends about 0.85 ms of CPU per call (operation model, hooks,
parsing); signing the request ourselves with botocore's own SigV4 signer and sending it on
urllib3 takes about 0.35 ms. A fan-out to a meeting of 1,000 is 1,000 calls, so this is the
hot path of every large meeting's Lambda bill. The API is three verbs on one resource, which
is why a hand-written client stays small; `tests/unit/test_connections_api.py` checks its
signatures against an independent SigV4 verification.
"""

from __future__ import annotations

import os
import random
import threading
import time
from typing import Any
from urllib.parse import quote, urlsplit

SERVICE = "execute-api"
MAX_ATTEMPTS = 3  # throttling (429) and server errors (5xx) are retried, then reported
POOL_SIZE = 64


class ConnectionsApiError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(f"@connections answered {status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type


def region_of(endpoint: str) -> str:
    """`https://{id}.execute-api.{region}.amazonaws.com/{stage}` names its Region; a local
    endpoint does not, so the environment's Region is used."""
    host = urlsplit(endpoint).hostname or ""
    parts = host.split(".")
    if len(parts) >= 4 and parts[1] == "execute-api":
        return parts[2]
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


class ConnectionsApi:
    """POST, GET and DELETE on `{endpoint}/@connections/{id}`. Thread-safe."""

    def __init__(self, endpoint: str) -> None:
        import botocore.session
        import urllib3
        from botocore.auth import SigV4Auth

        self._endpoint = endpoint.rstrip("/")
        self._region = region_of(endpoint)
        self._session = botocore.session.get_session()
        self._signer_type = SigV4Auth
        self._http = urllib3.PoolManager(
            maxsize=POOL_SIZE,
            block=False,
            timeout=urllib3.Timeout(connect=2.0, read=5.0),
            retries=False,
        )
        self._lock = threading.Lock()

    def post(self, connection_id: str, data: bytes) -> int:
        """Deliver `data`; the HTTP status (200, or 410 when the connection is gone)."""
        return self._call("POST", connection_id, data, ok=(200, 410))

    def delete(self, connection_id: str) -> int:
        return self._call("DELETE", connection_id, b"", ok=(204, 200, 410))

    def _call(self, method: str, connection_id: str, body: bytes, ok: tuple[int, ...]) -> int:
        url = f"{self._endpoint}/@connections/{quote(connection_id, safe='')}"
        for attempt in range(MAX_ATTEMPTS):
            response = self._http.request(
                method, url, body=body or None, headers=self._sign(method, url, body)
            )
            status = int(response.status)
            if status in ok:
                return status
            if (status == 429 or status >= 500) and attempt + 1 < MAX_ATTEMPTS:
                # Full jitter: many Lambdas fanning out at once must not retry in step.
                time.sleep(random.uniform(0, 0.05 * 2**attempt))
                continue
            raise ConnectionsApiError(
                status,
                str(response.headers.get("x-amzn-ErrorType", "")).split(":")[0],
                response.data[:200].decode("utf-8", "replace"),
            )
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _sign(self, method: str, url: str, body: bytes) -> dict[str, str]:
        from botocore.awsrequest import AWSRequest

        credentials = self._credentials()
        request = AWSRequest(method=method, url=url, data=body)
        self._signer_type(credentials, SERVICE, self._region).add_auth(request)
        return dict(request.headers.items())

    def _credentials(self) -> Any:
        # Refreshable credentials (an instance role, say) are frozen per request; Lambda's
        # come from environment variables and never change during an invocation.
        with self._lock:
            credentials = self._session.get_credentials()
        if credentials is None:
            raise ConnectionsApiError(0, "NoCredentials", "no AWS credentials found")
        return credentials.get_frozen_credentials()
