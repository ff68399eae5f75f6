"""Stateful resources: the DynamoDB tables, their key, the token-signing secret, the TURN
servers' shared secret, the logs key."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from . import config  # noqa: F401  (puts functions/ on sys.path)
from .nag import acknowledge

from townhall import schema  # isort: skip


_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}


def _attribute(key: schema.KeySpec) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_TYPES[key.type])


class DataStack(cdk.Stack):
    """One ``TableV2`` per ``townhall.schema.ALL_TABLES`` entry, plus the signing-key secret.

    Encryption: one customer-managed KMS key (rotated yearly) for the tables and the secret.
    Its key policy is a second lock next to IAM, every use is in CloudTrail under our key, and
    disabling it makes the data, PITR backups included, unreadable at once. It costs about
    $1 a month; DynamoDB caches table keys, so KMS request charges stay small.
    """

    def __init__(self, scope: Construct, construct_id: str, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)

        self.data_key = kms.Key(
            self,
            "DataKey",
            description="Townhall: DynamoDB tables and the token-signing secret",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.data_key.add_alias("alias/townhall/data")

        # CloudWatch Logs encrypts every Townhall log group (Lambda, API access logs, VPC flow
        # logs, media nodes) with this key; the service may use it only for this account's logs.
        self.logs_key = kms.Key(
            self,
            "LogsKey",
            description="Townhall: CloudWatch Logs log groups",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        self.logs_key.add_alias("alias/townhall/logs")
        self.logs_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{cdk.Aws.REGION}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                    "kms:DescribeKey",
                ],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": (
                            f"arn:{cdk.Aws.PARTITION}:logs:{cdk.Aws.REGION}:"
                            f"{cdk.Aws.ACCOUNT_ID}:log-group:*"
                        )
                    }
                },
            )
        )

        self.tables: dict[str, dynamodb.TableV2] = {}
        for spec in schema.ALL_TABLES:
            table = dynamodb.TableV2(
                self,
                spec.logical_id,
                partition_key=_attribute(spec.partition_key),
                sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
                billing=dynamodb.Billing.on_demand(),
                encryption=dynamodb.TableEncryptionV2.customer_managed_key(self.data_key),
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                time_to_live_attribute=spec.ttl_attribute,
                global_secondary_indexes=[
                    dynamodb.GlobalSecondaryIndexPropsV2(
                        index_name=index.name,
                        partition_key=_attribute(index.partition_key),
                        sort_key=_attribute(index.sort_key) if index.sort_key else None,
                        projection_type=dynamodb.ProjectionType.ALL,
                    )
                    for index in spec.indexes
                ]
                or None,
                dynamo_stream=(
                    dynamodb.StreamViewType(spec.stream_view) if spec.stream_view else None
                ),
                deletion_protection=True,
                removal_policy=cdk.RemovalPolicy.RETAIN,
            )
            self.tables[spec.logical_id] = table
            cdk.CfnOutput(self, f"{spec.logical_id}TableName", value=table.table_name)

        # The handlers derive the Ed25519 signing seed as SHA-256 of this string.
        self.signing_secret = self._generated_secret(
            "SigningKeySecret",
            "Townhall: seed of the Ed25519 key that signs session and join tokens",
        )
        acknowledge(
            self.signing_secret,
            "AwsSolutions-SMG4",
            "The secret seeds the token-signing key. A scheduled rotation would invalidate every "
            "outstanding session and join token at once, because handlers know one key. Rotation "
            "is a runbook instead: issue tokens with a key id (kid) in the JWT header, publish old "
            "and new key side by side for the token lifetime, then retire the old one.",
        )

        # coturn's `static-auth-secret`, shared with the signaling function, which derives each
        # participant's short-lived TURN credentials from it (townhall.media.turn). The string
        # itself is the secret (no JSON): letters and digits only, so it sits in turnserver.conf
        # without quoting.
        self.turn_secret = self._generated_secret(
            "TurnSecret", "Townhall: TURN REST API shared secret (coturn static-auth-secret)"
        )
        acknowledge(
            self.turn_secret,
            "AwsSolutions-SMG4",
            "coturn reads the TURN secret when it starts, so a scheduled rotation would make "
            "the signaling function mint credentials that running TURN servers refuse. Rotation "
            "is a runbook (docs/turn.md): stage the new value as AWSPENDING, refresh the TURN "
            "group (each instance accepts AWSCURRENT, AWSPENDING and AWSPREVIOUS), then promote "
            "it to AWSCURRENT; no outstanding credential is refused on the way.",
        )

    def _generated_secret(self, construct_id: str, description: str) -> secretsmanager.Secret:
        """A secret of 64 letters and digits made by Secrets Manager, under the data key, kept
        when the stack goes."""
        return secretsmanager.Secret(
            self,
            construct_id,
            description=description,
            encryption_key=self.data_key,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=64,
                exclude_punctuation=True,
                include_space=False,
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def table(self, spec: schema.TableSpec) -> dynamodb.TableV2:
        return self.tables[spec.logical_id]
