import json
import re
from pathlib import Path

import pytest

from townhall import routes
from townhall.errors import DomainError, Forbidden, InvalidInput
from townhall.signaling import permissions, protocol
from townhall.signaling.protocol import ProtocolError


def test_valid_request_parses() -> None:
    r = protocol.parse_request('{"action":"chat","id":"r-1","data":{"text":"hi"}}')
    assert (r.action, r.request_id, r.data) == ("chat", "r-1", {"text": "hi"})


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", "malformed_json"),
        ("{not json", "malformed_json"),
        ("[1,2]", "malformed_json"),
        ('{"id":"r1"}', "unknown_action"),
        ('{"action":"launch_missiles","id":"r1"}', "unknown_action"),
        ('{"action":5,"id":"r1"}', "unknown_action"),
        ('{"action":"chat"}', "invalid_request_id"),
        ('{"action":"chat","id":"bad id with spaces"}', "invalid_request_id"),
        ('{"action":"chat","id":"r1","data":[]}', "invalid_input"),
        ('{"action":"chat","id":"r1","extra":1}', "invalid_input"),
        ("[" * 100000 + "]" * 100000, "malformed_json"),
        ('{"action":"chat","id":"r1\\n"}', "invalid_request_id"),
        ('{"action":"chat","id":"r1","data":{"text":"\\ud800"}}', "invalid_input"),
        ('{"action":"chat","id":"r1","data":{"\\udfff":"x"}}', "invalid_input"),
        ('{"action":"poll_create","id":"r1","data":{"options":[["\\ud83d"]]}}', "invalid_input"),
    ],
)
def test_bad_envelopes_get_a_specific_code(body: str, code: str) -> None:
    with pytest.raises(ProtocolError) as info:
        protocol.parse_request(body)
    assert info.value.code == code
    assert info.value.message


def test_error_reply_shape() -> None:
    message = json.loads(protocol.error("chat", "r1", "invalid_input", "text is empty"))
    assert message == {
        "type": "error",
        "id": "r1",
        "action": "chat",
        "error": {"code": "invalid_input", "message": "text is empty"},
    }


@pytest.mark.parametrize(
    "action", sorted(permissions.MODERATOR_ACTIONS | permissions.HOST_ONLY_ACTIONS)
)
def test_attendees_may_not_moderate(action: str) -> None:
    with pytest.raises(Forbidden):
        permissions.check_action("attendee", action)
    permissions.check_action("host", action)


def test_cohost_limits() -> None:
    permissions.check_action("cohost", "remove")
    for action in permissions.HOST_ONLY_ACTIONS:
        with pytest.raises(Forbidden):
            permissions.check_action("cohost", action)
    with pytest.raises(Forbidden):
        permissions.check_acts_on("cohost", "host", "remove")
    with pytest.raises(Forbidden):
        permissions.check_acts_on("cohost", "cohost", "remove")
    permissions.check_acts_on("cohost", "attendee", "remove")


def test_webinar_attendees_are_view_only() -> None:
    assert not permissions.may_publish("attendee", "webinar")
    assert permissions.may_publish("panelist", "webinar")
    assert permissions.may_publish("attendee", "meeting")


@pytest.mark.parametrize("value", ["p1\n", "p1\r\n", " p1", "p1 ", "p\u00e91"])
def test_ids_match_whole_strings_only(value: str) -> None:
    # `$` also matches before a trailing newline: every id check must match the whole string.
    with pytest.raises(InvalidInput):
        protocol.require_participant({"participant_id": value})
    with pytest.raises(InvalidInput):
        protocol.require_item_id({"poll_id": value}, "poll_id")


def test_every_error_code_is_documented() -> None:
    import townhall.media.node_client
    import townhall.signaling.service  # imports every error class signaling raises

    def codes(cls: type[DomainError]) -> set[str]:
        # The HTTP API's own errors (townhall.api) never reach a WebSocket client.
        found = set() if cls.__module__.startswith("townhall.api") else {cls.code}
        for sub in cls.__subclasses__():
            found |= codes(sub)
        return found

    documented = (Path(__file__).parents[2] / "docs" / "signaling.md").read_text()
    protocol_codes = set(
        re.findall(r'ProtocolError\(\s*"([a-z_]+)"', Path(protocol.__file__).read_text())
    )
    # DomainError itself is abstract (never raised): its subclasses' codes are the wire's.
    everything = (codes(DomainError) - {DomainError.code}) | protocol_codes
    missing = sorted(c for c in everything if f"`{c}`" not in documented)
    assert missing == [], "error codes missing from docs/signaling.md"
    assert townhall.media.node_client.MediaNodeUnavailable.code in everything


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("townhall, abc.def.ghi", "abc.def.ghi"),
        ("townhall,abc", "abc"),
        ("townhall", None),
        ("", None),
        (None, None),
        ("other, abc", None),
        ("townhall, abc, extra", None),
        ("townhall, ", None),
    ],
)
def test_the_join_token_is_read_from_the_subprotocols(
    header: str | None, token: str | None
) -> None:
    assert routes.token_from_subprotocols(header) == token
