"""Webhook building blocks without AWS: the signature against the Standard Webhooks
specification's published example, URL and address rules (with a resolver under the test's
control, so names resolving to private, metadata and mixed addresses are covered), the retry
schedule and its SQS legs, and which outbox events become which webhook events."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contracts.signaling_events import EventName
from townhall import functions
from townhall.errors import InvalidInput
from townhall.model.event import OutboxEvent
from townhall.model.webhook import EVENT_TYPES
from townhall.webhooks import signing
from townhall.webhooks.destination import DestinationRefused, check_url, checked_addresses
from townhall.webhooks.events import delivery_id, webhook_event
from townhall.webhooks.schedule import MAX_SQS_DELAY_SECONDS, RetrySchedule, first_leg


def test_signature_matches_the_specifications_example() -> None:
    # From the Standard Webhooks specification (and Svix's documentation of it).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = '{"test": 2432232314}'
    got = signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert got == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_rotation_signs_with_every_secret() -> None:
    old, new = signing.new_secret(), signing.new_secret()
    headers = signing.headers([old, new], "msg_x", 1, "{}")
    assert headers["webhook-signature"].split(" ") == [
        signing.signature(old, "msg_x", 1, "{}"),
        signing.signature(new, "msg_x", 1, "{}"),
    ]
    with pytest.raises(ValueError):
        signing.headers([], "msg_x", 1, "{}")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",  # not https
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://[::ffff:192.168.1.1]/",
        "https://100.64.0.1/",  # shared address space
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://a:b@example.com/",
        "https://example.com/#frag",
        "https://exa_mple.com/",
        "https:///nohost",
        "https://example.com:99999/",
        "https://example.com/" + "x" * 1000,
    ],
)
def test_urls_production_refuses(url: str) -> None:
    with pytest.raises(InvalidInput):
        check_url(url, allow_loopback=False)


def test_loopback_only_with_the_twins_setting() -> None:
    assert check_url("http://127.0.0.1:9/x?y=1", allow_loopback=True).path == "/x?y=1"
    with pytest.raises(InvalidInput):
        check_url("https://10.0.0.1/", allow_loopback=True)  # private is never allowed
    assert check_url("https://example.com/hook", allow_loopback=False).port == 443


@pytest.mark.parametrize(
    "answers",
    [
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["93.184.216.34", "192.168.0.1"],  # one bad address refuses them all
        ["::ffff:10.0.0.1"],
        ["fd00:ec2::254"],
        ["127.0.0.1"],
        [],
    ],
)
def test_names_resolving_to_non_public_addresses_are_refused(answers: list[str]) -> None:
    target = check_url("https://hooks.example.com/", allow_loopback=False)
    with pytest.raises(DestinationRefused):
        checked_addresses(target, allow_loopback=False, resolve=lambda _h, _p: answers)


def test_a_public_name_passes_with_every_address() -> None:
    target = check_url("https://hooks.example.com/", allow_loopback=False)
    found = checked_addresses(
        target, False, resolve=lambda _h, _p: ["93.184.216.34", "2606:2800:220:1::1"]
    )
    assert [str(a) for a in found] == ["93.184.216.34", "2606:2800:220:1::1"]


def test_the_schedule_spans_about_a_day_in_legs_sqs_accepts() -> None:
    schedule = RetrySchedule()
    assert schedule.attempts == 8
    total = sum(schedule.wait_after(a) or 0 for a in range(1, schedule.attempts))
    assert 24 * 3600 <= total <= 30 * 3600
    assert schedule.wait_after(schedule.attempts) is None
    wait, legs = 36000.0, []
    while True:
        delay, wait = first_leg(wait)
        legs.append(delay)
        if not wait:
            break
    assert sum(legs) == 36000 and max(legs) == MAX_SQS_DELAY_SECONDS
    assert first_leg(0.4) == (0, 0.0)  # the fast clock: no leg of less than a second
    assert RetrySchedule(time_scale=1e-5).real_seconds(36000) == pytest.approx(0.36)


def _event(name: EventName, payload: dict[str, Any], seq: int = 3) -> OutboxEvent:
    return OutboxEvent("m1", "s1", seq, name.value, payload, at=1_700_000_000_000)


def test_outbox_events_map_to_the_fixed_webhook_types() -> None:
    answered = {"question": {"question_id": "q1", "status": "answered", "created_at": 1}}
    cases: dict[EventName, tuple[dict[str, Any], str]] = {
        EventName.SESSION_STARTED: ({"started_by": "u1"}, "session.started"),
        EventName.MEETING_ENDED: ({"by": "api"}, "session.ended"),
        EventName.PARTICIPANT_JOINED: (
            {"participant": {"participant_id": "p"}},
            "participant.joined",
        ),
        EventName.PARTICIPANT_LEFT: ({"participant_id": "p", "reason": "left"}, "participant.left"),
        EventName.PARTICIPANT_REMOVED: ({"participant_id": "p"}, "participant.left"),
        EventName.POLL_CLOSED: ({"poll": {"poll_id": "x"}}, "poll.closed"),
        EventName.QA_UPDATED: (answered, "question.answered"),
    }
    for name, (payload, expected) in cases.items():
        mapped = webhook_event(_event(name, payload))
        assert mapped is not None and mapped.type == expected
        assert mapped.type in EVENT_TYPES
        assert json.loads(mapped.body())["data"]["seq"] == 3
    # Exactly the names the stream filter lets through are mapped.
    assert set(cases) == set(functions.WEBHOOK_SOURCE_EVENTS)
    assert webhook_event(_event(EventName.CHAT_MESSAGE, {"text": "hi"})) is None
    open_question = {"question": {"question_id": "q1", "status": "open"}}
    assert webhook_event(_event(EventName.QA_UPDATED, open_question)) is None


def test_a_question_is_answered_once_whatever_updates_follow() -> None:
    answered = {"question": {"question_id": "q1", "status": "answered", "created_at": 5}}
    first = webhook_event(_event(EventName.QA_UPDATED, answered, seq=3))
    later = webhook_event(
        OutboxEvent("m1", "s1", 9, EventName.QA_UPDATED.value, answered, at=1_800_000_000_000)
    )
    assert first is not None and later is not None
    assert delivery_id("wh_a", first) == delivery_id("wh_a", later)
    assert delivery_id("wh_a", first) != delivery_id("wh_b", first)
