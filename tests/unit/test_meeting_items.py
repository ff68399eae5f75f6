"""A stored meeting item is read attribute by attribute (store/meetings.py): a good one reads
back as it was written, a damaged one never raises and names what could not be read; and the
co-host list a host sends is checked before anything is written (meetings/service.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from townhall.auth.claims import AccessClaims
from townhall.errors import Conflict, InvalidInput
from townhall.meetings.joining import host_side
from townhall.meetings.service import MeetingDraft, MeetingService, usable
from townhall.model.meeting import Meeting
from townhall.model.schedule import Schedule
from townhall.store.meetings import UNREADABLE, MeetingStore, meeting_from_item, meeting_item
from townhall.store.sessions import SessionStore

HOST = AccessClaims(user_id="u_host", email="host@example.com", name="Hana", expires_at=0)


def _meeting(**fields: Any) -> Meeting:
    values: dict[str, Any] = {
        "meeting_id": "m_1",
        "host_id": "u_host",
        "title": "Standup",
        "kind": "webinar",
        "schedule": Schedule.parse("2027-01-04T09:00", "Europe/Paris", 30, "FREQ=WEEKLY"),
        "passcode": "2468",
        "waiting_room": True,
        "created_at": 1_800_000_000,
        "updated_at": 1_800_000_100,
        "video_slots": 16,
        "allow_before_host": False,
        "cohosts": ("ana@example.com", "raj@example.com"),
        "live_session_id": "s_1",
        "last_session_at": 1_800_000_000_000,
        **fields,
    }
    return Meeting(**values)


def _stored(meeting: Meeting) -> dict[str, Any]:
    # As the store reads it back: None values are not written.
    return {k: v for k, v in meeting_item(meeting).items() if v is not None}


def test_a_good_item_reads_back_as_written() -> None:
    meeting = _meeting()
    assert meeting_from_item(_stored(meeting)) == meeting
    plain = _meeting(passcode=None, cohosts=(), live_session_id=None, kind="meeting")
    assert meeting_from_item(_stored(plain)) == plain


def test_an_item_from_before_cohosts_and_slots_is_not_damaged() -> None:
    item = _stored(_meeting())
    for later in ("cohosts", "video_slots", "allow_before_host", "last_session_at", "kind"):
        del item[later]
    read = meeting_from_item(item)
    assert read.damaged == () and read.cohosts == () and read.video_slots == 9


@pytest.mark.parametrize(
    ("changes", "damaged"),
    [
        ({"title": 42}, ("title",)),
        ({"title": None}, ("title",)),
        ({"host_id": ["u"]}, ("host_id",)),
        ({"created_at": "yesterday"}, ("created_at",)),
        ({"updated_at": 1.5}, ("updated_at",)),
        ({"updated_at": None}, ("updated_at",)),
        ({"video_slots": 0}, ("video_slots",)),
        ({"video_slots": 26}, ("video_slots",)),
        ({"video_slots": True}, ("video_slots",)),
        ({"kind": "party"}, ("kind",)),
        ({"waiting_room": "yes", "allow_before_host": 1}, ("waiting_room", "allow_before_host")),
        ({"passcode": 2468}, ("passcode",)),
        ({"cohosts": "a@example.com"}, ("cohosts",)),
        ({"cohosts": [f"p{i}@example.com" for i in range(11)]}, ("cohosts",)),
        ({"cohosts": ["a@example.com", 7]}, ("cohosts",)),
        ({"live_session_id": 7, "last_session_at": -1}, ("live_session_id", "last_session_at")),
        ({"meeting_id": "m_2"}, ("meeting_id",)),
    ],
)
def test_a_damaged_attribute_is_named_and_defaulted(
    changes: dict[str, Any], damaged: tuple[str, ...]
) -> None:
    item = _stored(_meeting())
    for name, value in changes.items():
        if value is None:
            del item[name]
        else:
            item[name] = value
    read = meeting_from_item(item)
    assert read.damaged == damaged
    assert read.damage is not None and all(name in read.damage for name in damaged)
    assert read.meeting_id == "m_1"  # from the key, whatever the attribute says
    if "updated_at" in damaged:
        assert read.updated_at == UNREADABLE
    with pytest.raises(Conflict, match="edit or delete"):
        usable(read)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(sorted(_stored(_meeting()))), json_values))
def test_any_item_reads_without_raising(changes: dict[str, Any]) -> None:
    item = {**_stored(_meeting()), **changes}
    read = meeting_from_item(item)
    assert isinstance(read.title, str) and isinstance(read.created_at, int)
    assert read.kind in ("meeting", "webinar") and 1 <= read.video_slots <= 25
    assert all(isinstance(e, str) for e in read.cohosts)
    _ = read.schedule.problem  # never raises either


class _Store(MeetingStore):
    """Keeps what would be written."""

    def __init__(self) -> None:
        super().__init__("meetings")
        self.created: list[Meeting] = []

    def create_meeting(self, meeting: Meeting) -> None:
        self.created.append(meeting)


def _draft(cohosts: Any) -> MeetingDraft:
    return MeetingDraft(
        title="T", start="2027-01-04T09:00", timezone="UTC", duration_minutes=30, cohosts=cohosts
    )


def test_the_cohost_list_is_normalized_deduplicated_and_bounded() -> None:
    store = _Store()
    service = MeetingService(store, SessionStore("meetings"))
    made = service.create(HOST, _draft([" Ana@Example.com", "ana@example.com", "raj@example.com"]))
    assert made.cohosts == ("ana@example.com", "raj@example.com")
    assert service.create(HOST, _draft([f"p{i}@example.com" for i in range(10)])).cohosts
    for bad, message in (
        ([f"p{i}@example.com" for i in range(11)], "at most 10"),
        (["nope"], r"cohosts\[0\]"),
        (["a@example.com", "b@\u200bexample.com"], r"cohosts\[1\]"),
        (["HOST@example.com"], "your own"),
        ("a@example.com", "a list"),
        ([7], r"cohosts\[0\]"),
    ):
        with pytest.raises(InvalidInput, match=message):
            service.create(HOST, _draft(bad))
    assert len(store.created) == 2  # nothing written for a refused list


def _claims(user_id: str, email: str) -> AccessClaims:
    return AccessClaims(user_id=user_id, email=email, name="N", expires_at=0)


def test_who_is_on_the_host_side() -> None:
    meeting = _meeting()
    assert host_side(meeting, HOST) == "host"
    assert host_side(meeting, _claims("u_ana", "ANA@example.com")) == "cohost"
    assert host_side(meeting, _claims("u_x", "x@example.com")) is None
    assert host_side(meeting, None) is None
