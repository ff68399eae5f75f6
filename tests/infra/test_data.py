"""Data stack: one TableV2 per townhall.schema table, keys, and the signing secret."""

from __future__ import annotations

import pytest

from townhall import schema

from .conftest import Synth

pytestmark = pytest.mark.infra


def test_one_table_per_spec(synth: Synth) -> None:
    tables = synth.resources(synth.stacks.data, "AWS::DynamoDB::GlobalTable")
    assert len(tables) == len(schema.ALL_TABLES)
    assert set(synth.stacks.data.tables) == {spec.logical_id for spec in schema.ALL_TABLES}


@pytest.mark.parametrize("spec", schema.ALL_TABLES, ids=lambda s: s.logical_id)
def test_table_matches_spec(synth: Synth, spec: schema.TableSpec) -> None:
    data = synth.stacks.data
    logical_id = synth.logical_id(data.table(spec))
    resource = synth.template(data)["Resources"][logical_id]
    props = resource["Properties"]

    assert resource["DeletionPolicy"] == "Retain"
    assert resource["UpdateReplacePolicy"] == "Retain"
    assert props["BillingMode"] == "PAY_PER_REQUEST"

    key_schema = [{"AttributeName": spec.partition_key.name, "KeyType": "HASH"}]
    if spec.sort_key:
        key_schema.append({"AttributeName": spec.sort_key.name, "KeyType": "RANGE"})
    assert props["KeySchema"] == key_schema

    assert props["SSESpecification"] == {"SSEEnabled": True, "SSEType": "KMS"}
    (replica,) = props["Replicas"]
    assert replica["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert replica["DeletionProtectionEnabled"] is True
    data_key = synth.logical_id(data.data_key)
    assert replica["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": [data_key, "Arn"]}

    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {
            "AttributeName": spec.ttl_attribute,
            "Enabled": True,
        }
    if spec.stream_view:
        assert props["StreamSpecification"] == {"StreamViewType": spec.stream_view}
    else:
        assert "StreamSpecification" not in props
    indexes = {gsi["IndexName"]: gsi for gsi in props.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {index.name for index in spec.indexes}
    for index in spec.indexes:
        expected = [{"AttributeName": index.partition_key.name, "KeyType": "HASH"}]
        if index.sort_key:
            expected.append({"AttributeName": index.sort_key.name, "KeyType": "RANGE"})
        assert indexes[index.name]["KeySchema"] == expected


def test_keys_rotate_and_are_retained(synth: Synth) -> None:
    keys = synth.resources(synth.stacks.data, "AWS::KMS::Key")
    assert len(keys) == 2
    for key in keys.values():
        assert key["Properties"]["EnableKeyRotation"] is True
        assert key["DeletionPolicy"] == "Retain"


def test_logs_key_admits_cloudwatch_logs_of_this_account_only(synth: Synth) -> None:
    data = synth.stacks.data
    key = synth.template(data)["Resources"][synth.logical_id(data.logs_key)]
    (statement,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AllowCloudWatchLogsForThisAccount"
    ]
    assert "kms:EncryptionContext:aws:logs:arn" in statement["Condition"]["ArnLike"]


def test_signing_secret(synth: Synth) -> None:
    data = synth.stacks.data
    secret = synth.template(data)["Resources"][synth.logical_id(data.signing_secret)]
    generate = secret["Properties"]["GenerateSecretString"]
    assert generate["PasswordLength"] == 64
    assert generate["ExcludePunctuation"] is True
    assert secret["Properties"]["KmsKeyId"] == {
        "Fn::GetAtt": [synth.logical_id(data.data_key), "Arn"]
    }
    assert secret["DeletionPolicy"] == "Retain"
    assert "RotationSchedule" not in str(synth.template(data))  # rotation is a runbook


def test_data_stack_is_termination_protected(synth: Synth) -> None:
    assert synth.stacks.data.termination_protection is True
