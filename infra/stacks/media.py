"""The media fleet: VPC, security group, instance role, launch template and Auto Scaling group.

The SFU nodes sit in public subnets with public IPv4 addresses: browsers send ICE/DTLS/SRTP
over UDP straight to a node, so each node needs a public address anyway, and a NAT gateway
would add about $32 a month per AZ plus per-GB charges for traffic that does not need it.
Nothing listens publicly but the UDP media range; the TCP control port is open to the VPC
only, and administration is through SSM Session Manager (no SSH, no key pair). DynamoDB is
reached through a free gateway endpoint.
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from .config import (
    ASSETS_DIR,
    MEDIA_DRAIN_HOOK_NAME,
    MEDIA_LOAD_METRIC,
    MEDIA_METRICS_NAMESPACE,
    Settings,
    retention,
)
from .data import DataStack
from .grants import grant_table
from .nag import acknowledge, acknowledge_wildcard_resource

from townhall import schema  # isort: skip

SERVICE_NAME = "townhall-media.service"
PLACEHOLDER_PATH = "/opt/townhall/media/placeholder.py"


class MediaStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        # A fixed name lets the instance role, the user data and the dashboards name the group
        # without a reference cycle (launch template -> user data -> group -> launch template).
        self.asg_name = f"{self.stack_name}-Nodes"

        flow_logs = logs.LogGroup(
            self,
            "VpcFlowLogs",
            retention=retention(settings.access_log_retention_days),
            encryption_key=data.logs_key,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr("10.40.0.0/16"),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=20
                )
            ],
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )
        self.vpc.add_gateway_endpoint(
            "DynamoDbEndpoint", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "NodeSecurityGroup",
            vpc=self.vpc,
            description="Townhall media nodes: UDP media from anywhere, control from the VPC",
            allow_all_outbound=True,
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.udp_range(settings.media_udp_port_min, settings.media_udp_port_max),
            "ICE/DTLS/SRTP media from browsers",
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.ipv4(self.vpc.vpc_cidr_block),
            ec2.Port.tcp(settings.media_control_port),
            "Node control port, VPC only",
        )
        acknowledge(
            self.security_group,
            "AwsSolutions-EC23",
            "Media nodes must accept UDP from any browser on the Internet (ICE/DTLS/SRTP); "
            "only the UDP media port range is open to 0.0.0.0/0, and the TCP control port is "
            "limited to the VPC CIDR.",
        )

        self.node_logs = logs.LogGroup(
            self,
            "NodeLogs",
            retention=retention(settings.log_retention_days),
            encryption_key=data.logs_key,
        )
        self.role = self._node_role(data)
        self.launch_template = ec2.LaunchTemplate(
            self,
            "NodeLaunchTemplate",
            machine_image=ec2.MachineImage.latest_amazon_linux2023(
                cpu_type=ec2.AmazonLinuxCpuType.ARM_64
            ),
            instance_type=ec2.InstanceType(settings.media_instance_type),
            role=self.role,
            security_group=self.security_group,
            associate_public_ip_address=True,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            detailed_monitoring=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        16,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
            user_data=self._user_data(data),
        )

        # Scaling events go to a topic of their own. It uses the AWS-managed SNS key because
        # Auto Scaling publishes with its service-linked role, which the managed key's policy
        # admits and a customer key's policy could only name once that role exists.
        self.scaling_events = sns.Topic(
            self,
            "ScalingEvents",
            display_name="Townhall media fleet scaling events",
            master_key=kms.Alias.from_alias_name(self, "SnsManagedKey", "alias/aws/sns"),
            enforce_ssl=True,
        )

        self.asg = autoscaling.AutoScalingGroup(
            self,
            "Nodes",
            auto_scaling_group_name=self.asg_name,
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            launch_template=self.launch_template,
            min_capacity=settings.media_min_capacity,
            max_capacity=settings.media_max_capacity,
            cooldown=cdk.Duration.minutes(5),
            default_instance_warmup=cdk.Duration.minutes(3),
            health_checks=autoscaling.HealthChecks.ec2(grace_period=cdk.Duration.minutes(3)),
            group_metrics=[autoscaling.GroupMetrics.all()],
            notifications=[autoscaling.NotificationConfiguration(topic=self.scaling_events)],
        )
        self.asg.scale_to_track_metric(
            "NodeLoadTracking",
            metric=self.node_load_metric(),
            target_value=settings.media_target_load,
        )
        self.drain_hook = self.asg.add_lifecycle_hook(
            "Drain",
            lifecycle_hook_name=MEDIA_DRAIN_HOOK_NAME,
            lifecycle_transition=autoscaling.LifecycleTransition.INSTANCE_TERMINATING,
            heartbeat_timeout=cdk.Duration.minutes(settings.media_drain_minutes),
            default_result=autoscaling.DefaultResult.CONTINUE,
        )

        cdk.CfnOutput(self, "MediaNodesGroupName", value=self.asg_name)
        cdk.CfnOutput(self, "ScalingEventsTopicArn", value=self.scaling_events.topic_arn)

    def node_load_metric(self, period: cdk.Duration | None = None) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace=MEDIA_METRICS_NAMESPACE,
            metric_name=MEDIA_LOAD_METRIC,
            dimensions_map={"AutoScalingGroupName": self.asg_name},
            statistic="Average",
            period=period or cdk.Duration.minutes(1),
        )

    def _node_role(self, data: DataStack) -> iam.Role:
        role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="Townhall media node",
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name("AmazonSSMManagedInstanceCore")
            ],
        )
        acknowledge(
            role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AmazonSSMManagedInstanceCore]",
            "Session Manager replaces SSH (no key pair, no port 22). AWS keeps this policy in "
            "step with what the SSM agent needs; it grants no data access.",
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="PutNodeMetrics",
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": MEDIA_METRICS_NAMESPACE}},
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="WriteNodeLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[self.node_logs.log_group_arn],
            )
        )
        group_arn = self.format_arn(
            service="autoscaling",
            resource="autoScalingGroup",
            resource_name=f"*:autoScalingGroupName/{self.asg_name}",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="CompleteOwnDrain",
                actions=[
                    "autoscaling:CompleteLifecycleAction",
                    "autoscaling:RecordLifecycleActionHeartbeat",
                ],
                resources=[group_arn],
            )
        )
        acknowledge_wildcard_resource(
            role,
            group_arn,
            "The '*' is the group's UUID, which an ARN must carry and which is unknown until "
            "the group exists; the group is pinned by its name.",
        )
        grant_table(
            role,
            data.table(schema.MEDIA_NODES),
            schema.MEDIA_NODES,
            "write",
            key=data.data_key,
            region=self.region,
        )
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "cloudwatch:PutMetricData has no resource-level permissions; the statement is "
            "limited by the condition cloudwatch:namespace = Townhall/Media.",
        )
        return role

    def _user_data(self, data: DataStack) -> ec2.UserData:
        script = (ASSETS_DIR / "media_placeholder.py").read_text()
        if "PYEOF" in script:
            raise ValueError("the placeholder script must not contain the heredoc marker")
        s = self.settings
        env = {
            "AWS_REGION": cdk.Aws.REGION,
            "ASG_NAME": self.asg_name,
            "MEDIA_NODES_TABLE": data.table(schema.MEDIA_NODES).table_name,
            "METRIC_NAMESPACE": MEDIA_METRICS_NAMESPACE,
            "METRIC_NAME": MEDIA_LOAD_METRIC,
            "LIFECYCLE_HOOK_NAME": MEDIA_DRAIN_HOOK_NAME,
            "UDP_PORT_MIN": str(s.media_udp_port_min),
            "UDP_PORT_MAX": str(s.media_udp_port_max),
            "CONTROL_PORT": str(s.media_control_port),
            "LOG_GROUP": self.node_logs.log_group_name,
        }
        user_data = ec2.UserData.for_linux()
        user_data.add_commands(
            "set -euo pipefail",
            "dnf install -y python3-boto3",
            "install -d -m 0755 /opt/townhall/media /etc/townhall",
            f"cat > {PLACEHOLDER_PATH} <<'PYEOF'\n{script.rstrip()}\nPYEOF",
            "cat > /etc/townhall/media.env <<'ENVEOF'\n"
            + "\n".join(f"{k}={v}" for k, v in env.items())
            + "\nENVEOF",
            f"cat > /etc/systemd/system/{SERVICE_NAME} <<'UNITEOF'\n"
            "[Unit]\n"
            "Description=Townhall media node (placeholder)\n"
            "After=network-online.target\n"
            "Wants=network-online.target\n"
            "[Service]\n"
            "EnvironmentFile=/etc/townhall/media.env\n"
            f"ExecStart=/usr/bin/python3 {PLACEHOLDER_PATH}\n"
            "Restart=on-failure\n"
            "RestartSec=5\n"
            "DynamicUser=yes\n"
            "NoNewPrivileges=yes\n"
            "ProtectSystem=strict\n"
            "ProtectHome=yes\n"
            "PrivateTmp=yes\n"
            "[Install]\n"
            "WantedBy=multi-user.target\n"
            "UNITEOF",
            "systemctl daemon-reload",
            f"systemctl enable --now {SERVICE_NAME}",
        )
        return user_data
