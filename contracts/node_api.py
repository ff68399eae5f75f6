"""The media node's control API on the wire: paths, bodies, error codes.

The control plane calls it (`townhall.media.node_client`); the node serves it
(`media_fleet.service.control_api`, behind `media_fleet.service.front`). Every request carries
a token, and the token alone names the meeting and the participant:

    POST /v1/publish           PublishRequest         -> PublishResponse
    POST /v1/subscribe         SubscribeRequest       -> SubscribeResponse
    POST /v1/subscribe/answer  SubscribeAnswerRequest -> {}
    POST /v1/leave             LeaveRequest           -> {}
    POST /v1/revoke            RevokeRequest          -> RevokeResponse
    GET  /v1/health                                   -> NodeHealth (front) / WorkerHealth

Errors are `ErrorBody`: `{"error": {"code": ErrorCode, "message": str}}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal, NotRequired, TypedDict

from contracts.media_tokens import RevocationScope

PUBLISH_PATH = "/v1/publish"
SUBSCRIBE_PATH = "/v1/subscribe"
SUBSCRIBE_ANSWER_PATH = "/v1/subscribe/answer"
LEAVE_PATH = "/v1/leave"
REVOKE_PATH = "/v1/revoke"
HEALTH_PATH = "/v1/health"
# The POSTs, each about one meeting (named by its token): the node's front sends each to the
# worker that owns the meeting.
MEETING_PATHS = (PUBLISH_PATH, SUBSCRIBE_PATH, SUBSCRIBE_ANSWER_PATH, LEAVE_PATH, REVOKE_PATH)

# An SDP offer with a dozen m-lines and candidates is 5-15 KiB; 64 KiB leaves room for more
# slots and bounds what one request can make the node buffer.
MAX_BODY_BYTES = 64 * 1024
# Names the worker process that answered: routing is observable in logs and tests.
WORKER_HEADER = "x-townhall-worker"


class ErrorCode(StrEnum):
    """Stable, machine-readable; the HTTP status of each is in `ERROR_STATUS`."""

    BAD_REQUEST = "bad_request"
    INVALID_JSON = "invalid_json"
    INVALID_INPUT = "invalid_input"
    # The token is missing, malformed, forged, expired, for another node or meeting, or not a
    # token of the kind the path takes.
    UNAUTHENTICATED = "unauthenticated"
    # A valid media token that a revocation covers: the participant was removed, or the
    # meeting ended, after it was issued.
    TOKEN_REVOKED = "token_revoked"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    INTERNAL = "internal"
    # From the front only: the worker that owns the meeting did not answer.
    WORKER_UNAVAILABLE = "worker_unavailable"
    # The node drains: no new sessions; leave, answer and revoke still work.
    DRAINING = "draining"
    # The node holds as many revocations as it keeps; the caller may retry.
    OVERLOADED = "overloaded"


ERROR_STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.INVALID_JSON: 400,
    ErrorCode.INVALID_INPUT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.TOKEN_REVOKED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.INTERNAL: 500,
    ErrorCode.WORKER_UNAVAILABLE: 502,
    ErrorCode.DRAINING: 503,
    ErrorCode.OVERLOADED: 503,
}


class ErrorDetail(TypedDict):
    code: str
    message: str


class ErrorBody(TypedDict):
    error: ErrorDetail


def error_body(code: ErrorCode, message: str) -> ErrorBody:
    return {"error": {"code": code.value, "message": message}}


class IceServer(TypedDict):
    """A TURN server the node's side of one connection gathers a relay candidate on, with a
    credential the control plane minted for it (docs/turn.md, "The media nodes' side")."""

    urls: list[str]  # `turn:` only: the node reaches TURN over UDP or TCP, never TLS
    username: str
    credential: str


MAX_ICE_SERVERS = 2
MAX_ICE_URLS = 4
MAX_ICE_TEXT = 256


def ice_servers_from(body: Mapping[str, Any]) -> list[IceServer]:
    """The request's optional `ice_servers`, checked; ValueError says what is wrong."""
    value = body.get("ice_servers")
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ICE_SERVERS:
        raise ValueError(f"'ice_servers' must be a list of at most {MAX_ICE_SERVERS}")
    servers: list[IceServer] = []
    for server in value:
        if not isinstance(server, dict) or set(server) != {"urls", "username", "credential"}:
            raise ValueError("each ICE server must have exactly urls, username and credential")
        urls, username, credential = server["urls"], server["username"], server["credential"]
        if not isinstance(urls, list) or not 1 <= len(urls) <= MAX_ICE_URLS:
            raise ValueError(f"an ICE server's urls must be a list of 1 to {MAX_ICE_URLS}")
        for text in (*urls, username, credential):
            if not isinstance(text, str) or not 0 < len(text) <= MAX_ICE_TEXT:
                raise ValueError(f"ICE server fields must be strings of 1 to {MAX_ICE_TEXT}")
            if not text.isprintable():
                raise ValueError("ICE server fields must be printable")
        if not all(url.startswith("turn:") for url in urls):
            raise ValueError("a media node's ICE servers must be turn: URLs")
        servers.append({"urls": list(urls), "username": username, "credential": credential})
    return servers


class PublishRequest(TypedDict):
    token: str  # the participant's media token
    sdp: str  # the publisher's offer
    ice_servers: NotRequired[list[IceServer]]


class PublishResponse(TypedDict):
    sdp: str  # the node's answer


class SubscribeRequest(TypedDict):
    token: str
    ice_servers: NotRequired[list[IceServer]]


class SubscribeResponse(TypedDict):
    sdp: str  # the node's offer: its slots and the `townhall` data channel


class SubscribeAnswerRequest(TypedDict):
    token: str
    sdp: str  # the participant's answer to the node's offer


class LeaveRequest(TypedDict):
    token: str


class RevokeRequest(TypedDict):
    token: str  # a revocation token (audience townhall:media-revocation), never a media token


class RevokeResponse(TypedDict):
    revoked: RevocationScope


class WorkerHealth(TypedDict):
    node_id: str
    worker: int
    state: Literal["active", "draining"]
    meetings: int
    sessions: int
    forwarded_streams: int
    packets_per_second: float
    cpu: float
    # Decoders and encoders the worker ever created: forwarding needs none.
    codecs: NotRequired[dict[str, int]]
    # Measurement only (bench/): the process, its CPU time and memory, forwarding counters.
    pid: NotRequired[int]
    process_cpu_seconds: NotRequired[float]
    rss_bytes: NotRequired[int]
    forwarded_packets: NotRequired[int]
    forward_latency_us: NotRequired[dict[str, Any]]
    forward_latency_histogram: NotRequired[list[list[int]]]


class DownWorker(TypedDict):
    worker: int
    state: Literal["down"]


class NodeHealth(TypedDict):
    node_id: str
    state: Literal["active", "draining"]
    sessions: int
    forwarded_streams: int
    packets_per_second: float
    cpu: float
    workers: list[WorkerHealth | DownWorker]
