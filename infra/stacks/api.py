"""The control plane: the Lambda functions, the HTTP API and the WebSocket API."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

import aws_cdk as cdk
import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .config import (
    FUNCTION_ASSET_EXCLUDES,
    FUNCTIONS_DIR,
    METRICS_NAMESPACE,
    REPO_ROOT,
    Settings,
    retention,
)
from .data import DataStack
from .grants import grant_table
from .layer import DependenciesLayer
from .nag import acknowledge, acknowledge_wildcard_resource
from .turn import TurnStack

from townhall import functions, routes  # isort: skip

HTTP_ROUTE_PATH = "/api/{proxy+}"
MANAGE_CONNECTIONS_METHODS = ("POST", "GET", "DELETE")

CONTRACTS_DIR = REPO_ROOT / "contracts"
# The function code asset, unpacked at /var/task (on the handlers' sys.path): the contents of
# functions/ at its root, and contracts/ beside them, so `import contracts` works as locally.
FUNCTION_CODE_TREES: tuple[tuple[Path, str], ...] = (
    (FUNCTIONS_DIR, ""),
    (CONTRACTS_DIR, "contracts"),
)
FUNCTION_CODE_CACHE = REPO_ROOT / "build" / "lambda-code"

# (source, path in the asset)
AssetFile = tuple[Path, str]


def asset_files(
    trees: Sequence[tuple[Path, str]], excluded: Callable[[PurePosixPath], bool]
) -> list[AssetFile]:
    """(source, path in the asset) for every file of `trees` (each a directory and where it
    goes in the asset) that `excluded` keeps, sorted; `excluded` sees paths inside a tree."""
    files: list[AssetFile] = []
    for root, prefix in trees:
        for dirpath, dirnames, filenames in os.walk(root):
            inside = PurePosixPath(Path(dirpath).relative_to(root).as_posix())
            dirnames[:] = sorted(d for d in dirnames if not excluded(inside / d))
            for filename in sorted(filenames):
                if excluded(inside / filename):
                    continue
                relative = (inside / filename).as_posix()
                files.append((Path(dirpath) / filename, f"{prefix}/{relative}".lstrip("/")))
    return files


def staged_asset_dir(files: Sequence[AssetFile], cache_root: Path) -> Path:
    """A directory holding exactly `files`, named by the SHA-256 of their paths and contents.

    Built once per content (a second synth reuses it) and published by an atomic rename, so
    two synths at once never see a half-copied tree.
    """
    digest = hashlib.sha256()
    for source, target in files:
        digest.update(target.encode() + b"\0" + source.read_bytes() + b"\0")
    final = cache_root / digest.hexdigest()
    if final.is_dir():
        return final
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache_root))
    try:
        for source, target in files:
            destination = staging / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():  # another synth published the same tree first: fine
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def excluded_from_function_code(path: PurePosixPath) -> bool:
    """`FUNCTION_ASSET_EXCLUDES` (gitignore-style: a pattern names a file or directory at any
    depth) applied to one path inside a tree."""
    return any(
        fnmatch.fnmatchcase(part, pattern.removeprefix("**/"))
        for pattern in FUNCTION_ASSET_EXCLUDES
        for part in path.parts
    )


def function_code_files() -> list[AssetFile]:
    return asset_files(FUNCTION_CODE_TREES, excluded_from_function_code)


def function_code_dir(cache_root: Path = FUNCTION_CODE_CACHE) -> Path:
    """The function code asset's directory: functions/ and contracts/, without tests, caches
    or requirements files."""
    return staged_asset_dir(function_code_files(), cache_root)


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogSettings:
    def __init__(self, log_group: logs.ILogGroup, fields: dict[str, str]) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)
        self._format = apigw.AccessLogFormat.custom(json.dumps(fields, separators=(",", ":")))

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return self._format


HTTP_ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTimeEpoch",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "latency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "userAgent": "$context.identity.userAgent",
}

WS_ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "ip": "$context.identity.sourceIp",
    "requestTime": "$context.requestTimeEpoch",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "connectionId": "$context.connectionId",
    "integrationLatency": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "errorMessage": "$context.error.message",
}


def _filter_pattern(pattern: dict[str, Any]) -> dict[str, Any]:
    """A filter pattern as CDK's FilterCriteria.filter takes it: leaf lists of plain values or
    FilterRule objects ({"prefix": ...} becomes FilterRule.begins_with)."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [
                lambda_.FilterRule.begins_with(v["prefix"])[0]
                if isinstance(v, dict) and set(v) == {"prefix"}
                else v
                for v in value
            ]
        return value

    converted: dict[str, Any] = convert(pattern)
    return converted


def service_name(spec: functions.FunctionSpec) -> str:
    base = spec.logical_id.removesuffix("Function")
    return "townhall-" + re.sub(r"(?<!^)(?=[A-Z])", "-", base).lower()


class ApiStack(cdk.Stack):
    """One Lambda per ``townhall.functions.ALL_FUNCTIONS`` entry, and the two APIs in front."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataStack,
        turn: TurnStack | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        self.turn = turn

        self.deps_layer = DependenciesLayer(self, "Dependencies")
        code = lambda_.Code.from_asset(str(function_code_dir()))

        # Before the functions: those that send to a queue are told its URL.
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for queue_spec in functions.ALL_QUEUES:
            self._queue(queue_spec)
        self.functions: dict[str, lambda_.Function] = {}
        for spec in functions.ALL_FUNCTIONS:
            self.functions[spec.logical_id] = self._function(spec, code, data)
        for spec in functions.ALL_FUNCTIONS:
            for target in spec.invokes:
                self._grant_invoke(spec, target)

        self._http_api(data)
        self._websocket_api(data)
        self.stream_failures: dict[str, sqs.Queue] = {}
        for source in functions.ALL_STREAM_SOURCES:
            self._stream_source(source, data)
        for queue_source in functions.ALL_QUEUE_SOURCES:
            self._queue_source(queue_source)

    # -- functions ---------------------------------------------------------------------------

    def _function(
        self, spec: functions.FunctionSpec, code: lambda_.Code, data: DataStack
    ) -> lambda_.Function:
        log_group = logs.LogGroup(
            self,
            f"{spec.logical_id}Logs",
            retention=retention(self.settings.log_retention_days),
            encryption_key=data.logs_key,
        )
        # Our own role instead of the managed AWSLambdaBasicExecutionRole: it may write to this
        # function's log group and nowhere else.
        role = iam.Role(
            self,
            f"{spec.logical_id}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Townhall {spec.logical_id}: exactly the access in townhall.functions",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        environment = {
            "POWERTOOLS_SERVICE_NAME": service_name(spec),
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            "LOG_LEVEL": self.settings.log_level,
        }
        fn = lambda_.Function(
            self,
            spec.logical_id,
            runtime=lambda_.Runtime.PYTHON_3_12,
            architecture=lambda_.Architecture.ARM_64,
            handler=spec.handler,
            code=code,
            layers=[self.deps_layer.layer],
            timeout=cdk.Duration.seconds(spec.timeout_seconds),
            memory_size=spec.memory_mb,
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=log_group,
            environment=environment,
            description=f"Townhall {spec.handler}",
        )
        for table_spec, access in spec.tables:
            table = data.table(table_spec)
            fn.add_environment(table_spec.env_var, table.table_name)
            grant_table(role, table, table_spec, access, key=data.data_key, region=self.region)
        for queue_spec in spec.sends_to:
            queue = self.queues[queue_spec.logical_id]
            dead_letters = self.dead_letter_queues[queue_spec.logical_id]
            fn.add_environment(queue_spec.env_var, queue.queue_url)
            fn.add_environment(queue_spec.dead_letter_env_var, dead_letters.queue_url)
            # SendMessage (and SendMessageBatch, which it authorizes) to these two only.
            for target in (queue, dead_letters):
                role.add_to_policy(
                    iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[target.queue_arn])
                )
        secrets = []
        if spec.reads_signing_key:
            fn.add_environment(functions.ENV_SIGNING_KEY_SECRET_ARN, data.signing_secret.secret_arn)
            secrets.append(data.signing_secret.secret_arn)
        if spec.mints_turn_credentials and self.turn is not None:
            # The URLs browsers are given, and the secret their credentials derive from.
            fn.add_environment(functions.ENV_TURN_URLS, " ".join(self.turn.client_urls))
            fn.add_environment(functions.ENV_TURN_SECRET_ARN, data.turn_secret.secret_arn)
            if self.settings.turn_for_media_nodes:
                fn.add_environment(
                    functions.ENV_TURN_MEDIA_NODE_URLS, " ".join(self.turn.media_node_urls())
                )
            secrets.append(data.turn_secret.secret_arn)
        if secrets:
            # Written out rather than secret.grant_read(): that grant names this role in the
            # data key's policy, which would make the data stack depend on this one.
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    resources=secrets,
                )
            )
            role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[data.data_key.key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"
                        }
                    },
                )
            )

        acknowledge(
            fn,
            "AwsSolutions-L1",
            "Pinned to Python 3.12 on purpose: the dependency layer is built for cp312 "
            "manylinux2014_aarch64 wheels and the code is tested on 3.12. Moving runtimes is a "
            "deliberate change of the layer, the runtime and CI together.",
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "Only the X-Ray actions added by active tracing (xray:PutTraceSegments, "
            "xray:PutTelemetryRecords) use '*': X-Ray has no resource-level permissions. "
            "tests/infra asserts no other action is granted on '*'.",
        )
        return fn

    def _grant_invoke(self, caller: functions.FunctionSpec, target: functions.FunctionSpec) -> None:
        """`caller` invokes `target` synchronously, by the name in its environment."""
        fn = self.functions[caller.logical_id]
        target_fn = self.functions[target.logical_id]
        fn.add_environment(functions.invoke_env_var(target), target_fn.function_name)
        # The function itself only: no version or alias ARN (the ":*" grant_invoke adds).
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"], resources=[target_fn.function_arn]
            )
        )

    # -- streams -----------------------------------------------------------------------------

    def _stream_source(self, source: functions.StreamSourceSpec, data: DataStack) -> None:
        """The event source mapping of `source`, with its failure destination: an encrypted
        queue that keeps what could not be delivered (Lambda sends the batch's place in the
        stream, not the records) for 14 days."""
        fn = self.functions[source.function.logical_id]
        table = data.table(source.table)
        if table.table_stream_arn is None:
            raise ValueError(f"{source.table.logical_id} has no stream")
        failures = sqs.Queue(
            self,
            f"{source.logical_id}Failures",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
        )
        acknowledge(
            failures,
            "AwsSolutions-SQS3",
            "This queue is itself the failure destination of the outbox's event source "
            "mapping; it keeps failed batches' stream positions for an operator to inspect.",
        )
        self.stream_failures[source.logical_id] = failures
        # Written out rather than table.grant_stream_read(): that grant would name this role
        # in the data key's policy and make the data stack depend on this one.
        role = fn.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "dynamodb:DescribeStream",
                    "dynamodb:GetRecords",
                    "dynamodb:GetShardIterator",
                ],
                resources=[table.table_stream_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["dynamodb:ListStreams"], resources=["*"])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[data.data_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"dynamodb.{self.region}.amazonaws.com"}
                },
            )
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "dynamodb:ListStreams has no resource-level permissions (Lambda's event source "
            "mapping calls it); the X-Ray actions of active tracing use '*' too.",
        )
        failures.grant_send_messages(fn)
        lambda_.EventSourceMapping(
            self,
            source.logical_id,
            target=fn,
            event_source_arn=table.table_stream_arn,
            starting_position=lambda_.StartingPosition.LATEST,
            batch_size=source.batch_size,
            max_batching_window=cdk.Duration.seconds(source.batching_window_seconds),
            parallelization_factor=source.parallelization_factor,
            bisect_batch_on_error=source.bisect_on_error,
            retry_attempts=source.retry_attempts,
            max_record_age=cdk.Duration.seconds(source.max_record_age_seconds),
            report_batch_item_failures=source.report_batch_item_failures,
            filters=[lambda_.FilterCriteria.filter(_filter_pattern(p)) for p in source.filters],
            on_failure=event_sources.SqsDlq(failures),
        )

    # -- queues ------------------------------------------------------------------------------

    def _queue(self, spec: functions.QueueSpec) -> None:
        """The queue and its dead-letter queue: encrypted (SQS-managed keys), TLS only."""
        dead_letters = sqs.Queue(
            self,
            f"{spec.logical_id}DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(spec.dead_letter_retention_days),
        )
        acknowledge(
            dead_letters,
            "AwsSolutions-SQS3",
            "This queue is itself a dead-letter queue: what the retry schedule gave up on, kept "
            "for an operator; an alarm fires when it holds anything.",
        )
        queue = sqs.Queue(
            self,
            spec.logical_id,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=cdk.Duration.seconds(spec.visibility_timeout_seconds),
            retention_period=cdk.Duration.days(spec.retention_days),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=dead_letters, max_receive_count=spec.max_receive_count
            ),
        )
        self.queues[spec.logical_id] = queue
        self.dead_letter_queues[spec.logical_id] = dead_letters

    def _queue_source(self, source: functions.QueueSourceSpec) -> None:
        """Lambda's event source mapping from the queue to the function, with the rights to
        receive and delete that queue's messages (nothing else)."""
        fn = self.functions[source.function.logical_id]
        queue = self.queues[source.queue.logical_id]
        role = fn.role
        assert role is not None
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[
                    "sqs:ReceiveMessage",
                    "sqs:DeleteMessage",
                    "sqs:ChangeMessageVisibility",
                    "sqs:GetQueueAttributes",
                ],
                resources=[queue.queue_arn],
            )
        )
        lambda_.EventSourceMapping(
            self,
            source.logical_id,
            target=fn,
            event_source_arn=queue.queue_arn,
            batch_size=source.batch_size,
            max_batching_window=cdk.Duration.seconds(source.batching_window_seconds),
            report_batch_item_failures=source.report_batch_item_failures,
            max_concurrency=source.max_concurrency,
        )

    # -- HTTP API ----------------------------------------------------------------------------

    def _access_log_group(self, construct_id: str, data: DataStack) -> logs.LogGroup:
        return logs.LogGroup(
            self,
            construct_id,
            retention=retention(self.settings.access_log_retention_days),
            encryption_key=data.logs_key,
        )

    def _http_api(self, data: DataStack) -> None:
        fn = self.functions[functions.HTTP_API.logical_id]
        self.http_api = apigwv2.HttpApi(
            self,
            "HttpApi",
            api_name=f"{self.settings.prefix.lower()}-http",
            description="Townhall HTTP API (FastAPI on Lambda via Mangum)",
            create_default_stage=False,
        )
        self.http_api_route = self.http_api.add_routes(
            path=HTTP_ROUTE_PATH,
            methods=[apigwv2.HttpMethod.ANY],
            integration=integrations.HttpLambdaIntegration(
                "HttpApiIntegration",
                fn,
                payload_format_version=apigwv2.PayloadFormatVersion.VERSION_2_0,
            ),
        )
        self.http_stage = apigwv2.HttpStage(
            self,
            "HttpApiDefaultStage",
            http_api=self.http_api,
            stage_name="$default",
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=self.settings.http_rate_limit,
                burst_limit=self.settings.http_burst_limit,
            ),
            access_log_settings=_AccessLogSettings(
                self._access_log_group("HttpApiAccessLogs", data), HTTP_ACCESS_LOG_FIELDS
            ),
        )
        for route in self.http_api_route:
            acknowledge(
                route,
                "AwsSolutions-APIG4",
                "The FastAPI app authorizes each request itself (session JWT in the "
                "Authorization header, verified with the Ed25519 key) because sign-up, login "
                "and join-link lookups must stay public; an API Gateway authorizer cannot "
                "express per-route anonymous access for the single {proxy+} route.",
            )
        # Built from the id, not split out of api_endpoint: Fn::Split over a value read from
        # another stack does not validate (cfn-lint E1017).
        self.http_api_domain = self._execute_api_domain(self.http_api.api_id)
        cdk.CfnOutput(self, "HttpApiUrl", value=self.http_stage.url)

    # -- WebSocket API -----------------------------------------------------------------------

    def _websocket_api(self, data: DataStack) -> None:
        fns = self.functions
        signaling = integrations.WebSocketLambdaIntegration(
            "SignalingIntegration", fns[functions.WS_SIGNALING.logical_id]
        )
        self.ws_authorizer = authorizers.WebSocketLambdaAuthorizer(
            "TokenAuthorizer",
            fns[functions.WS_AUTHORIZER.logical_id],
            identity_source=[routes.IDENTITY_SOURCE],
        )
        self.ws_api = apigwv2.WebSocketApi(
            self,
            "WebSocketApi",
            api_name=f"{self.settings.prefix.lower()}-ws",
            description="Townhall signaling (WebSocket)",
            route_selection_expression=routes.ROUTE_SELECTION_EXPRESSION,
            connect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration(
                    "ConnectIntegration", fns[functions.WS_CONNECT.logical_id]
                ),
                authorizer=self.ws_authorizer,
            ),
            disconnect_route_options=apigwv2.WebSocketRouteOptions(
                integration=integrations.WebSocketLambdaIntegration(
                    "DisconnectIntegration", fns[functions.WS_DISCONNECT.logical_id]
                ),
            ),
            default_route_options=apigwv2.WebSocketRouteOptions(
                integration=signaling,
                return_response="$default" in routes.TWO_WAY_ROUTES,
            ),
        )
        for action in routes.ACTIONS:
            self.ws_api.add_route(
                action, integration=signaling, return_response=action in routes.TWO_WAY_ROUTES
            )

        stage_deps: list[Construct] = []
        if self.settings.manage_api_gateway_account:
            stage_deps.append(self._api_gateway_account())
        self.ws_stage = apigwv2.WebSocketStage(
            self,
            "WebSocketStage",
            web_socket_api=self.ws_api,
            stage_name=routes.STAGE,
            auto_deploy=True,
            detailed_metrics_enabled=True,  # per-route metrics: every action is its own route
            throttle=apigwv2.ThrottleSettings(
                rate_limit=self.settings.ws_rate_limit,
                burst_limit=self.settings.ws_burst_limit,
            ),
            access_log_settings=_AccessLogSettings(
                self._access_log_group("WebSocketAccessLogs", data), WS_ACCESS_LOG_FIELDS
            ),
        )
        for dep in stage_deps:
            self.ws_stage.node.add_dependency(dep)

        for child in self.ws_api.node.children:
            if isinstance(child, apigwv2.WebSocketRoute) and child.route_key != "$connect":
                acknowledge(
                    child,
                    "AwsSolutions-APIG4",
                    "API Gateway runs WebSocket authorizers on $connect only; every later "
                    "message rides on the connection the $connect authorizer admitted, and "
                    "the handler checks the caller's role in the meeting for each action.",
                )

        # execute-api:ManageConnections, only for functions that push to clients, only on this
        # API's stage, only for the three @connections verbs.
        self.manage_connections_arns = [
            self.format_arn(
                service="execute-api",
                resource=self.ws_api.api_id,
                resource_name=f"{routes.STAGE}/{method}/@connections/*",
                arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
            )
            for method in MANAGE_CONNECTIONS_METHODS
        ]
        for spec in functions.ALL_FUNCTIONS:
            if not spec.manages_connections:
                continue
            fn = fns[spec.logical_id]
            # Functions that serve no WebSocket request (the outbox's) learn where to post
            # from here; the others use it too, so every function posts to the same address.
            fn.add_environment(
                functions.ENV_WS_MANAGEMENT_ENDPOINT,
                f"https://{self._execute_api_domain(self.ws_api.api_id)}/{routes.STAGE}",
            )
            fn.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["execute-api:ManageConnections"],
                    resources=self.manage_connections_arns,
                )
            )
            for arn in self.manage_connections_arns:
                acknowledge_wildcard_resource(
                    fn.role or fn,
                    arn,
                    "Connection ids are minted by API Gateway at run time, so the ARN ends in "
                    "@connections/*; it is pinned to this API, the ws stage and one verb.",
                )

        self.ws_api_domain = self._execute_api_domain(self.ws_api.api_id)
        cdk.CfnOutput(self, "WebSocketApiUrl", value=self.ws_stage.url)

    def _execute_api_domain(self, api_id: str) -> str:
        return f"{api_id}.execute-api.{self.region}.{self.url_suffix}"

    def _api_gateway_account(self) -> apigw.CfnAccount:
        """The account-level role API Gateway needs before a WebSocket stage may write logs."""
        role = iam.Role(
            self,
            "ApiGatewayCloudWatchRole",
            assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                )
            ],
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AmazonAPIGatewayPushToCloudWatchLogs]",
            "The documented role for API Gateway's account-wide logging setting; AWS keeps "
            "its action list in step with what API Gateway logging needs, and the role can be "
            "assumed by apigateway.amazonaws.com only.",
        )
        account = apigw.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
        account.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        return account
