"""The supervisor's front: the node's one control URL, routing each request to its worker.

The control plane knows one `control_url` per node. The front reads the meeting id from the
request's media token *without verifying it* and passes the request, unchanged, to the worker
that owns that meeting (`routing.worker_for`); the worker verifies everything. A forged token
can therefore only choose which worker refuses it. Requests with no readable meeting go to
worker 0, which answers the error. `GET /v1/health` sums the workers' health.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import cast

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts import node_api
from contracts.node_api import WORKER_HEADER, ErrorCode
from media_fleet.service.routing import unverified_meeting_id
from media_fleet.service.wire import WireError, error_response, parse_object, read_body
from media_fleet.service.workers import WorkerPool

log = logging.getLogger(__name__)

# Publish and subscribe wait for the room's ICE gathering, which is quick on a host with no
# STUN, but a busy worker may take a while; past this the control plane should retry.
FORWARD_TIMEOUT_SECONDS = 20.0
# Every request about one meeting, revocations included: they must reach the worker that holds
# the meeting's connections and checks its tokens.
ROUTED_PATHS = node_api.MEETING_PATHS


def front_app(pool: WorkerPool, node_id: str, draining: Callable[[], bool]) -> Starlette:
    client = httpx.AsyncClient(timeout=FORWARD_TIMEOUT_SECONDS, trust_env=False)

    async def forward(request: Request) -> Response:
        try:
            body = await read_body(request)
            document = parse_object(body)
        except WireError as exc:
            return error_response(exc.code, exc.message)
        worker = pool.for_meeting(unverified_meeting_id(document.get("token")))
        try:
            answer = await client.post(
                f"{worker.url}{request.url.path}",
                content=body,
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError as exc:
            log.warning("worker %d did not answer %s: %r", worker.index, request.url.path, exc)
            return error_response(ErrorCode.WORKER_UNAVAILABLE, "the media node is not ready")
        headers = {WORKER_HEADER: answer.headers.get(WORKER_HEADER, str(worker.index))}
        return Response(
            answer.content,
            status_code=answer.status_code,
            headers=headers,
            media_type=answer.headers.get("content-type", "application/json"),
        )

    async def health(_request: Request) -> Response:
        await pool.poll()
        # A worker's own answer, as it sent it; or a placeholder for one that did not answer.
        workers: list[node_api.WorkerHealth | node_api.DownWorker] = [
            cast(node_api.WorkerHealth, w.health)
            if w.health is not None
            else {"worker": w.index, "state": "down"}
            for w in pool.workers
        ]
        load = pool.load()
        answer: node_api.NodeHealth = {
            "node_id": node_id,
            "state": "draining" if draining() else "active",
            "sessions": pool.sessions(),
            "forwarded_streams": load.forwarded_streams,
            "packets_per_second": load.packets_per_second,
            "cpu": load.cpu,
            "workers": workers,
        }
        return JSONResponse(answer)

    app = Starlette(
        routes=[
            *(Route(path, forward, methods=["POST"]) for path in ROUTED_PATHS),
            Route(node_api.HEALTH_PATH, health, methods=["GET"]),
        ],
    )
    # The supervisor closes it when it stops serving.
    app.state.http = client
    return app
