"""The twin's one ASGI app: what CloudFront and API Gateway's hostnames split in AWS.

ws  /<stage>                      -> WebSocket API           (wss://…/ws behind CloudFront)
http /<stage>/@connections/{id}   -> management API          (the execute-api domain)
http /api/*                       -> HTTP API, payload 2.0   (CloudFront /api/* behaviour)
http /2015-03-31/functions/*      -> Lambda's Invoke API      (lambda.<region>.amazonaws.com)
http anything else                -> web/ static files        (CloudFront default: S3)
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from infra.twin.http_api import API_PREFIX, HttpApi
from infra.twin.lambda_api import LambdaApi, is_lambda_path
from infra.twin.management_api import ManagementApi, is_management_path
from infra.twin.static_site import StaticSite
from infra.twin.websocket_api import WebSocketApi


class TwinRouter:
    def __init__(
        self,
        *,
        websocket_api: WebSocketApi,
        management_api: ManagementApi,
        http_api: HttpApi,
        static_site: StaticSite,
        lambda_api: LambdaApi | None = None,
    ) -> None:
        self.websocket_api = websocket_api
        self.management_api = management_api
        self.http_api = http_api
        self.static_site = static_site
        self.lambda_api = lambda_api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        path: str = scope["path"]
        if kind == "websocket":
            if path == f"/{self.websocket_api.stage}":
                await self.websocket_api(scope, receive, send)
            else:
                # No WebSocket API there: refuse the upgrade as a plain 404.
                await send({"type": "websocket.http.response.start", "status": 404, "headers": []})
                await send({"type": "websocket.http.response.body", "body": b""})
            return
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind != "http":
            return
        if is_management_path(scope.get("raw_path") or path.encode(), self.websocket_api.stage):
            await self.management_api(scope, receive, send)
        elif path.startswith(API_PREFIX):
            await self.http_api(scope, receive, send)
        elif self.lambda_api is not None and is_lambda_path(path):
            await self.lambda_api(scope, receive, send)
        else:
            await self.static_site(scope, receive, send)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
