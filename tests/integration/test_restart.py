"""The twin keeps a user's state across a restart: accounts, meetings and the signing key."""

from __future__ import annotations

import asyncio
from pathlib import Path

from infra.twin.server import LocalTwin
from tests.integration.client import Api


async def test_accounts_meetings_and_tokens_survive_a_restart(tmp_path: Path) -> None:
    first = await asyncio.to_thread(LocalTwin.start, tmp_path)
    try:
        api = Api(first.base_url)
        session = await api.sign_up("keep@example.com", "Keeper")
        meeting = await api.create_meeting(title="Survives", rrule="FREQ=WEEKLY;COUNT=4")
        await api.close()
    finally:
        await asyncio.to_thread(first.stop)

    second = await asyncio.to_thread(LocalTwin.start, tmp_path)
    try:
        api = Api(second.base_url)
        api.token = session["access_token"]  # signed before the restart: same key after it
        listed = (await api.get("/api/meetings")).json()
        assert [m["meeting_id"] for m in listed] == [meeting["meeting_id"]]
        signin = await api.post(
            "/api/auth/signin", {"email": "keep@example.com", "password": "correct horse 1"}
        )
        assert signin.status_code == 200
        refreshed = await api.post("/api/auth/refresh", {"refresh_token": session["refresh_token"]})
        assert refreshed.status_code == 200
        await api.close()
    finally:
        await asyncio.to_thread(second.stop)
