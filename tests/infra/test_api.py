"""API stack: the Lambda functions, their exact rights, the HTTP API and the WebSocket API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.stacks import api as api_stack
from infra.stacks.grants import DDB_READ, DDB_WRITE, KMS_WRITE, table_actions
from townhall import functions, routes, schema

from .conftest import Synth
from .helpers import actions, as_list, mentions, policy_statements

pytestmark = pytest.mark.infra

SPECS = {spec.logical_id: spec for spec in functions.ALL_FUNCTIONS}


def _function(synth: Synth, spec: functions.FunctionSpec) -> dict[str, Any]:
    api = synth.stacks.api
    return synth.template(api)["Resources"][synth.logical_id(api.functions[spec.logical_id])]


def _statements(synth: Synth, spec: functions.FunctionSpec) -> list[dict[str, Any]]:
    api = synth.stacks.api
    fn = _function(synth, spec)
    role_id = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    return policy_statements(synth.template(api), role_id)


def _table_ids(synth: Synth) -> dict[str, str]:
    """TableSpec.logical_id -> the table's logical id in the data stack."""
    data = synth.stacks.data
    return {spec.logical_id: synth.logical_id(data.table(spec)) for spec in schema.ALL_TABLES}


def test_one_function_per_spec(synth: Synth) -> None:
    fns = synth.resources(synth.stacks.api, "AWS::Lambda::Function")
    assert len(fns) == len(functions.ALL_FUNCTIONS)
    assert sorted(f["Properties"]["Handler"] for f in fns.values()) == sorted(
        spec.handler for spec in functions.ALL_FUNCTIONS
    )


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_function_configuration(synth: Synth, spec: functions.FunctionSpec) -> None:
    props = _function(synth, spec)["Properties"]
    assert props["Handler"] == spec.handler
    assert props["Runtime"] == "python3.12"
    assert props["Architectures"] == ["arm64"]
    assert props["Timeout"] == spec.timeout_seconds
    assert props["MemorySize"] == spec.memory_mb
    assert props["TracingConfig"] == {"Mode": "Active"}
    layer_id = synth.logical_id(synth.stacks.api.deps_layer.layer)
    assert props["Layers"] == [{"Ref": layer_id}]
    assert "LogGroup" in props["LoggingConfig"]

    env = props["Environment"]["Variables"]
    expected = {
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "LOG_LEVEL",
        *(table.env_var for table, _ in spec.tables),
    }
    if spec.reads_signing_key:
        expected.add(functions.ENV_SIGNING_KEY_SECRET_ARN)
    if spec.mints_turn_credentials:
        expected |= {functions.ENV_TURN_URLS, functions.ENV_TURN_SECRET_ARN}
    if spec.manages_connections:
        expected.add(functions.ENV_WS_MANAGEMENT_ENDPOINT)
    expected.update(functions.invoke_env_var(target) for target in spec.invokes)
    for queue in spec.sends_to:
        expected |= {queue.env_var, queue.dead_letter_env_var}
    assert set(env) == expected
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "Townhall"
    table_ids = _table_ids(synth)
    for table, _ in spec.tables:
        assert mentions(env[table.env_var], table_ids[table.logical_id]), table.env_var


def test_function_code_is_the_functions_directory_and_the_contracts(synth: Synth) -> None:
    codes = {
        json.dumps(f["Properties"]["Code"], sort_keys=True)
        for f in synth.resources(synth.stacks.api, "AWS::Lambda::Function").values()
    }
    assert len(codes) == 1, "every function shares one code asset"
    key = json.loads(codes.pop())["S3Key"]
    asset = synth.outdir / f"asset.{key.removesuffix('.zip')}"
    assert (asset / "handlers" / "__init__.py").is_file()
    assert (asset / "townhall" / "functions.py").is_file()
    # At the root, beside townhall/: /var/task is on the handlers' path, so `import contracts`
    # works in Lambda as it does locally.
    assert (asset / "contracts" / "__init__.py").is_file()
    assert (asset / "contracts" / "signaling_events.py").is_file()
    assert not list(asset.rglob("__pycache__"))
    assert not list(asset.rglob("*.pyc"))
    assert not (asset / "requirements.txt").exists()
    # Exactly functions/ (less what is excluded) and contracts/: nothing else of the repository.
    assert {p.name for p in asset.iterdir()} == {"handlers", "townhall", "contracts"}


def test_the_function_code_imports_as_lambda_imports_it(tmp_path: Path) -> None:
    """The staged asset alone on the path (as /var/task is): signaling, which uses the
    contracts, and the media package, which uses them too, import from it."""
    code = api_stack.function_code_dir()
    probe = (
        "import townhall.signaling.actions.moderation as m, contracts.node_api as c; "
        "print(m.__file__); print(c.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,  # nothing importable here
        env={**os.environ, "PYTHONPATH": str(code)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert all(Path(line).is_relative_to(code) for line in result.stdout.split()), result.stdout


def test_the_function_code_excludes_what_lambda_does_not_need() -> None:
    shipped = [target for _, target in api_stack.function_code_files()]
    assert len(shipped) == len(set(shipped))
    assert "townhall/media/access.py" in shipped and "contracts/media_tokens.py" in shipped
    assert not [t for t in shipped if "__pycache__" in t or t.endswith(".pyc")]
    assert not [t for t in shipped if "requirements" in t or "/tests/" in t]


def test_dependency_layer_holds_aarch64_cp312_wheels(synth: Synth) -> None:
    api = synth.stacks.api
    layer = synth.template(api)["Resources"][synth.logical_id(api.deps_layer.layer)]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    key = layer["Properties"]["Content"]["S3Key"]
    site = synth.outdir / f"asset.{key.removesuffix('.zip')}" / "python"
    for package in ("fastapi", "mangum", "pydantic", "aws_lambda_powertools", "jwt", "argon2"):
        assert (site / package).is_dir(), package
    (core,) = (site / "pydantic_core").glob("_pydantic_core.*.so")
    assert "cpython-312-aarch64-linux-gnu" in core.name
    assert not list(site.rglob("*.pyc"))
    assert not (site / "bin").exists()


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_function_gets_exactly_its_tables(synth: Synth, spec: functions.FunctionSpec) -> None:
    table_ids = _table_ids(synth)
    access = {table.logical_id: acc for table, acc in spec.tables}
    granted: dict[str, set[str]] = {}
    for statement in _statements(synth, spec):
        ddb = {a for a in actions(statement) if a.startswith("dynamodb:")}
        if not ddb or ddb <= STREAM_READ:
            continue  # reading a stream: test_stream_consumers_read_only_their_stream
        assert ddb == actions(statement), "DynamoDB actions share a statement with others"
        for resource in as_list(statement["Resource"]):
            assert resource != "*"
            (table,) = [t for t, lid in table_ids.items() if mentions(resource, lid)]
            granted.setdefault(table, set()).update(ddb)
            if isinstance(resource, dict) and "Fn::Join" in resource:
                # Only named indexes, and only for readers.
                suffix = resource["Fn::Join"][1][-1]
                assert suffix.startswith("/index/") and "*" not in suffix
                assert access[table] in ("read", "read_write")
    assert set(granted) == set(access)
    for table, acc in access.items():
        assert granted[table] == set(table_actions(acc)), table
        if acc == "write":
            assert not granted[table] & (set(DDB_READ) - set(DDB_WRITE))
        if acc == "read":
            assert not granted[table] & (set(DDB_WRITE) - set(DDB_READ))


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_kms_only_through_dynamodb_or_secrets_manager(
    synth: Synth, spec: functions.FunctionSpec
) -> None:
    kms = [s for s in _statements(synth, spec) if any(a.startswith("kms:") for a in actions(s))]
    services = {s["Condition"]["StringEquals"]["kms:ViaService"].split(".")[0] for s in kms}
    expected = set()
    if spec.tables:
        expected.add("dynamodb")
    if spec.reads_signing_key or spec.mints_turn_credentials:
        expected.add("secretsmanager")
    assert services == expected
    writes = any(acc != "read" for _, acc in spec.tables)
    for statement in kms:
        assert not any("*" in a for a in actions(statement))
        if not writes:
            assert not actions(statement) & set(KMS_WRITE)


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_secrets_only_for_readers(synth: Synth, spec: functions.FunctionSpec) -> None:
    """The signing secret for `reads_signing_key`, the TURN secret for `mints_turn_credentials`,
    nothing for the others."""
    data = synth.stacks.data
    signing_id = synth.logical_id(data.signing_secret)
    turn_id = synth.logical_id(data.turn_secret)
    statements = [s for s in _statements(synth, spec) if mentions(s, "secretsmanager:")]
    expected = set()
    if spec.reads_signing_key:
        expected.add(signing_id)
    if spec.mints_turn_credentials:
        expected.add(turn_id)
    if not expected:
        assert statements == []
        return
    (statement,) = statements
    assert actions(statement) == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}
    resources = as_list(statement["Resource"])
    assert len(resources) == len(expected)
    assert {i for i in (signing_id, turn_id) if mentions(resources, i)} == expected


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_manage_connections_scoped_to_this_api(synth: Synth, spec: functions.FunctionSpec) -> None:
    api_id = synth.logical_id(synth.stacks.api.ws_api)
    statements = [
        s for s in _statements(synth, spec) if any(a.startswith("execute-api:") for a in actions(s))
    ]
    if not spec.manages_connections:
        assert statements == [], f"{spec.logical_id} must not manage connections"
        return
    (statement,) = statements
    assert actions(statement) == {"execute-api:ManageConnections"}
    resources = as_list(statement["Resource"])
    rendered = set()
    for resource in resources:
        assert resource != "*"
        parts = resource["Fn::Join"][1]
        assert parts[0] == "arn:aws:execute-api:us-east-1:"
        assert parts[1] == {"Ref": "AWS::AccountId"}
        assert parts[3] == {"Ref": api_id}
        rendered.add(parts[4])
    assert rendered == {
        f"/{routes.STAGE}/{verb}/@connections/*" for verb in ("POST", "GET", "DELETE")
    }


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_only_xray_on_star(synth: Synth, spec: functions.FunctionSpec) -> None:
    allowed = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    if any(s.function == spec for s in functions.ALL_STREAM_SOURCES):
        # No resource-level permissions; the event source mapping calls it.
        allowed.add("dynamodb:ListStreams")
    on_star = set()
    for statement in _statements(synth, spec):
        if "*" in as_list(statement["Resource"]):
            on_star |= actions(statement)
    assert on_star <= allowed
    assert {"xray:PutTraceSegments", "xray:PutTelemetryRecords"} <= on_star


STREAM_READ = {
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
}


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_stream_consumers_read_only_their_stream(
    synth: Synth, spec: functions.FunctionSpec
) -> None:
    sources = [s for s in functions.ALL_STREAM_SOURCES if s.function == spec]
    statements = [
        s for s in _statements(synth, spec) if actions(s) & (STREAM_READ - {"dynamodb:ListStreams"})
    ]
    if not sources:
        assert statements == []
        return
    (source,) = sources
    (statement,) = statements
    assert actions(statement) == STREAM_READ - {"dynamodb:ListStreams"}
    (resource,) = as_list(statement["Resource"])
    assert "StreamArn" in json.dumps(resource)
    assert mentions(resource, _table_ids(synth)[source.table.logical_id])


@pytest.mark.parametrize("source", functions.ALL_STREAM_SOURCES, ids=lambda s: s.logical_id)
def test_stream_event_source_mapping(synth: Synth, source: functions.StreamSourceSpec) -> None:
    api = synth.stacks.api
    (props,) = [
        r["Properties"]
        for r in synth.resources(api, "AWS::Lambda::EventSourceMapping").values()
        if mentions(
            r["Properties"]["FunctionName"],
            synth.logical_id(api.functions[source.function.logical_id]),
        )
    ]
    assert props["StartingPosition"] == "LATEST"
    assert props["BatchSize"] == source.batch_size
    assert props["MaximumBatchingWindowInSeconds"] == source.batching_window_seconds
    assert props["ParallelizationFactor"] == source.parallelization_factor
    assert props["BisectBatchOnFunctionError"] is source.bisect_on_error
    assert props["MaximumRetryAttempts"] == source.retry_attempts
    assert props["MaximumRecordAgeInSeconds"] == source.max_record_age_seconds
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    patterns = [json.loads(f["Pattern"]) for f in props["FilterCriteria"]["Filters"]]
    assert patterns == list(source.filters)
    assert "StreamArn" in json.dumps(props["EventSourceArn"])
    queue = api.stream_failures[source.logical_id]
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": [synth.logical_id(queue), "Arn"]
    }
    queue_props = synth.template(api)["Resources"][synth.logical_id(queue)]["Properties"]
    assert queue_props["SqsManagedSseEnabled"] is True
    # Only the consumer may send to it, and only over TLS.
    policies = [
        r["Properties"]["PolicyDocument"]["Statement"]
        for r in synth.resources(api, "AWS::SQS::QueuePolicy").values()
        if mentions(r["Properties"]["Queues"], synth.logical_id(queue))
    ]
    assert any(
        st["Effect"] == "Deny" and st["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statements in policies
        for st in statements
    )


@pytest.mark.parametrize("spec", functions.ALL_FUNCTIONS, ids=lambda s: s.logical_id)
def test_functions_invoke_exactly_what_they_declare(
    synth: Synth, spec: functions.FunctionSpec
) -> None:
    api = synth.stacks.api
    statements = [
        s for s in _statements(synth, spec) if any(a.startswith("lambda:") for a in actions(s))
    ]
    assert len(statements) == len(spec.invokes)
    for statement, target in zip(statements, spec.invokes, strict=True):
        assert actions(statement) == {"lambda:InvokeFunction"}
        (resource,) = as_list(statement["Resource"])
        assert resource == {
            "Fn::GetAtt": [synth.logical_id(api.functions[target.logical_id]), "Arn"]
        }


def test_roles_have_no_managed_policies(synth: Synth) -> None:
    api = synth.stacks.api
    for spec in functions.ALL_FUNCTIONS:
        role_id = _function(synth, spec)["Properties"]["Role"]["Fn::GetAtt"][0]
        role = synth.template(api)["Resources"][role_id]
        assert "ManagedPolicyArns" not in role["Properties"], spec.logical_id


# -- WebSocket API ----------------------------------------------------------------------------


def _ws(synth: Synth) -> tuple[dict[str, Any], str]:
    api = synth.stacks.api
    return synth.template(api)["Resources"], synth.logical_id(api.ws_api)


def test_websocket_api(synth: Synth) -> None:
    resources, api_id = _ws(synth)
    props = resources[api_id]["Properties"]
    assert props["ProtocolType"] == "WEBSOCKET"
    assert props["RouteSelectionExpression"] == routes.ROUTE_SELECTION_EXPRESSION


def test_websocket_routes(synth: Synth) -> None:
    resources, api_id = _ws(synth)
    ws_routes = {
        r["Properties"]["RouteKey"]: (lid, r["Properties"])
        for lid, r in resources.items()
        if r["Type"] == "AWS::ApiGatewayV2::Route" and r["Properties"]["ApiId"] == {"Ref": api_id}
    }
    assert set(ws_routes) == {"$connect", "$disconnect", "$default", *routes.ACTIONS}

    integrations = {
        lid: r["Properties"]
        for lid, r in resources.items()
        if r["Type"] == "AWS::ApiGatewayV2::Integration"
    }
    fn_ids = {
        spec.logical_id: synth.logical_id(synth.stacks.api.functions[spec.logical_id])
        for spec in functions.ALL_FUNCTIONS
    }

    def target(route: dict[str, Any]) -> str:
        integration_id = route["Target"]["Fn::Join"][1][1]["Ref"]
        uri = integrations[integration_id]["IntegrationUri"]
        (name,) = [name for name, lid in fn_ids.items() if mentions(uri, lid)]
        return name

    assert target(ws_routes["$connect"][1]) == functions.WS_CONNECT.logical_id
    assert target(ws_routes["$disconnect"][1]) == functions.WS_DISCONNECT.logical_id
    for key in ("$default", *routes.ACTIONS):
        assert target(ws_routes[key][1]) == functions.WS_SIGNALING.logical_id, key

    responses = {
        r["Properties"]["RouteId"]["Ref"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::RouteResponse"
        and r["Properties"]["RouteResponseKey"] == "$default"
    }
    for key, (lid, props) in ws_routes.items():
        two_way = key in routes.TWO_WAY_ROUTES
        assert (lid in responses) is two_way, key
        assert (props.get("RouteResponseSelectionExpression") == "$default") is two_way, key


def test_connect_authorizer(synth: Synth) -> None:
    resources, api_id = _ws(synth)
    (authorizer_id,) = [
        lid for lid, r in resources.items() if r["Type"] == "AWS::ApiGatewayV2::Authorizer"
    ]
    props = resources[authorizer_id]["Properties"]
    assert props["AuthorizerType"] == "REQUEST"
    # The token rides in the subprotocol header, never in the logged query string.
    assert props["IdentitySource"] == ["route.request.header.Sec-WebSocket-Protocol"]
    authorizer_fn = synth.logical_id(synth.stacks.api.functions[functions.WS_AUTHORIZER.logical_id])
    assert mentions(props["AuthorizerUri"], authorizer_fn)
    for r in resources.values():
        if r["Type"] != "AWS::ApiGatewayV2::Route" or r["Properties"]["ApiId"] != {"Ref": api_id}:
            continue
        if r["Properties"]["RouteKey"] == "$connect":
            assert r["Properties"]["AuthorizationType"] == "CUSTOM"
            assert r["Properties"]["AuthorizerId"] == {"Ref": authorizer_id}
        else:
            assert r["Properties"].get("AuthorizationType", "NONE") == "NONE"


def test_websocket_stage(synth: Synth) -> None:
    resources, api_id = _ws(synth)
    (stage,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Stage" and r["Properties"]["ApiId"] == {"Ref": api_id}
    ]
    assert stage["StageName"] == routes.STAGE
    assert stage["AutoDeploy"] is True
    throttle = stage["DefaultRouteSettings"]
    assert throttle["ThrottlingRateLimit"] > 0 and throttle["ThrottlingBurstLimit"] > 0
    assert "$context.requestId" in stage["AccessLogSettings"]["Format"]
    log_group = stage["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    log_props = resources[log_group]["Properties"]
    assert log_props["RetentionInDays"] > 0 and "KmsKeyId" in log_props


def test_api_gateway_account_role_precedes_websocket_stage(synth: Synth) -> None:
    resources, api_id = _ws(synth)
    (account_id,) = [lid for lid, r in resources.items() if r["Type"] == "AWS::ApiGateway::Account"]
    (stage,) = [
        r
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Stage" and r["Properties"]["ApiId"] == {"Ref": api_id}
    ]
    assert account_id in stage.get("DependsOn", [])


# -- HTTP API ---------------------------------------------------------------------------------


def test_http_api(synth: Synth) -> None:
    api = synth.stacks.api
    resources = synth.template(api)["Resources"]
    http_id = synth.logical_id(api.http_api)
    assert resources[http_id]["Properties"]["ProtocolType"] == "HTTP"
    http_routes = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Route" and r["Properties"]["ApiId"] == {"Ref": http_id}
    ]
    assert [r["RouteKey"] for r in http_routes] == ["ANY /api/{proxy+}"]
    integration_id = http_routes[0]["Target"]["Fn::Join"][1][1]["Ref"]
    integration = resources[integration_id]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    http_fn = synth.logical_id(api.functions[functions.HTTP_API.logical_id])
    assert mentions(integration["IntegrationUri"], http_fn)

    (stage,) = [
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Stage" and r["Properties"]["ApiId"] == {"Ref": http_id}
    ]
    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert "$context.requestId" in stage["AccessLogSettings"]["Format"]


def test_outputs(synth: Synth) -> None:
    outputs = synth.template(synth.stacks.api)["Outputs"]
    assert {"HttpApiUrl", "WebSocketApiUrl"} <= set(outputs)
