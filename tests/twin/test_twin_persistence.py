"""State that must survive the twin: tables are back after a stop and a fresh start."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from infra.twin import LocalTwin
from tests.twin.helpers import sample_options


def test_items_are_back_after_a_restart(tmp_path: Path) -> None:
    with LocalTwin.start(tmp_path, options=sample_options()) as first:
        meetings = first.table_names["MEETINGS_TABLE"]
        first.dynamodb_client().put_item(
            TableName=meetings,
            Item={"pk": {"S": "meeting#direct"}, "sk": {"S": "meta"}, "title": {"S": "Planning"}},
        )
        # And one written by a handler, through the environment the twin gave it.
        assert httpx.post(f"{first.base_url}/api/put-meeting", timeout=10).status_code == 204

    assert (tmp_path / "dynamodb" / f"{meetings}.json").exists()
    assert (tmp_path / "keys").is_dir()

    with LocalTwin.start(tmp_path, options=sample_options()) as second:
        items = second.dynamodb_client().scan(TableName=meetings)["Items"]
        # Beside them, the layout version the twin's first start recorded (store.migrations).
        assert {i["pk"]["S"] for i in items} == {"meeting#direct", "meeting#http", "SCHEMA"}
        direct = next(i for i in items if i["pk"]["S"] == "meeting#direct")
        assert direct["title"] == {"S": "Planning"}


def test_the_environment_is_put_back_after_stop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEETINGS_TABLE", "before-the-twin")
    monkeypatch.delenv("WS_MANAGEMENT_ENDPOINT", raising=False)
    with LocalTwin.start(tmp_path, options=sample_options()) as twin:
        assert os.environ["MEETINGS_TABLE"] == "townhall-meetings"
        assert os.environ["WS_MANAGEMENT_ENDPOINT"] == f"{twin.base_url}/ws"
        assert os.environ["AWS_ENDPOINT_URL_DYNAMODB"] == twin.dynamodb_endpoint
        assert os.environ["SIGNING_KEY_FILE"] == str(tmp_path / "keys" / "signing.pem")
    assert os.environ["MEETINGS_TABLE"] == "before-the-twin"
    assert "WS_MANAGEMENT_ENDPOINT" not in os.environ
