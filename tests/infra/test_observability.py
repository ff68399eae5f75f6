"""Observability stack: alarms with an encrypted, SSL-only topic, and the dashboard."""

from __future__ import annotations

import json
from typing import Any

import pytest

from townhall import functions, schema

from .conftest import Synth
from .helpers import mentions

pytestmark = pytest.mark.infra


def _alarms(synth: Synth) -> list[dict[str, Any]]:
    return [
        a["Properties"]
        for a in synth.resources(synth.stacks.observability, "AWS::CloudWatch::Alarm").values()
    ]


def _metric_names(alarm: dict[str, Any]) -> set[str]:
    names = {alarm["MetricName"]} if "MetricName" in alarm else set()
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            names.add(query["MetricStat"]["Metric"]["MetricName"])
    return names


def test_every_alarm_notifies_the_topic(synth: Synth) -> None:
    topic = synth.logical_id(synth.stacks.observability.alarm_topic)
    alarms = _alarms(synth)
    assert alarms
    for alarm in alarms:
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        assert alarm["OKActions"] == [{"Ref": topic}]


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_lambda_error_and_throttle_alarms(synth: Synth, spec: functions.FunctionSpec) -> None:
    fn_id = synth.logical_id(synth.stacks.api.functions[spec.logical_id])
    mine = [a for a in _alarms(synth) if mentions(a.get("Dimensions"), fn_id)]
    assert {m for a in mine for m in _metric_names(a)} == {"Errors", "Throttles"}


def test_api_alarms(synth: Synth) -> None:
    http_id = synth.logical_id(synth.stacks.api.http_api)
    ws_id = synth.logical_id(synth.stacks.api.ws_api)
    names = [
        (a, _metric_names(a)) for a in _alarms(synth) if mentions(a, http_id) or mentions(a, ws_id)
    ]
    assert any("5xx" in n and mentions(a, http_id) for a, n in names)
    assert any({"IntegrationError", "ExecutionError"} <= n for _, n in names)


@pytest.mark.parametrize("spec", schema.ALL_TABLES, ids=lambda s: s.logical_id)
def test_dynamodb_throttle_alarms(synth: Synth, spec: schema.TableSpec) -> None:
    table_id = synth.logical_id(synth.stacks.data.table(spec))
    mine = [a for a in _alarms(synth) if mentions(a.get("Metrics"), table_id)]
    assert len(mine) == 1
    assert _metric_names(mine[0]) == {"ReadThrottleEvents", "WriteThrottleEvents"}


@pytest.mark.parametrize("source", functions.ALL_STREAM_SOURCES, ids=lambda s: s.logical_id)
def test_an_alarm_when_a_stream_source_gives_up_on_records(
    synth: Synth, source: functions.StreamSourceSpec
) -> None:
    queue = synth.stacks.api.stream_failures[source.logical_id]
    mine = [a for a in _alarms(synth) if mentions(a.get("Dimensions"), synth.logical_id(queue))]
    assert len(mine) == 1
    assert _metric_names(mine[0]) == {"ApproximateNumberOfMessagesVisible"}
    assert mine[0]["Threshold"] == 1


def test_topic_is_encrypted_and_ssl_only(synth: Synth) -> None:
    obs = synth.stacks.observability
    topic = synth.template(obs)["Resources"][synth.logical_id(obs.alarm_topic)]["Properties"]
    assert "KmsMasterKeyId" in topic
    (policy,) = synth.resources(obs, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    (key,) = synth.resources(obs, "AWS::KMS::Key").values()
    principals = json.dumps(key["Properties"]["KeyPolicy"])
    assert "cloudwatch.amazonaws.com" in principals


def test_an_alarm_when_a_turn_server_is_unhealthy(synth: Synth) -> None:
    turn = synth.stacks.turn
    target_group = synth.logical_id(turn.turn_targets)
    (alarm,) = [a for a in _alarms(synth) if mentions(a, target_group)]
    assert alarm["MetricName"] == "UnHealthyHostCount"
    assert alarm["Namespace"] == "AWS/NetworkELB" and alarm["Statistic"] == "Maximum"
    assert {d["Name"] for d in alarm["Dimensions"]} == {"LoadBalancer", "TargetGroup"}
    assert alarm["Threshold"] == 1
    assert turn in synth.stacks.observability.dependencies


def test_dashboard_covers_the_system(synth: Synth) -> None:
    (dashboard,) = synth.resources(
        synth.stacks.observability, "AWS::CloudWatch::Dashboard"
    ).values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for metric in (
        "Invocations",
        "Errors",
        "Duration",
        "Throttles",
        "4xx",
        "5xx",
        "ConnectCount",
        "MessageCount",
        "ReadThrottleEvents",
        "NodeLoad",
        "HealthyHostCount",
        "ProcessedBytes",
        "NetworkOut",
    ):
        assert metric in body, metric
