"""The meeting summary over the real HTTP API after a real meeting over WebSockets: attendance
sessions, the public chat transcript, poll results and Q&A, as JSON and as CSV, host only."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Any

from tests.integration.client import Api, SignalingClient
from tests.integration.conftest import Twin


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def _enter(twin: Twin, grant: dict[str, Any]) -> SignalingClient:
    client = await SignalingClient.enter(twin.ws_url, grant)
    await client.ok("join")
    return client


async def test_summary_after_people_join_talk_vote_and_leave(twin: Twin) -> None:
    host_api = Api(twin.base_url)
    await host_api.sign_up(f"host-{uuid.uuid4().hex[:8]}@example.com", "Hana Host")
    mid = (await host_api.create_meeting(title='Quarterly, "all hands"'))["meeting_id"]
    host = await _enter(twin, await host_api.join(mid, "Hana Host"))
    guest = Api(twin.base_url)
    bob_grant = await guest.join(mid, "Bob")
    bob = await _enter(twin, bob_grant)
    carol = await _enter(twin, await guest.join(mid, "=cmd|' /C calc'!A0"))

    await host.ok("chat", {"text": "Welcome, all"})
    await bob.ok("chat", {"text": 'He said "hi"\nand left'})
    await carol.ok("chat", {"text": "secret", "to": bob.participant_id})
    await carol.ok("chat", {"text": "+SUM(A1:A2)"})
    poll_id = (await host.ok("poll_create", {"question": "Ship it?", "options": ["Yes", "No"]}))[
        "poll_id"
    ]
    await bob.ok("poll_vote", {"poll_id": poll_id, "choices": [0]})
    await carol.ok("poll_vote", {"poll_id": poll_id, "choices": [0]})
    await host.ok("poll_close", {"poll_id": poll_id})
    await bob.ok("qa_ask", {"text": "When?"})

    # Bob leaves and comes back on a new connection (a second session); Carol's socket drops.
    await bob.ok("leave")
    await bob.close()
    await host.wait_event(
        "participant.left", lambda e: e["data"]["participant_id"] == bob_grant["participant_id"]
    )
    rejoin = await guest.post(
        f"/api/meetings/{mid}/rejoin",
        {"participant_id": bob_grant["participant_id"], "resume_token": bob_grant["resume_token"]},
    )
    assert rejoin.status_code == 200, rejoin.text
    bob = await _enter(twin, rejoin.json())
    await carol.close()
    await host.wait_dropped(carol.participant_id)

    # Dee is removed by the host: her interval ends then.
    dee = await _enter(twin, await guest.join(mid, "Dee"))
    await host.ok("remove", {"participant_id": dee.participant_id})
    await dee.closed
    await dee.close()

    # While the session runs, open intervals have no end yet.
    running = (await host_api.get(f"/api/meetings/{mid}/summary")).json()
    assert running["meeting"]["ended_at"] is None
    open_intervals = [
        s for a in running["attendance"] for s in a["intervals"] if s["left_at"] is None
    ]
    assert len(open_intervals) == 2  # the host and Bob's second interval

    await host.ok("end")
    response = await host_api.get(f"/api/meetings/{mid}/summary")
    assert response.status_code == 200, response.text
    summary = response.json()
    meeting = summary["meeting"]
    assert meeting["meeting_id"] == mid and meeting["title"] == 'Quarterly, "all hands"'
    assert meeting["started_at"] and meeting["ended_at"]
    assert _t(meeting["started_at"]) <= _t(meeting["ended_at"])

    people = {a["name"]: a for a in summary["attendance"]}
    assert list(people) == ["Hana Host", "Bob", "=cmd|' /C calc'!A0", "Dee"]  # by arrival
    assert people["Hana Host"]["role"] == "host"
    assert [len(a["intervals"]) for a in people.values()] == [1, 2, 1, 1]
    for a in people.values():
        for s in a["intervals"]:
            assert s["left_at"] is not None, a  # every interval ended by the end at the latest
            assert _t(meeting["started_at"]) <= _t(s["joined_at"]) <= _t(s["left_at"])
            assert _t(s["left_at"]) <= _t(meeting["ended_at"])
        assert a["total_seconds"] >= 0
    first, second = people["Bob"]["intervals"]
    assert _t(first["left_at"]) <= _t(second["joined_at"])
    assert people["Hana Host"]["intervals"][0]["left_at"] == meeting["ended_at"]
    removed = next(s for s in running["attendance"] if s["name"] == "Dee")["intervals"][0]
    assert removed["left_at"] is not None  # closed by the removal, before the end

    assert [(m["from_name"], m["text"]) for m in summary["chat"]] == [
        ("Hana Host", "Welcome, all"),
        ("Bob", 'He said "hi"\nand left'),
        ("=cmd|' /C calc'!A0", "+SUM(A1:A2)"),
    ]
    assert summary["polls"] == [
        {
            "question": "Ship it?",
            "options": ["Yes", "No"],
            "counts": [2, 0],
            "voters": 2,
            "status": "closed",
            "multiple": False,
        }
    ]
    assert [(q["text"], q["asked_by_name"]) for q in summary["questions"]] == [("When?", "Bob")]

    # CSV: proper quoting, and no cell a spreadsheet would run as a formula.
    response = await host_api.get(f"/api/meetings/{mid}/summary.csv?part=chat")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        f'attachment; filename="townhall-{mid}-chat.csv"'
    )
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == ["at", "from_name", "text"]
    assert [r[1:] for r in rows[1:]] == [
        ["Hana Host", "Welcome, all"],
        ["Bob", 'He said "hi"\nand left'],
        ["'=cmd|' /C calc'!A0", "'+SUM(A1:A2)"],
    ]
    rows = list(
        csv.reader(
            io.StringIO(
                (await host_api.get(f"/api/meetings/{mid}/summary.csv?part=attendance")).text
            )
        )
    )
    assert rows[0][:3] == ["name", "role", "participant_id"]
    assert [r[0] for r in rows[1:]] == ["Hana Host", "Bob", "Bob", "'=cmd|' /C calc'!A0", "Dee"]
    rows = list(
        csv.reader(
            io.StringIO((await host_api.get(f"/api/meetings/{mid}/summary.csv?part=polls")).text)
        )
    )
    assert rows == [
        ["poll", "status", "voters", "option", "votes"],
        ["Ship it?", "closed", "2", "Yes", "2"],
        ["Ship it?", "closed", "2", "No", "0"],
    ]
    bad = await host_api.get(f"/api/meetings/{mid}/summary.csv?part=secrets")
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"

    # Nobody but the host: another account, a guest, a forged token.
    other = Api(twin.base_url)
    await other.sign_up(f"other-{uuid.uuid4().hex[:8]}@example.com", "Olga")
    for path in (f"/api/meetings/{mid}/summary", f"/api/meetings/{mid}/summary.csv?part=chat"):
        assert (await other.get(path)).status_code == 404
        assert (await guest.get(path)).status_code == 401
    assert (await host_api.get("/api/meetings/nosuchmeet/summary")).status_code == 404
    for api in (host_api, guest, other):
        await api.close()
    await host.close()
    await bob.close()
