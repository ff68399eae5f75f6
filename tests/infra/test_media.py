"""Media stack: VPC, security group, node role, launch template, Auto Scaling group."""

from __future__ import annotations

import ast
from typing import Any

import pytest

from infra.stacks.config import ASSETS_DIR
from infra.stacks.grants import DDB_READ, DDB_WRITE

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


def test_user_data_installs_the_placeholder_service(synth: Synth) -> None:
    script = user_data_text(_one(synth, "AWS::EC2::LaunchTemplate"))
    assert script.startswith("#!/bin/bash")
    assert "/etc/systemd/system/townhall-media.service" in script
    assert "systemctl enable --now townhall-media.service" in script
    assert "ExecStart=/usr/bin/python3 /opt/townhall/media/placeholder.py" in script
    assert len(script.encode()) < 16 * 1024 - 2048, "user data is capped at 16 KiB"


def test_placeholder_script_is_valid_python_3_9() -> None:
    source = (ASSETS_DIR / "media_placeholder.py").read_text()
    ast.parse(source, feature_version=(3, 9))
    assert "complete_lifecycle_action" in source and "put_metric_data" in source


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
    tcp = [r for r in ingress if r["IpProtocol"] == "tcp"]
    assert len(tcp) == 1 and tcp[0]["FromPort"] == tcp[0]["ToPort"]
    vpc_id = synth.logical_id(synth.stacks.media.vpc)
    assert tcp[0]["CidrIp"] == {"Fn::GetAtt": [vpc_id, "CidrBlock"]}
    assert len(ingress) == 2


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
