"""TURN stack: coturn on its own Auto Scaling group (Ubuntu, configured by user data), the NLB
in front (UDP and TCP 3478, TLS 443 with a domain), the shared secret and who may read it."""

from __future__ import annotations

import grp
import ipaddress
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from cdk_nag import AwsSolutionsChecks

from infra.stacks import nag
from infra.stacks import turn as turn_stack
from infra.stacks.config import Settings
from infra.stacks.data import DataStack
from tests.media.test_imds import FakeImds
from townhall import functions

from .conftest import TURN_TLS_CONTEXT, Synth, TurnTls
from .helpers import actions, as_list, mentions, policy_statements, user_data_text

pytestmark = pytest.mark.infra


def _resources(synth: Synth, cfn_type: str) -> dict[str, dict[str, Any]]:
    return synth.resources(synth.stacks.turn, cfn_type)


def _one(synth: Synth, cfn_type: str) -> dict[str, Any]:
    (resource,) = _resources(synth, cfn_type).values()
    return resource


def _heredoc(script: str, path: str) -> str:
    match = re.search(rf"^cat > {re.escape(path)} <<'(\w+)'\n(.*?)\n\1$", script, re.M | re.S)
    assert match, f"the user data does not write {path}"
    return match.group(2)


def _user_data(template: dict[str, Any]) -> str:
    (lt,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::LaunchTemplate"]
    return user_data_text(lt)


def _config_lines(script: str) -> list[str]:
    return _heredoc(script, turn_stack.CONFIG_TEMPLATE).splitlines()


# -- the servers ---------------------------------------------------------------------------


def test_launch_template(synth: Synth) -> None:
    data = _one(synth, "AWS::EC2::LaunchTemplate")["Properties"]["LaunchTemplateData"]
    assert data["MetadataOptions"] == {"HttpPutResponseHopLimit": 1, "HttpTokens": "required"}
    assert data["InstanceType"] == "t4g.small"  # Graviton, like the media nodes
    (disk,) = data["BlockDeviceMappings"]
    assert disk["DeviceName"] == "/dev/sda1" and disk["Ebs"]["Encrypted"] is True
    assert data["Monitoring"] == {"Enabled": True}  # 1-minute NetworkOut for scaling
    (nic,) = data["NetworkInterfaces"]
    assert nic["AssociatePublicIpAddress"] is True
    parameter = synth.template(synth.stacks.turn)["Parameters"][data["ImageId"]["Ref"]]
    # Ubuntu 24.04 arm64 (coturn is an Ubuntu package; Amazon Linux 2023 has none).
    assert parameter["Default"] == turn_stack.UBUNTU_AMI_PARAMETER
    assert "/ubuntu/server/24.04/" in parameter["Default"] and "/arm64/" in parameter["Default"]
    assert "KeyName" not in data  # Session Manager only


def test_group_scales_on_relayed_bytes_behind_the_nlb(synth: Synth) -> None:
    turn = synth.stacks.turn
    asg = _one(synth, "AWS::AutoScaling::AutoScalingGroup")["Properties"]
    assert asg["AutoScalingGroupName"] == turn.asg_name == "Townhall-Turn-Servers"
    assert (asg["MinSize"], asg["MaxSize"]) == ("1", "4")
    assert asg["HealthCheckType"] == "ELB"
    assert asg["TargetGroupARNs"] == [{"Ref": synth.logical_id(turn.turn_targets)}]
    (notifications,) = asg["NotificationConfigurations"]
    assert notifications["TopicARN"] == {"Ref": synth.logical_id(turn.scaling_events)}
    policy = _one(synth, "AWS::AutoScaling::ScalingPolicy")["Properties"]
    tracking = policy["TargetTrackingConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "ASGAverageNetworkOut"
    }
    # 100 Mbit/s per instance, as bytes per minute.
    assert tracking["TargetValue"] == 100 * 1_000_000 // 8 * 60
    # No launch template, group or role of the media fleet is shared.
    assert (
        synth.stacks.media not in turn.dependencies and turn not in synth.stacks.media.dependencies
    )


def test_user_data_installs_coturn_with_its_service_held_back(synth: Synth) -> None:
    script = _user_data(synth.template(synth.stacks.turn))
    assert script.startswith("#!/bin/bash\nset -euo pipefail\n")
    steps = [
        "> /usr/sbin/policy-rc.d",  # no service starts during the install ...
        "install -y -q --no-install-recommends coturn python3-boto3",
        "rm -f /usr/sbin/policy-rc.d",  # ... and the block is lifted right after
        f"cat > {turn_stack.CONFIG_TEMPLATE} ",
        f"cat > {turn_stack.CONFIG_SCRIPT} ",
        f"cat > {turn_stack.UNIT_DROP_IN} ",
        "systemctl enable coturn",
        "systemctl restart coturn",
    ]
    positions = [script.index(step) for step in steps]
    assert positions == sorted(positions)
    assert script.rstrip().endswith("systemctl restart coturn")
    assert "exit 101" in script  # policy-rc.d's "action forbidden"
    assert len(script.encode()) < 16 * 1024 - 2048, "user data is capped at 16 KiB"
    checked = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
    assert checked.returncode == 0, checked.stderr


def test_coturn_configuration(synth: Synth) -> None:
    lines = _config_lines(_user_data(synth.template(synth.stacks.turn)))
    for line in (
        "listening-port=3478",
        "min-port=49152",
        "max-port=65535",
        "use-auth-secret",
        "realm=townhall",
        "fingerprint",
        "no-cli",
        "no-multicast-peers",
        "no-tcp-relay",
        "no-tls",
        "no-dtls",
        f"log-file={turn_stack.TURN_LOG}",
    ):
        assert line in lines, line
    # The addresses and the secret are added on the instance, at each start.
    assert not [x for x in lines if x.startswith(("static-auth-secret", "external-ip"))]
    assert not [x for x in lines if x.startswith(("allowed-peer-ip", "lt-cred-mech", "user="))]


def _denied(lines: list[str]) -> list[tuple[Any, Any]]:
    ranges = []
    for line in lines:
        if line.startswith("denied-peer-ip="):
            first, last = line.removeprefix("denied-peer-ip=").split("-")
            ranges.append((ipaddress.ip_address(first), ipaddress.ip_address(last)))
    return ranges


def _is_denied(ranges: list[tuple[Any, Any]], address: str) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip.version == a.version and a <= ip <= b for a, b in ranges)


def test_no_relay_into_private_networks_or_the_metadata_service(synth: Synth) -> None:
    ranges = _denied(_config_lines(_user_data(synth.template(synth.stacks.turn))))
    for address in (
        "169.254.169.254",  # IMDS
        "169.254.169.253",  # Amazon DNS
        "169.254.169.123",  # Amazon Time Sync
        "fd00:ec2::254",  # IMDS over IPv6
        "::ffff:169.254.169.254",  # the same, IPv4-mapped
        "10.40.3.7",  # a media node's private address
        "10.41.0.10",  # this VPC
        "10.41.0.2",  # this VPC's DNS resolver
        "172.31.0.2",  # a default VPC
        "192.168.1.1",
        "127.0.0.1",
        "::1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.251",
        "255.255.255.255",
        "fe80::1",
    ):
        assert _is_denied(ranges, address), address
    # Media nodes announce public addresses only: those stay reachable.
    for address in ("203.0.114.9", "54.210.1.2", "3.5.140.2", "2600:1f18:4a3:6901::1"):
        assert not _is_denied(ranges, address), address
    assert synth.stacks.turn.vpc.vpc_cidr_block != synth.stacks.media.vpc.vpc_cidr_block


def test_no_secret_in_user_data_or_template(synth: Synth) -> None:
    turn = synth.stacks.turn
    template = synth.template(turn)
    script = _user_data(template)
    assert not re.search(r"static-auth-secret=[A-Za-z0-9]", script)
    assert "resolve:secretsmanager" not in json.dumps(template)
    for stack in synth.stacks.all():
        assert "resolve:secretsmanager" not in json.dumps(synth.template(stack)), stack
    env = dict(line.split("=", 1) for line in _heredoc(script, turn_stack.ENV_FILE).splitlines())
    # The secret's ARN, read from the data stack; the value is fetched on the instance.
    assert mentions(env["TURN_SECRET_ARN"], synth.logical_id(synth.stacks.data.turn_secret))
    assert env["TURN_CONFIG_TEMPLATE"] == turn_stack.CONFIG_TEMPLATE


def test_coturn_unit_makes_its_config_before_each_start(synth: Synth) -> None:
    script = _user_data(synth.template(synth.stacks.turn))
    unit = dict(
        line.split("=", 1)
        for line in _heredoc(script, turn_stack.UNIT_DROP_IN).splitlines()
        if "=" in line
    )
    assert unit["ExecStartPre"] == f"+{turn_stack.CONFIG_SCRIPT}"  # as root, then coturn's user
    assert unit["EnvironmentFile"] == turn_stack.ENV_FILE
    assert unit["Restart"] == "always"
    shipped = _heredoc(script, turn_stack.CONFIG_SCRIPT)
    assert shipped == (turn_stack.ASSETS_DIR / "turn_config.py").read_text().rstrip()
    config = json.loads(synth.stacks.turn.cloudwatch_agent_config())
    (collected,) = config["logs"]["logs_collected"]["files"]["collect_list"]
    assert collected["file_path"] == turn_stack.TURN_LOG
    assert f"-c file:{turn_stack.CW_AGENT_CONFIG}" in script


FAKE_BOTO3 = """
import json, os

class ResourceNotFoundException(Exception):
    pass

class _Client:
    class exceptions:
        ResourceNotFoundException = ResourceNotFoundException

    def get_secret_value(self, SecretId, VersionStage):
        with open(os.environ["FAKE_CALLS"], "a") as calls:
            calls.write(f"{SecretId} {VersionStage}\\n")
        versions = json.loads(os.environ["FAKE_SECRETS"])
        if VersionStage not in versions:
            raise ResourceNotFoundException(VersionStage)
        return {"SecretString": versions[VersionStage]}

def client(service, region_name=None):
    assert service == "secretsmanager" and region_name == "us-east-1"
    return _Client()
"""


@pytest.fixture
def config_run(synth: Synth, tmp_path: Path) -> Iterator[Any]:
    """Run the shipped townhall-turn-config against a fake IMDS and a fake Secrets Manager."""
    script = _user_data(synth.template(synth.stacks.turn))
    program = tmp_path / "townhall-turn-config"
    program.write_text(_heredoc(script, turn_stack.CONFIG_SCRIPT) + "\n")
    template = tmp_path / "turnserver.conf.in"
    template.write_text(_heredoc(script, turn_stack.CONFIG_TEMPLATE) + "\n")
    fake_modules = tmp_path / "fake"
    fake_modules.mkdir()
    (fake_modules / "boto3.py").write_text(FAKE_BOTO3)

    with FakeImds() as imds:

        def run(versions: dict[str, str]) -> subprocess.CompletedProcess[str]:
            env = {
                "PATH": os.environ["PATH"],
                "PYTHONPATH": str(fake_modules),
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": imds.url,
                "AWS_REGION": "us-east-1",
                "TURN_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:Turn-x",
                "TURN_CONFIG_TEMPLATE": str(template),
                "TURN_CONFIG": str(tmp_path / "turnserver.conf"),
                "TURN_CONFIG_GROUP": grp.getgrgid(os.getgid()).gr_name,
                "FAKE_SECRETS": json.dumps(versions),
                "FAKE_CALLS": str(tmp_path / "calls"),
            }
            return subprocess.run(
                [sys.executable, str(program)], env=env, capture_output=True, text=True, timeout=30
            )

        yield run


CURRENT = "A" * 40 + "current1"
PENDING = "B" * 40 + "pending2"


def test_config_script_writes_addresses_and_every_live_secret(
    config_run: Any, tmp_path: Path
) -> None:
    ran = config_run({"AWSCURRENT": CURRENT, "AWSPENDING": PENDING})
    assert ran.returncode == 0, ran.stderr
    written = tmp_path / "turnserver.conf"
    lines = written.read_text().splitlines()
    assert lines[-5:] == [
        "listening-ip=10.40.3.7",
        "relay-ip=10.40.3.7",
        "external-ip=203.0.113.9/10.40.3.7",
        f"static-auth-secret={CURRENT}",
        f"static-auth-secret={PENDING}",
    ]
    assert "use-auth-secret" in lines and "realm=townhall" in lines
    assert written.stat().st_mode & 0o777 == 0o640
    # AWSPREVIOUS was asked for and is absent (nothing rotated yet): fine.
    calls = (tmp_path / "calls").read_text().split()
    assert calls[1::2] == ["AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"]
    assert CURRENT not in ran.stdout + ran.stderr and PENDING not in ran.stdout + ran.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".turnserver.")]


def test_config_script_refuses_an_unusable_secret_without_printing_it(
    config_run: Any, tmp_path: Path
) -> None:
    bad = "with spaces and punctuation; " * 3
    ran = config_run({"AWSCURRENT": bad})
    assert ran.returncode != 0
    assert "AWSCURRENT secret is not 32+ letters/digits" in ran.stderr
    assert "punctuation" not in ran.stdout + ran.stderr
    assert not (tmp_path / "turnserver.conf").exists()
    ran = config_run({})  # no secret at all: coturn does not start
    assert ran.returncode != 0 and not (tmp_path / "turnserver.conf").exists()


# -- network -------------------------------------------------------------------------------


def test_server_security_group(synth: Synth) -> None:
    turn = synth.stacks.turn
    groups = _resources(synth, "AWS::EC2::SecurityGroup")
    servers = groups[synth.logical_id(turn.security_group)]["Properties"]
    rules = {
        (r["IpProtocol"], r["FromPort"], r["ToPort"], r["CidrIp"])
        for r in servers["SecurityGroupIngress"]
    }
    assert rules == {
        ("udp", 3478, 3478, "0.0.0.0/0"),
        ("tcp", 3478, 3478, "0.0.0.0/0"),
        ("udp", 49152, 65535, "0.0.0.0/0"),  # the relay range, straight to the instance
    }
    assert len(servers["SecurityGroupIngress"]) == 3  # no SSH, nothing else
    reasons = {a.reason for a in nag.REGISTRY if a.path == turn.security_group.node.path}
    (ec23,) = reasons
    assert "World-open is the point" in ec23 and "metadata" in ec23


def test_load_balancer_security_group(synth: Synth) -> None:
    turn = synth.stacks.turn
    template = synth.template(turn)
    nlb_group = template["Resources"][synth.logical_id(turn.nlb_security_group)]["Properties"]
    ingress = {
        (r["IpProtocol"], r["FromPort"], r["CidrIp"]) for r in nlb_group["SecurityGroupIngress"]
    }
    assert ingress == {("udp", 3478, "0.0.0.0/0"), ("tcp", 3478, "0.0.0.0/0")}  # no 443: no TLS
    servers = synth.logical_id(turn.security_group)
    egress = nlb_group["SecurityGroupEgress"]
    assert {(r["IpProtocol"], r["FromPort"]) for r in egress} == {("udp", 3478), ("tcp", 3478)}
    assert all(
        r["DestinationSecurityGroupId"] == {"Fn::GetAtt": [servers, "GroupId"]} for r in egress
    )


def test_load_balancer_without_tls(synth: Synth) -> None:
    turn = synth.stacks.turn
    nlb = _one(synth, "AWS::ElasticLoadBalancingV2::LoadBalancer")["Properties"]
    assert nlb["Type"] == "network" and nlb["Scheme"] == "internet-facing"
    assert {"Key": "load_balancing.cross_zone.enabled", "Value": "true"} in nlb[
        "LoadBalancerAttributes"
    ]
    (listener,) = _resources(synth, "AWS::ElasticLoadBalancingV2::Listener").values()
    assert listener["Properties"]["Port"] == 3478
    assert listener["Properties"]["Protocol"] == "TCP_UDP"  # UDP and TCP on one port
    (target_group,) = _resources(synth, "AWS::ElasticLoadBalancingV2::TargetGroup").values()
    props = target_group["Properties"]
    assert (props["Protocol"], props["Port"], props["TargetType"]) == ("TCP_UDP", 3478, "instance")
    assert (props["HealthCheckProtocol"], props["HealthCheckPort"]) == ("TCP", "3478")
    assert turn.tls_listener is None
    # The stack says so: an output and a synth-time warning.
    outputs = synth.template(turn)["Outputs"]
    assert outputs["TurnTls"]["Value"].startswith("No TURN over TLS: no domain given")
    warnings = [str(entry.data) for entry in turn.node.metadata if entry.type == "aws:cdk:warning"]
    assert any("No TURN over TLS" in w for w in warnings)
    assert "LoadBalancerDnsName" in "".join(outputs)


def test_load_balancer_with_tls(turn_tls: TurnTls) -> None:
    turn, template = turn_tls.turn, turn_tls.template
    listeners = {
        r["Properties"]["Port"]: r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ElasticLoadBalancingV2::Listener"
    }
    assert set(listeners) == {3478, 443}
    tls = listeners[443]
    assert tls["Protocol"] == "TLS"
    assert tls["Certificates"] == [
        {"CertificateArn": TURN_TLS_CONTEXT["townhall:turnCertificateArn"]}
    ]
    assert tls["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    (action,) = tls["DefaultActions"]
    target_group = template["Resources"][action["TargetGroupArn"]["Ref"]]["Properties"]
    # TLS ends at the NLB: plain TURN over TCP to coturn's 3478.
    assert (target_group["Protocol"], target_group["Port"]) == ("TCP", 3478)
    nlb_group = template["Resources"][Synth.logical_id(turn.nlb_security_group)]
    assert ("tcp", 443) in {
        (r["IpProtocol"], r["FromPort"]) for r in nlb_group["Properties"]["SecurityGroupIngress"]
    }
    urls = turn.resolve(turn.client_urls)
    assert urls[2] == "turns:turn.example.com:443?transport=tcp"
    assert [u["Fn::Join"][1][-1] for u in urls[:2]] == [
        ":3478?transport=udp",
        ":3478?transport=tcp",
    ]
    assert template["Outputs"]["TurnTls"]["Value"] == "turns:turn.example.com:443?transport=tcp"
    assert "realm=turn.example.com" in _config_lines(_user_data(template))
    assert not [e for e in turn.node.metadata if "TURN over TLS" in str(e.data)]


def test_tls_variant_is_nag_clean(turn_tls: TurnTls) -> None:
    result = AwsSolutionsChecks().validate_scope(turn_tls.app)
    assert [v.rule_name for v in result.violations] == []


def test_tls_needs_both_domain_and_certificate() -> None:
    app = cdk.App(context={"townhall:turnDomain": "turn.example.com"})
    settings = Settings.from_context(app)
    data = DataStack(app, "Data", env=cdk.Environment(region=settings.region))
    with pytest.raises(ValueError, match="both"):
        turn_stack.TurnStack(app, "Turn", settings=settings, data=data)


# -- the secret and who reads it -------------------------------------------------------------


def test_turn_secret(synth: Synth) -> None:
    data = synth.stacks.data
    secret = synth.template(data)["Resources"][synth.logical_id(data.turn_secret)]
    generate = secret["Properties"]["GenerateSecretString"]
    # A bare string (what townhall.auth.turn_secret and coturn read): no template, no JSON.
    assert generate == {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 64}
    assert secret["Properties"]["KmsKeyId"] == {
        "Fn::GetAtt": [synth.logical_id(data.data_key), "Arn"]
    }
    assert secret["DeletionPolicy"] == "Retain"
    (smg4,) = [a for a in nag.REGISTRY if a.path == data.turn_secret.node.path and "SMG4" in a.rule]
    assert "AWSPENDING" in smg4.reason


def _roles_reading(synth: Synth, secret_id: str) -> set[str]:
    """(stack, role) of every role with a secretsmanager statement naming the secret."""
    readers = set()
    for stack in synth.stacks.all():
        template = synth.template(stack)
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role":
                continue
            for statement in policy_statements(template, logical_id):
                if any(a.startswith("secretsmanager:") for a in actions(statement)) and mentions(
                    statement["Resource"], secret_id
                ):
                    readers.add(f"{stack.stack_name}/{logical_id}")
    return readers


def test_turn_secret_read_by_the_servers_and_the_minting_function_only(synth: Synth) -> None:
    api, turn = synth.stacks.api, synth.stacks.turn
    expected = {f"{turn.stack_name}/{synth.logical_id(turn.role)}"}
    for spec in functions.ALL_FUNCTIONS:
        if spec.mints_turn_credentials:
            role = api.functions[spec.logical_id].role
            assert role is not None
            expected.add(f"{api.stack_name}/{synth.logical_id(role)}")
    assert len(expected) == 2  # the servers and WsSignaling
    assert _roles_reading(synth, synth.logical_id(synth.stacks.data.turn_secret)) == expected


def test_server_role(synth: Synth) -> None:
    turn = synth.stacks.turn
    template = synth.template(turn)
    role_id = synth.logical_id(turn.role)
    role = template["Resources"][role_id]["Properties"]
    (managed,) = role["ManagedPolicyArns"]
    assert mentions(managed, "AmazonSSMManagedInstanceCore")
    statements = {s["Sid"]: s for s in policy_statements(template, role_id)}
    assert set(statements) == {"WriteTurnLogs", "ReadTurnSecret", "DecryptTurnSecret"}
    assert actions(statements["ReadTurnSecret"]) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    (secret,) = as_list(statements["ReadTurnSecret"]["Resource"])
    assert mentions(secret, synth.logical_id(synth.stacks.data.turn_secret))
    assert not mentions(secret, "SigningKeySecret")
    decrypt = statements["DecryptTurnSecret"]
    assert actions(decrypt) == {"kms:Decrypt"}
    assert decrypt["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}
    }
    assert as_list(statements["WriteTurnLogs"]["Resource"]) == [
        {"Fn::GetAtt": [synth.logical_id(turn.logs), "Arn"]}
    ]
    for statement in statements.values():
        assert "*" not in as_list(statement["Resource"])


def test_signaling_function_gets_the_turn_urls_and_secret(synth: Synth) -> None:
    api, turn = synth.stacks.api, synth.stacks.turn
    for spec in functions.ALL_FUNCTIONS:
        fn = synth.template(api)["Resources"][synth.logical_id(api.functions[spec.logical_id])]
        env = fn["Properties"]["Environment"]["Variables"]
        # The nodes' side relays only when the deployer asks (townhall:turnForMediaNodes).
        assert functions.ENV_TURN_MEDIA_NODE_URLS not in env
        if not spec.mints_turn_credentials:
            assert functions.ENV_TURN_URLS not in env and functions.ENV_TURN_SECRET_ARN not in env
            continue
        assert mentions(env[functions.ENV_TURN_SECRET_ARN], "TurnSecret")
        joined = env[functions.ENV_TURN_URLS]["Fn::Join"][1]
        nlb_dns = {
            "Fn::GetStackOutput": {
                "StackName": turn.stack_name,
                "Region": "us-east-1",
                "OutputName": joined[1]["Fn::GetStackOutput"]["OutputName"],
            }
        }
        assert "LoadBalancer" in nlb_dns["Fn::GetStackOutput"]["OutputName"]
        assert joined == [
            "turn:",
            nlb_dns,
            ":3478?transport=udp turn:",
            nlb_dns,
            ":3478?transport=tcp",
        ]
    assert turn in api.dependencies and api not in turn.dependencies
    assert turn.dependencies == [synth.stacks.data]


def test_media_nodes_relay_over_udp_only_and_only_when_asked(synth: Synth) -> None:
    assert Settings().turn_for_media_nodes is False
    asked = Settings.from_context(cdk.App(context={"townhall:turnForMediaNodes": "true"}))
    assert asked.turn_for_media_nodes is True
    (url,) = synth.stacks.turn.media_node_urls()
    assert url.startswith("turn:") and url.endswith(":3478?transport=udp"), url
