"""Least-privilege DynamoDB grants, written out instead of ``TableV2.grant_*_data``.

The CDK grants add ``<table>/index/*`` and the KMS wildcards ``kms:ReEncrypt*`` and
``kms:GenerateDataKey*``. These name each index the caller may query, spell the KMS actions
out, and allow the key only when DynamoDB itself calls KMS (``kms:ViaService``), so the
role cannot use the data key directly.
"""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms

from . import config  # noqa: F401  (puts functions/ on sys.path)

from townhall import functions, schema  # isort: skip

DDB_READ = (
    "dynamodb:BatchGetItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "dynamodb:Scan",
)
DDB_WRITE = (
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
)
KMS_READ = ("kms:Decrypt", "kms:DescribeKey")
KMS_WRITE = (
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)


def table_actions(access: functions.Access) -> tuple[str, ...]:
    actions: set[str] = set()
    if access in ("read", "read_write"):
        actions.update(DDB_READ)
    if access in ("write", "read_write"):
        actions.update(DDB_WRITE)
    return tuple(sorted(actions))


def key_actions(access: functions.Access) -> tuple[str, ...]:
    actions = set(KMS_READ)  # writing needs the table key decrypted, too
    if access in ("write", "read_write"):
        actions.update(KMS_WRITE)
    return tuple(sorted(actions))


def grant_table(
    principal: iam.IGrantable,
    table: dynamodb.TableV2,
    spec: schema.TableSpec,
    access: functions.Access,
    *,
    key: kms.IKey,
    region: str,
) -> None:
    resources = [table.table_arn]
    if access in ("read", "read_write"):
        resources += [f"{table.table_arn}/index/{index.name}" for index in spec.indexes]
    principal.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(actions=list(table_actions(access)), resources=resources)
    )
    principal.grant_principal.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(key_actions(access)),
            resources=[key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{region}.amazonaws.com"}},
        )
    )
