"""Media stack: VPC, security group, node role, launch template (the real node as a systemd
service), Auto Scaling group."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from infra.stacks import media as media_stack
from infra.stacks import nag
from infra.stacks.config import REPO_ROOT, Settings
from infra.stacks.data import DataStack
from infra.stacks.grants import DDB_READ, DDB_WRITE
from media_fleet.service.settings import parse
from tests.media.test_imds import FakeImds

from .conftest import Synth
from .helpers import actions, as_list, mentions, policy_statements, user_data_text

pytestmark = pytest.mark.infra


def _one(synth: Synth, cfn_type: str) -> dict[str, Any]:
    (resource,) = synth.resources(synth.stacks.media, cfn_type).values()
    return resource


def test_no_launch_configuration(synth: Synth) -> None:
    assert synth.resources(synth.stacks.media, "AWS::AutoScaling::LaunchConfiguration") == {}
    asg = _one(synth, "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    assert "LaunchConfigurationName" not in asg
    lt_id = synth.logical_id(synth.stacks.media.launch_template)
    assert asg["LaunchTemplate"]["LaunchTemplateId"] == {"Ref": lt_id}


def test_launch_template(synth: Synth) -> None:
    data = _one(synth, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["InstanceType"].split(".")[0] in {"c7g", "c6g", "c7gn", "c6gn"}
    for mapping in data["BlockDeviceMappings"]:
        assert mapping["Ebs"]["Encrypted"] is True
    assert data["Monitoring"] == {"Enabled": True}
    (nic,) = data["NetworkInterfaces"]
    assert nic["AssociatePublicIpAddress"] is True
    image_param = data["ImageId"]["Ref"]
    parameter = synth.template(synth.stacks.media)["Parameters"][image_param]
    assert parameter["Default"].startswith("/aws/service/ami-amazon-linux-latest/al2023-ami")
    assert parameter["Default"].endswith("arm64")
    assert "KeyName" not in data  # Session Manager only


def _heredoc(script: str, path: str) -> str:
    """The body that the user data writes into ``path`` (``cat > path <<'MARKER'``)."""
    match = re.search(rf"^cat > {re.escape(path)} <<'(\w+)'\n(.*?)\n\1$", script, re.M | re.S)
    assert match, f"the user data does not write {path}"
    return match.group(2)


def _user_data(synth: Synth) -> str:
    return user_data_text(_one(synth, "AWS::EC2::LaunchTemplate"))


def _env(synth: Synth) -> dict[str, str]:
    body = _heredoc(_user_data(synth), media_stack.ENV_FILE)
    return dict(line.split("=", 1) for line in body.splitlines())


def _unit(synth: Synth) -> dict[str, str]:
    body = _heredoc(_user_data(synth), f"/etc/systemd/system/{media_stack.SERVICE_NAME}")
    return dict(line.split("=", 1) for line in body.splitlines() if "=" in line)


START_FLAGS = {
    "--node-id": '"$instance_id"',
    "--instance-id": '"$instance_id"',
    "--control-host": '"$private_ip"',
    "--control-advertise-host": '"$public_ip"',
    "--control-port": '"$TOWNHALL_CONTROL_PORT"',
    "--ice-host": '"$private_ip"',
    "--announced-host": '"$public_ip"',
    "--jwks": '"$TOWNHALL_JWKS_URL"',
    "--registry-table": '"$TOWNHALL_MEDIA_NODES_TABLE"',
    "--asg-name": '"$TOWNHALL_ASG_NAME"',
    "--lifecycle-hook": '"$TOWNHALL_LIFECYCLE_HOOK"',
    "--drain-deadline": '"$TOWNHALL_DRAIN_DEADLINE_SECONDS"',
    "--workers": '"$(nproc)"',
}


def _start_command(script: str) -> tuple[str, dict[str, str]]:
    body = _heredoc(script, media_stack.START_SCRIPT)
    command = body[body.index("exec ") :].replace("\\\n", " ")
    head, _, rest = command.partition(" --")
    words = ("--" + rest).split()
    return head, dict(zip(words[::2], words[1::2], strict=True))


def test_user_data_installs_and_starts_the_real_node(synth: Synth) -> None:
    script = _user_data(synth)
    assert script.startswith("#!/bin/bash")
    assert "set -euo pipefail" in script
    assert "placeholder" not in script
    assert "dnf install -y python3.11 python3.11-pip" in script
    assert "amazon-cloudwatch-agent" in script
    venv = media_stack.VENV_DIR
    assert f"python3.11 -m venv {venv}" in script
    pip = f"{venv}/bin/pip install"
    requirements = f"-r {media_stack.APP_DIR}/media_fleet/requirements.txt"
    (pip_line,) = [line for line in script.splitlines() if line.startswith(pip)]
    assert requirements in pip_line and "--only-binary=:all:" in pip_line
    # Order: code downloaded and unzipped, then dependencies, then the unit enabled.
    steps = [
        "aws s3 cp s3://",
        "unzip -q",
        pip,
        f"systemctl enable --now {media_stack.SERVICE_NAME}",
    ]
    positions = [script.index(step) for step in steps]
    assert positions == sorted(positions)
    assert script.rstrip().endswith(f"systemctl enable --now {media_stack.SERVICE_NAME}")
    assert len(script.encode()) < 16 * 1024 - 2048, "user data is capped at 16 KiB"


def test_start_script_runs_python_m_media_fleet_with_every_flag(synth: Synth) -> None:
    head, flags = _start_command(_user_data(synth))
    assert head.strip() == 'exec "$TOWNHALL_PYTHON" -m media_fleet'
    assert flags == START_FLAGS
    body = _heredoc(_user_data(synth), media_stack.START_SCRIPT)
    for name in ("instance-id", "local-ipv4", "public-ipv4"):
        assert f"$(imds {name})" in body
    assert 'imds() { "$TOWNHALL_PYTHON" -m media_fleet.service.imds "$1"; }' in body
    # The flags are the real node's: its own parser accepts them.
    values = {
        flag: "1" if flag in ("--control-port", "--workers", "--drain-deadline") else "x"
        for flag in flags
    }
    settings = parse([word for pair in values.items() for word in pair])
    assert settings.asg_name == settings.instance_id == "x" and settings.ice_hosts == ("x",)
    checked = subprocess.run(["bash", "-n"], input=body, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_start_script_against_a_fake_imds(synth: Synth, tmp_path: Path) -> None:
    """Run the start script as systemd would, with IMDS on loopback: it reads the identity
    through media_fleet.service.imds and execs the node with it (the node is a stand-in that
    prints its argv)."""
    script = tmp_path / "start-node.sh"
    script.write_text(_heredoc(_user_data(synth), media_stack.START_SCRIPT) + "\n")
    script.chmod(0o755)
    python = tmp_path / "python"
    python.write_text(
        "#!/bin/bash\n"
        'if [ "$2" = media_fleet ]; then printf "%s\\n" "$@"; exit 0; fi\n'
        f'exec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO_ROOT),
        "TOWNHALL_PYTHON": str(python),
        "TOWNHALL_CONTROL_PORT": "7880",
        "TOWNHALL_JWKS_URL": "https://api.example.org/api/.well-known/jwks.json",
        "TOWNHALL_MEDIA_NODES_TABLE": "MediaNodes",
        "TOWNHALL_ASG_NAME": "Townhall-Media-Nodes",
        "TOWNHALL_LIFECYCLE_HOOK": "townhall-media-drain",
        "TOWNHALL_DRAIN_DEADLINE_SECONDS": "780",
    }
    with FakeImds() as fake:
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = fake.url
        ran = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    argv = ran.stdout.split()
    assert argv[:2] == ["-m", "media_fleet"]
    settings = parse(argv[2:])
    assert settings.node_id == settings.instance_id == "i-0123456789abcdef0"
    assert settings.control_host == "10.40.3.7" and settings.ice_hosts == ("10.40.3.7",)
    assert settings.announced_host == "203.0.113.9"
    # Bound on the private IP, registered on the public one, where the signaling Lambda calls.
    assert settings.control_advertise_host == "203.0.113.9"
    assert settings.front_url == "https://203.0.113.9:7880"
    assert settings.control_port == 7880 and settings.drain_deadline_seconds == 780
    assert settings.registry_table == "MediaNodes"
    assert settings.jwks == "https://api.example.org/api/.well-known/jwks.json"
    assert settings.workers == os.cpu_count()
    with FakeImds() as fake:  # no public IPv4: the unit fails (and systemd retries)
        del fake.values["meta-data/public-ipv4"]
        env["AWS_EC2_METADATA_SERVICE_ENDPOINT"] = fake.url
        ran = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode != 0 and "no public-ipv4" in ran.stderr


def test_node_environment(synth: Synth) -> None:
    env = _env(synth)
    media = synth.stacks.media
    assert env["TOWNHALL_PYTHON"] == f"{media_stack.VENV_DIR}/bin/python"
    assert env["PYTHONPATH"] == media_stack.APP_DIR
    assert env["TOWNHALL_ASG_NAME"] == media.asg_name
    assert env["TOWNHALL_LIFECYCLE_HOOK"] == "townhall-media-drain"
    assert env["TOWNHALL_CONTROL_PORT"] == "7880"
    assert mentions(env["TOWNHALL_MEDIA_NODES_TABLE"], "PublishOutputRefMediaNodes")
    # JWKS: the HTTP API's own endpoint, read from the API stack (Media depends on Api).
    jwks = env["TOWNHALL_JWKS_URL"]
    assert jwks.startswith("https://") and ".execute-api.us-east-1." in jwks
    assert '"StackName": "Townhall-Api"' in jwks and "HttpApi" in jwks
    assert jwks.endswith('{"Ref": "AWS::URLSuffix"}/api/.well-known/jwks.json')
    assert synth.stacks.api in media.dependencies
    assert media not in synth.stacks.api.dependencies


def test_drain_deadline_inside_the_hook_and_stop_timeout_above_it(synth: Synth) -> None:
    hook = _one(synth, "AWS::AutoScaling::LifecycleHook")["Properties"]
    deadline = int(_env(synth)["TOWNHALL_DRAIN_DEADLINE_SECONDS"])
    unit = _unit(synth)
    stop_timeout = int(unit["TimeoutStopSec"])
    assert 0 < deadline < hook["HeartbeatTimeout"]
    assert stop_timeout > deadline
    assert deadline == synth.stacks.media.drain_deadline_seconds == 780


def test_systemd_unit(synth: Synth) -> None:
    unit = _unit(synth)
    assert unit["ExecStart"] == media_stack.START_SCRIPT
    assert unit["EnvironmentFile"] == media_stack.ENV_FILE
    assert unit["KillMode"] == "mixed"
    assert unit["KillSignal"] == "SIGTERM"
    assert unit["Restart"] == "on-failure"
    assert unit["StandardOutput"] == f"append:{media_stack.EMF_LOG}"
    assert unit["StandardError"] == f"append:{media_stack.NODE_LOG}"
    assert unit["DynamicUser"] == "yes" and unit["NoNewPrivileges"] == "yes"
    assert unit["WantedBy"] == "multi-user.target"


def test_node_metrics_and_logs_shipped_by_the_cloudwatch_agent(synth: Synth) -> None:
    script = _user_data(synth)
    config = _heredoc(script, media_stack.CW_AGENT_CONFIG)
    node_logs = synth.logical_id(synth.stacks.media.node_logs)
    collected = re.findall(r'"file_path": "([^"]+)"', config)
    assert collected == [media_stack.EMF_LOG, media_stack.NODE_LOG]
    assert config.count(f'{{"Ref": "{node_logs}"}}') == 2
    assert f"fetch-config -m ec2 -s -c file:{media_stack.CW_AGENT_CONFIG}" in script
    # Before its tokens are resolved, the config is the JSON the agent will read.
    parsed = json.loads(synth.stacks.media.cloudwatch_agent_config())
    files = parsed["logs"]["logs_collected"]["files"]["collect_list"]
    assert {f["log_stream_name"] for f in files} == {"{instance_id}/emf", "{instance_id}/node"}
    assert _heredoc(script, "/etc/logrotate.d/townhall-media").startswith("/var/log/townhall/")


def test_ephemeral_ports_inside_the_udp_range(synth: Synth) -> None:
    sysctl = _heredoc(_user_data(synth), media_stack.SYSCTL_FILE)
    assert "net.ipv4.ip_local_port_range = 40000 49999" in sysctl.splitlines()


def test_receive_buffers_may_hold_a_keyframe_burst(synth: Synth) -> None:
    # The room asks for 1 MiB SO_RCVBUF on publisher sockets; the kernel caps it at rmem_max.
    sysctl = _heredoc(_user_data(synth), media_stack.SYSCTL_FILE)
    assert "net.core.rmem_max = 4194304" in sysctl.splitlines()


def test_node_code_asset(synth: Synth) -> None:
    media = synth.stacks.media
    code = media.node_code
    key = media.resolve(code.s3_object_key)
    assert isinstance(key, str) and key.endswith(".zip")
    assert f"/{key} {media_stack.NODE_ROOT}/node.zip" in _user_data(synth)
    staged = synth.outdir / code.asset_path
    shipped = {p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()}
    for needed in (
        "media_fleet/__main__.py",
        "media_fleet/service/imds.py",
        "media_fleet/requirements.txt",
        "contracts/__init__.py",
        "contracts/media_tokens.py",
        "contracts/media_nodes.py",
    ):
        assert needed in shipped
    assert not [p for p in shipped if "__pycache__" in p or p.endswith(".pyc") or "/tests/" in p]
    # The node shares contracts/ with the control plane, and nothing else of functions/.
    assert not [p for p in shipped if not p.startswith(("media_fleet/", "contracts/"))]


def test_node_requirements_are_pinned() -> None:
    lines = [
        line.strip()
        for line in media_stack.NODE_REQUIREMENTS.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert all("==" in line for line in lines), lines
    names = {re.split(r"[\[=]", line)[0].lower() for line in lines}
    assert {"aiortc", "uvicorn", "starlette", "httpx", "boto3", "pyjwt", "cryptography"} <= names
    assert "aiortc==1.16.0" in lines
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "aiortc==1.16.0" in pyproject["project"]["optional-dependencies"]["media"]


def test_jwks_url_from_context_and_refused_without_a_source() -> None:
    app = cdk.App(
        context={
            media_stack.JWKS_CONTEXT_KEY: "https://townhall.example.org/api/.well-known/jwks.json"
        }
    )
    settings = Settings()
    data = DataStack(app, "Data", env=cdk.Environment(region=settings.region))
    media = media_stack.MediaStack(
        app, "Media", env=cdk.Environment(region=settings.region), settings=settings, data=data
    )
    assert media.jwks_url == "https://townhall.example.org/api/.well-known/jwks.json"
    lonely = cdk.App()
    lonely_data = DataStack(lonely, "Data", env=cdk.Environment(region=settings.region))
    with pytest.raises(ValueError, match="JWKS URL"):
        media_stack.MediaStack(
            lonely,
            "Media",
            env=cdk.Environment(region=settings.region),
            settings=settings,
            data=lonely_data,
        )


def test_node_code_files_skip_tests_and_caches() -> None:
    shipped = [target for _, target in media_stack.node_code_files()]
    assert len(shipped) == len(set(shipped))
    assert not [t for t in shipped if "__pycache__" in t or t.endswith((".pyc", ".pyo"))]
    assert "media_fleet/service/imds.py" in shipped and "contracts/node_api.py" in shipped
    assert not [t for t in shipped if t.startswith(("townhall/", "handlers/"))]


def test_security_group(synth: Synth) -> None:
    sg = _one(synth, "AWS::EC2::SecurityGroup")["Properties"]
    ingress = sg["SecurityGroupIngress"]
    udp = [r for r in ingress if r["IpProtocol"] == "udp"]
    assert udp == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "ICE/DTLS/SRTP media from browsers",
            "FromPort": 40000,
            "IpProtocol": "udp",
            "ToPort": 49999,
        }
    ]
    # The control API, for the signaling Lambda (outside any VPC): TLS, pinned, token per call.
    tcp = [r for r in ingress if r["IpProtocol"] == "tcp"]
    assert tcp == [
        {
            "CidrIp": "0.0.0.0/0",
            "Description": "Node control API: TLS, pinned certificate, media token per request",
            "FromPort": synth.stacks.media.settings.media_control_port,
            "IpProtocol": "tcp",
            "ToPort": synth.stacks.media.settings.media_control_port,
        }
    ]
    assert len(ingress) == 2
    sg_path = synth.stacks.media.security_group.node.path
    (ec23,) = {
        a.reason for a in nag.REGISTRY if a.path == sg_path and a.rule == "AwsSolutions-EC23"
    }
    assert "pins" in ec23 and "media token" in ec23 and "outside any VPC" in ec23


def test_vpc_public_only_with_flow_logs(synth: Synth) -> None:
    media = synth.stacks.media
    assert synth.resources(media, "AWS::EC2::NatGateway") == {}
    subnets = synth.resources(media, "AWS::EC2::Subnet")
    assert len(subnets) == 2
    assert all(s["Properties"]["MapPublicIpOnLaunch"] is True for s in subnets.values())
    flow = _one(synth, "AWS::EC2::FlowLog")["Properties"]
    assert flow["TrafficType"] == "ALL"
    assert flow["ResourceType"] == "VPC"
    endpoint = _one(synth, "AWS::EC2::VPCEndpoint")["Properties"]
    assert endpoint["VpcEndpointType"] == "Gateway"
    assert mentions(endpoint["ServiceName"], "dynamodb")


def test_scaling_on_custom_metric(synth: Synth) -> None:
    policy = _one(synth, "AWS::AutoScaling::ScalingPolicy")["Properties"]
    assert policy["PolicyType"] == "TargetTrackingScaling"
    config = policy["TargetTrackingConfiguration"]
    assert config["TargetValue"] == 60
    assert config["CustomizedMetricSpecification"] == {
        "Namespace": "Townhall/Media",
        "MetricName": "NodeLoad",
        "Dimensions": [{"Name": "AutoScalingGroupName", "Value": synth.stacks.media.asg_name}],
        "Statistic": "Average",
    }
    asg = _one(synth, "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    assert asg["AutoScalingGroupName"] == synth.stacks.media.asg_name


def test_drain_lifecycle_hook(synth: Synth) -> None:
    hook = _one(synth, "AWS::AutoScaling::LifecycleHook")["Properties"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["DefaultResult"] == "CONTINUE"
    assert hook["HeartbeatTimeout"] == 15 * 60


def test_scaling_notifications(synth: Synth) -> None:
    asg = _one(synth, "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    (config,) = asg["NotificationConfigurations"]
    assert len(config["NotificationTypes"]) == 4


def test_node_role(synth: Synth) -> None:
    media = synth.stacks.media
    role_id = synth.logical_id(media.role)
    role = synth.template(media)["Resources"][role_id]["Properties"]
    assert mentions(role["ManagedPolicyArns"], "AmazonSSMManagedInstanceCore")
    assert len(role["ManagedPolicyArns"]) == 1
    statements = policy_statements(synth.template(media), role_id)

    (metrics,) = [s for s in statements if "cloudwatch:PutMetricData" in actions(s)]
    assert actions(metrics) == {"cloudwatch:PutMetricData"}
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Townhall/Media"}}

    ddb = [s for s in statements if any(a.startswith("dynamodb:") for a in actions(s))]
    (table_statement,) = ddb
    assert actions(table_statement) == set(DDB_WRITE)
    assert not actions(table_statement) & (set(DDB_READ) - set(DDB_WRITE))
    media_nodes = synth.logical_id(synth.stacks.data.tables["MediaNodes"])
    (resource,) = as_list(table_statement["Resource"])
    assert mentions(resource, media_nodes)

    (lifecycle,) = [s for s in statements if mentions(s, "autoscaling:")]
    assert actions(lifecycle) == {
        "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat",
    }
    (arn,) = as_list(lifecycle["Resource"])
    assert mentions(arn, f":autoScalingGroupName/{media.asg_name}")

    for statement in statements:
        if "*" in as_list(statement["Resource"]):
            assert actions(statement) == {"cloudwatch:PutMetricData"}

    (logs_statement,) = [s for s in statements if any(a.startswith("logs:") for a in actions(s))]
    node_logs = synth.logical_id(media.node_logs)
    assert as_list(logs_statement["Resource"]) == [{"Fn::GetAtt": [node_logs, "Arn"]}]


def test_node_role_reads_only_its_code_object(synth: Synth) -> None:
    media = synth.stacks.media
    statements = policy_statements(synth.template(media), synth.logical_id(media.role))
    s3 = [s for s in statements if any(a.startswith("s3:") for a in actions(s))]
    (read,) = s3
    assert actions(read) == {"s3:GetObject"}
    (resource,) = as_list(read["Resource"])
    key = media.resolve(media.node_code.s3_object_key)
    rendered = json.dumps(resource)
    assert rendered.endswith(f'/{key}"]]}}') and "cdk-hnb659fds-assets-" in rendered
    assert "*" not in rendered


def test_node_role_has_no_secret_access(synth: Synth) -> None:
    media = synth.stacks.media
    statements = policy_statements(synth.template(media), synth.logical_id(media.role))
    secret = synth.logical_id(synth.stacks.data.signing_secret)
    for statement in statements:
        assert not any(a.startswith("secretsmanager:") for a in actions(statement)), statement
        assert not mentions(statement, secret) and not mentions(statement, "SigningSecret")
        if any(a.startswith("kms:") for a in actions(statement)):
            assert statement["Condition"] == {
                "StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}
            }
    assert not mentions(_user_data(synth), "secretsmanager")
