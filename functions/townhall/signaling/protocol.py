"""The signaling envelope: what clients send, what the server answers, and how input is checked.

Client to server, one JSON object per WebSocket message:

    {"action": "chat", "id": "r-17", "data": {"text": "hello"}}

`action` selects the route; `id` is the client's request id (1 to 64 of [A-Za-z0-9_.:-]),
unique per participant for at least 10 minutes: a repeated id is refused as a replay, which
makes every state change safe to retry. `data` is an object whose fields depend on the action.

Server to client:

    {"type": "reply", "id": "r-17", "action": "chat", "ok": true, "data": {...}}
    {"type": "error", "id": "r-17", "action": "chat", "error": {"code": "...", "message": "..."}}
    {"type": "event", "event": "chat.message", "seq": 42, "event_id": "42", "meeting_id": "...",
     "data": {...}}

Events carry the session's sequence number (`seq`, taken in order, though commits may land
out of order) and an id unique in the session (`event_id`): delivery is at least once, and a
client drops an event whose id it already has (docs/outbox.md). The full list is in
docs/signaling.md.

Validation is hand-written on purpose: the signaling Lambda's cold start is dominated by
imports, and a schema library would cost more than the checks themselves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from townhall.errors import DomainError, InvalidInput
from townhall.model.event import OutboxEvent
from townhall.routes import ACTIONS

# Every id pattern is used with fullmatch: `$` also matches before a trailing newline.
_REQUEST_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,64}")
_PARTICIPANT_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


class ProtocolError(DomainError):
    """The message itself is wrong: not JSON, unknown action, bad field."""

    code = "bad_request"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Request:
    action: str
    request_id: str
    data: dict[str, Any]


def parse_request(body: str | None) -> Request:
    if body is None or body == "":
        raise ProtocolError("malformed_json", "message body is empty; send a JSON object")
    try:
        message = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError("malformed_json", f"message is not valid JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise ProtocolError("malformed_json", "message must be a JSON object")
    if not is_valid_unicode(message):
        # JSON's \\ud800 escapes decode to lone surrogates, which no store or peer can encode.
        raise ProtocolError(
            "invalid_input", "message holds a string that is not valid Unicode (a lone surrogate)"
        )
    action = message.get("action")
    if not isinstance(action, str):
        raise ProtocolError("unknown_action", "message needs a string field 'action'")
    if action not in ACTIONS:
        raise ProtocolError("unknown_action", f"unknown action {action[:40]!r}")
    request_id = message.get("id")
    if not isinstance(request_id, str) or not _REQUEST_ID.fullmatch(request_id):
        raise ProtocolError(
            "invalid_request_id", "field 'id' must be a string of 1 to 64 [A-Za-z0-9_.:-]"
        )
    data = message.get("data", {})
    if not isinstance(data, dict):
        raise ProtocolError("invalid_input", "field 'data' must be an object")
    extra = set(message) - {"action", "id", "data"}
    if extra:
        raise ProtocolError("invalid_input", f"unexpected top-level fields: {sorted(extra)}")
    return Request(action=action, request_id=request_id, data=data)


def is_valid_unicode(value: Any) -> bool:
    """True when every string in `value` (keys too, at any depth) is made of Unicode scalar
    values. Encoding the whole document once is the cheapest complete check, and json.loads
    already bounded its depth."""
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


def peek_request(body: str | None) -> tuple[str | None, str | None]:
    """Best-effort action and id of a message that failed to parse, for the error reply."""
    try:
        message = json.loads(body or "")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(message, dict):
        return None, None
    action, rid = message.get("action"), message.get("id")
    return (
        action[:40] if isinstance(action, str) else None,
        rid if isinstance(rid, str) and _REQUEST_ID.fullmatch(rid) else None,
    )


# -- field checks used by the actions ---------------------------------------------------------


def only_fields(data: dict[str, Any], *allowed: str) -> None:
    extra = set(data) - set(allowed)
    if extra:
        raise InvalidInput(f"unexpected fields in data: {sorted(extra)}")


def require_bool(data: dict[str, Any], name: str) -> bool:
    value = data.get(name)
    if not isinstance(value, bool):
        raise InvalidInput(f"data.{name} must be true or false")
    return value


def require_text(data: dict[str, Any], name: str, max_length: int) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidInput(f"data.{name} must be a string")
    value = value.strip()
    if not 1 <= len(value) <= max_length:
        raise InvalidInput(f"data.{name} must be 1 to {max_length} characters")
    return value


MAX_SDP_CHARS = 64 * 1024


def require_sdp(data: dict[str, Any], name: str = "sdp") -> str:
    """An SDP blob, kept byte for byte (no trimming: line endings matter)."""
    value = data.get(name)
    if not isinstance(value, str) or not value.startswith("v=0"):
        raise InvalidInput(f"data.{name} must be an SDP description starting with v=0")
    if len(value) > MAX_SDP_CHARS:
        raise InvalidInput(f"data.{name} must be at most {MAX_SDP_CHARS} characters")
    return value


def optional_participant(data: dict[str, Any], name: str = "participant_id") -> str | None:
    value = data.get(name)
    if value is None:
        return None
    return require_participant(data, name)


def is_participant_id(value: object) -> bool:
    return isinstance(value, str) and _PARTICIPANT_ID.fullmatch(value) is not None


def require_participant(data: dict[str, Any], name: str = "participant_id") -> str:
    value = data.get(name)
    if not isinstance(value, str) or not is_participant_id(value):
        raise InvalidInput(f"data.{name} must be a participant id")
    return value


_ITEM_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def require_item_id(data: dict[str, Any], name: str) -> str:
    """The id of a poll, question or other item of the meeting."""
    value = data.get(name)
    if not isinstance(value, str) or not _ITEM_ID.fullmatch(value):
        raise InvalidInput(f"data.{name} must be an id of 1 to 64 [A-Za-z0-9_-]")
    return value


def optional_bool(data: dict[str, Any], name: str, default: bool) -> bool:
    if name not in data:
        return default
    return require_bool(data, name)


def optional_text(data: dict[str, Any], name: str, max_length: int) -> str | None:
    """A string of at most `max_length` characters; absent, null or blank means none."""
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"data.{name} must be a string")
    value = value.strip()
    if len(value) > max_length:
        raise InvalidInput(f"data.{name} must be at most {max_length} characters")
    return value or None


def require_number(data: dict[str, Any], name: str, low: float, high: float) -> float:
    value = data.get(name)
    # bool is an int in Python; true is not a width.
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidInput(f"data.{name} must be a number from {low:g} to {high:g}")
    return float(value)


def require_list(data: dict[str, Any], name: str, low: int, high: int) -> list[Any]:
    value = data.get(name)
    if not isinstance(value, list) or not low <= len(value) <= high:
        raise InvalidInput(f"data.{name} must be a list of {low} to {high} items")
    return value


def reply(request: Request, data: dict[str, Any] | None = None) -> str:
    return dumps(
        {
            "type": "reply",
            "id": request.request_id,
            "action": request.action,
            "ok": True,
            "data": data or {},
        }
    )


def error(action: str | None, request_id: str | None, code: str, message: str) -> str:
    return dumps(
        {
            "type": "error",
            "id": request_id,
            "action": action,
            "error": {"code": code, "message": message},
        }
    )


def event(
    meeting_id: str, seq: int, name: str, data: dict[str, Any], event_id: str | None = None
) -> str:
    """An event message. `event_id` (unique in the session) lets clients drop a repeat; the
    outbox's events carry one, a message posted directly to one connection does not."""
    message = {"type": "event", "event": name, "seq": seq, "meeting_id": meeting_id, "data": data}
    if event_id is not None:
        message["event_id"] = event_id
    return dumps(message)


def outbox_message(outbox_event: OutboxEvent) -> str:
    """What clients receive for an event of the outbox."""
    e = outbox_event
    return event(e.meeting_id, e.seq, e.type, e.payload, e.event_id)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)
