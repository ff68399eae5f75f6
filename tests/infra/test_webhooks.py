"""Webhook infrastructure: the delivery queue and its dead-letter queue (encrypted, TLS only),
the sender's SQS event source mapping, least privilege on the queues, an alarm on dead
letters, and never the twin's settings (loopback receivers, the fast retry clock)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from townhall import functions

from .conftest import Synth
from .helpers import actions, as_list, mentions, policy_statements

pytestmark = pytest.mark.infra

QUEUE = functions.WEBHOOK_DELIVERIES
SQS_ACTIONS_OF_CONSUMER = {
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
}


def _queue_ids(synth: Synth) -> tuple[str, str]:
    api = synth.stacks.api
    return (
        synth.logical_id(api.queues[QUEUE.logical_id]),
        synth.logical_id(api.dead_letter_queues[QUEUE.logical_id]),
    )


def _resources(synth: Synth) -> dict[str, Any]:
    resources: dict[str, Any] = synth.template(synth.stacks.api)["Resources"]
    return resources


def _statements(synth: Synth, spec: functions.FunctionSpec) -> list[dict[str, Any]]:
    api = synth.stacks.api
    fn = _resources(synth)[synth.logical_id(api.functions[spec.logical_id])]
    return policy_statements(synth.template(api), fn["Properties"]["Role"]["Fn::GetAtt"][0])


def test_queues_are_encrypted_tls_only_and_redrive(synth: Synth) -> None:
    queue_id, dead_id = _queue_ids(synth)
    resources = _resources(synth)
    queue = resources[queue_id]["Properties"]
    dead = resources[dead_id]["Properties"]
    for props in (queue, dead):
        assert props["SqsManagedSseEnabled"] is True
    assert queue["VisibilityTimeout"] == QUEUE.visibility_timeout_seconds
    # At least six times the sender's timeout, as AWS advises for SQS event sources.
    assert QUEUE.visibility_timeout_seconds >= 6 * functions.WEBHOOK_SENDER.timeout_seconds
    assert queue["MessageRetentionPeriod"] == QUEUE.retention_days * 86400
    assert dead["MessageRetentionPeriod"] == QUEUE.dead_letter_retention_days * 86400
    redrive = queue["RedrivePolicy"]
    assert redrive["maxReceiveCount"] == QUEUE.max_receive_count
    assert mentions(redrive["deadLetterTargetArn"], dead_id)
    policies = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::SQS::QueuePolicy"]
    for logical_id in (queue_id, dead_id):
        (policy,) = [p for p in policies if mentions(p["Queues"], logical_id)]
        (statement,) = policy["PolicyDocument"]["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_sender_mapping(synth: Synth) -> None:
    api = synth.stacks.api
    source = functions.WEBHOOK_SENDING
    queue_id, _ = _queue_ids(synth)
    (props,) = [
        r["Properties"]
        for r in synth.resources(api, "AWS::Lambda::EventSourceMapping").values()
        if mentions(r["Properties"]["EventSourceArn"], queue_id)
    ]
    assert mentions(
        props["FunctionName"], synth.logical_id(api.functions[source.function.logical_id])
    )
    assert props["BatchSize"] == source.batch_size
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {"MaximumConcurrency": source.max_concurrency}


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_queue_rights_are_exactly_what_each_function_declares(
    synth: Synth, spec: functions.FunctionSpec
) -> None:
    queue_id, dead_id = _queue_ids(synth)
    ours = [
        s
        for s in _statements(synth, spec)
        if mentions(s["Resource"], queue_id) or mentions(s["Resource"], dead_id)
    ]
    sends = [s for s in ours if actions(s) == {"sqs:SendMessage"}]
    consumes = [s for s in ours if actions(s) == SQS_ACTIONS_OF_CONSUMER]
    assert len(sends) + len(consumes) == len(ours), ours  # no other action on these queues
    if QUEUE in spec.sends_to:
        targets = json.dumps([as_list(s["Resource"]) for s in sends])
        assert queue_id in targets and dead_id in targets
    else:
        assert sends == []
    if spec == functions.WEBHOOK_SENDER:
        (consume,) = consumes
        (resource,) = as_list(consume["Resource"])
        assert mentions(resource, queue_id) and not mentions(resource, dead_id)
    else:
        assert consumes == []


def test_queue_urls_reach_the_functions_that_send(synth: Synth) -> None:
    api = synth.stacks.api
    for spec in functions.ALL_FUNCTIONS:
        fn = _resources(synth)[synth.logical_id(api.functions[spec.logical_id])]
        variables = fn["Properties"].get("Environment", {}).get("Variables", {})
        has = QUEUE.env_var in variables and QUEUE.dead_letter_env_var in variables
        assert has == (QUEUE in spec.sends_to), spec.logical_id


def test_no_function_ever_gets_the_twins_webhook_settings(synth: Synth) -> None:
    """Loopback receivers and the fast retry clock are the twin's alone: a deployed sender
    that had them could be pointed at the Lambda runtime API or retry in a burst."""
    for stack in (synth.stacks.api, synth.stacks.data, synth.stacks.observability):
        text = json.dumps(synth.template(stack))
        for name in functions.TWIN_ONLY_ENV:
            assert name not in text, (stack.stack_name, name)


def test_an_alarm_when_deliveries_reach_the_dead_letter_queue(synth: Synth) -> None:
    _, dead_id = _queue_ids(synth)
    obs = synth.template(synth.stacks.observability)
    alarms = [
        r["Properties"]
        for r in obs["Resources"].values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and mentions(r["Properties"].get("Dimensions"), dead_id)
    ]
    (alarm,) = alarms
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["Threshold"] == 1
