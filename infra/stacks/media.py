"""The media fleet: VPC, security group, instance role, launch template and Auto Scaling group.

The SFU nodes sit in public subnets with public IPv4 addresses: browsers send ICE/DTLS/SRTP
over UDP straight to a node, so each node needs a public address anyway, and a NAT gateway
would add about $32 a month per AZ plus per-GB charges for traffic that does not need it.
Two things listen publicly: the UDP media range, and the TCP control port, which the signaling
Lambda (outside any VPC, so with no fixed source range) calls on the node's public address. The
control API is TLS with a per-node self-signed certificate the control plane pins by the
fingerprint in the node's registry item, and every call carries a media token the node verifies.
Administration is through SSM Session Manager (no SSH, no key pair). DynamoDB is reached
through a free gateway endpoint.

Each instance runs the real node (`python -m media_fleet`) as `townhall-media.service`:
the node's code (`media_fleet/` and `contracts/`, never the control plane's `functions/`) ships
as one S3 asset, the user data
installs Python 3.11 and the pinned `media_fleet/requirements.txt` into a virtualenv, and the
CloudWatch agent ships the node's stdout (EMF lines, which become `Townhall/Media NodeLoad`)
and stderr to the node log group. See docs/infra.md ("The media node on EC2").
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sns as sns
from constructs import Construct

from .api import CONTRACTS_DIR, ApiStack, AssetFile, asset_files, staged_asset_dir
from .config import (
    ASSETS_DIR,
    MEDIA_DRAIN_HOOK_NAME,
    MEDIA_LOAD_METRIC,
    MEDIA_METRICS_NAMESPACE,
    REPO_ROOT,
    Settings,
    retention,
)
from .data import DataStack
from .grants import grant_table
from .nag import acknowledge, acknowledge_wildcard_resource

from townhall import schema  # isort: skip

SERVICE_NAME = "townhall-media.service"
NODE_ROOT = "/opt/townhall/media"
APP_DIR = f"{NODE_ROOT}/app"  # the unzipped code asset: media_fleet/ and contracts/
VENV_DIR = f"{NODE_ROOT}/venv"
START_SCRIPT = f"{NODE_ROOT}/start-node.sh"
ENV_FILE = "/etc/townhall/media.env"
LOG_DIR = "/var/log/townhall"
EMF_LOG = f"{LOG_DIR}/media-emf.log"  # the node's stdout: one EMF line per heartbeat
NODE_LOG = f"{LOG_DIR}/media.log"  # the node's stderr: its log
CW_AGENT_CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/townhall-media.json"
SYSCTL_FILE = "/etc/sysctl.d/90-townhall-media.conf"
NODE_REQUIREMENTS = REPO_ROOT / "media_fleet" / "requirements.txt"
JWKS_CONTEXT_KEY = "townhall:jwksUrl"
JWKS_PATH = "/api/.well-known/jwks.json"
# The drain must end (and complete the lifecycle action) before the hook's heartbeat timeout.
DRAIN_MARGIN_SECONDS = 120
# systemd waits this much longer than the drain before it kills what is left.
STOP_MARGIN_SECONDS = 60

# The node's code asset: these trees, without tests, caches or build leftovers. The node
# shares only `contracts` with the control plane; it imports nothing else from functions/.
NODE_CODE_TREES = (
    (REPO_ROOT / "media_fleet", "media_fleet"),
    (CONTRACTS_DIR, "contracts"),
)
NODE_CODE_EXCLUDED_DIRS = {"__pycache__", "tests", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
NODE_CODE_EXCLUDED_SUFFIXES = (".pyc", ".pyo")
NODE_CODE_CACHE = REPO_ROOT / "build" / "media-node"


def _excluded_from_node_code(path: PurePosixPath) -> bool:
    return path.name.endswith(NODE_CODE_EXCLUDED_SUFFIXES) or any(
        part in NODE_CODE_EXCLUDED_DIRS for part in path.parts
    )


def node_code_files() -> list[AssetFile]:
    """(source, path in the asset) for every file the node ships with, sorted."""
    return asset_files(NODE_CODE_TREES, _excluded_from_node_code)


def node_code_dir(cache_root: Path = NODE_CODE_CACHE) -> Path:
    """A directory holding exactly the node's code, named by the SHA-256 of its contents."""
    return staged_asset_dir(node_code_files(), cache_root)


class MediaStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataStack,
        api: ApiStack | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.settings = settings
        hook_seconds = settings.media_drain_minutes * 60
        if hook_seconds <= DRAIN_MARGIN_SECONDS:
            raise ValueError("townhall:mediaDrainMinutes must be at least 3")
        # The node finishes draining (and completes the hook) well before Auto Scaling gives up.
        self.drain_deadline_seconds = hook_seconds - DRAIN_MARGIN_SECONDS
        self.stop_timeout_seconds = self.drain_deadline_seconds + STOP_MARGIN_SECONDS
        self.jwks_url = self._jwks_url(scope, api)
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
            description="Townhall media nodes: UDP media and TLS control API from anywhere",
            allow_all_outbound=True,
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.udp_range(settings.media_udp_port_min, settings.media_udp_port_max),
            "ICE/DTLS/SRTP media from browsers",
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(settings.media_control_port),
            "Node control API: TLS, pinned certificate, media token per request",
        )
        acknowledge(
            self.security_group,
            "AwsSolutions-EC23",
            "Media nodes must accept UDP from any browser on the Internet (ICE/DTLS/SRTP). The "
            "TCP control port is open to 0.0.0.0/0 because its caller, the signaling Lambda, "
            "runs outside any VPC and has no fixed source range; the control API is TLS with a "
            "per-node self-signed certificate the control plane pins by the SHA-256 fingerprint "
            "in the node's registry item, and every request carries a signed media token the "
            "node verifies. Nothing else listens.",
        )

        self.node_logs = logs.LogGroup(
            self,
            "NodeLogs",
            retention=retention(settings.log_retention_days),
            encryption_key=data.logs_key,
        )
        # The node's code, as one zip in the CDK asset bucket; the user data downloads it.
        self.node_code = s3_assets.Asset(
            self,
            "NodeCode",
            path=str(node_code_dir()),
            # Only what node_code_dir() copied, even if something ran the cached tree since.
            exclude=["**/__pycache__", "**/*.pyc", "**/*.pyo"],
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
        # Read on the one object the user data downloads, not on the whole asset bucket.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadNodeCode",
                actions=["s3:GetObject"],
                resources=[self.node_code.bucket.arn_for_objects(self.node_code.s3_object_key)],
            )
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

    def _jwks_url(self, scope: Construct, api: ApiStack | None) -> str:
        """Where nodes fetch the token-verifying keys.

        ``-c townhall:jwksUrl=...`` wins (a custom domain, or a control plane deployed
        elsewhere). Otherwise the HTTP API's own endpoint (execute-api, no CloudFront in the way)
        from the API stack: ``api`` when given, else the app's ``<prefix>-Api`` stack, which
        ``build_app`` creates before this one. That is a cross-stack reference (Media depends on
        Api, never the reverse), so there is no cycle.
        """
        override = self.node.try_get_context(JWKS_CONTEXT_KEY)
        if override:
            return str(override)
        if api is None:
            found = scope.node.try_find_child(self.settings.stack_name("Api"))
            api = found if isinstance(found, ApiStack) else None
        if api is None:
            raise ValueError(
                f"the media nodes need a JWKS URL: pass api= or set -c {JWKS_CONTEXT_KEY}=<url>"
            )
        return f"https://{api.http_api_domain}{JWKS_PATH}"

    def node_environment(self, data: DataStack) -> dict[str, str]:
        """/etc/townhall/media.env: what the unit and its start script read."""
        return {
            "AWS_REGION": cdk.Aws.REGION,
            "AWS_DEFAULT_REGION": cdk.Aws.REGION,
            "PYTHONPATH": APP_DIR,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TOWNHALL_PYTHON": f"{VENV_DIR}/bin/python",
            "TOWNHALL_JWKS_URL": self.jwks_url,
            "TOWNHALL_MEDIA_NODES_TABLE": data.table(schema.MEDIA_NODES).table_name,
            "TOWNHALL_ASG_NAME": self.asg_name,
            "TOWNHALL_LIFECYCLE_HOOK": MEDIA_DRAIN_HOOK_NAME,
            "TOWNHALL_CONTROL_PORT": str(self.settings.media_control_port),
            "TOWNHALL_DRAIN_DEADLINE_SECONDS": str(self.drain_deadline_seconds),
        }

    def unit_file(self) -> str:
        return "\n".join(
            [
                "[Unit]",
                "Description=Townhall media node (SFU)",
                "After=network-online.target",
                "Wants=network-online.target",
                "[Service]",
                "Type=exec",
                f"EnvironmentFile={ENV_FILE}",
                f"ExecStart={START_SCRIPT}",
                # SIGTERM to the supervisor only: it drains, then stops its workers itself.
                "KillMode=mixed",
                "KillSignal=SIGTERM",
                f"TimeoutStopSec={self.stop_timeout_seconds}",
                "Restart=on-failure",
                "RestartSec=5",
                f"StandardOutput=append:{EMF_LOG}",
                f"StandardError=append:{NODE_LOG}",
                "LimitNOFILE=65536",
                "DynamicUser=yes",
                "NoNewPrivileges=yes",
                "ProtectSystem=strict",
                "ProtectHome=yes",
                "PrivateTmp=yes",
                "[Install]",
                "WantedBy=multi-user.target",
            ]
        )

    def cloudwatch_agent_config(self) -> str:
        """Ship the node's stdout (EMF: CloudWatch Logs extracts `Townhall/Media NodeLoad` from
        it) and its stderr to the node log group, one stream each per instance."""

        def collect(path: str, stream: str) -> dict[str, str]:
            return {
                "file_path": path,
                "log_group_name": self.node_logs.log_group_name,
                "log_stream_name": f"{{instance_id}}/{stream}",
            }

        config = {
            "logs": {
                "logs_collected": {
                    "files": {"collect_list": [collect(EMF_LOG, "emf"), collect(NODE_LOG, "node")]}
                }
            }
        }
        return json.dumps(config, indent=1)

    def _user_data(self, data: DataStack) -> ec2.UserData:
        s = self.settings
        start_script = (ASSETS_DIR / "media_node_start.sh").read_text().rstrip()
        env = self.node_environment(data)
        code = self.node_code
        pip = f"{VENV_DIR}/bin/pip"
        heredocs = {
            "ENVEOF": "\n".join(f"{k}={v}" for k, v in env.items()),
            "SHEOF": start_script,
            "UNITEOF": self.unit_file(),
            "CWEOF": self.cloudwatch_agent_config(),
            "SYSEOF": (
                "# aioice binds every ICE socket on an ephemeral port: keep them inside the\n"
                "# security group's UDP range.\n"
                "net.ipv4.ip_local_port_range = "
                f"{s.media_udp_port_min} {s.media_udp_port_max}\n"
                "# The forwarding room asks for 1 MiB receive buffers on publisher sockets so a\n"
                "# keyframe burst is not dropped; stock Linux caps SO_RCVBUF at 208 KiB.\n"
                "net.core.rmem_max = 4194304"
            ),
            "ROTEOF": (
                f"{LOG_DIR}/*.log {{\n daily\n rotate 3\n maxsize 50M\n missingok\n"
                " notifempty\n compress\n copytruncate\n}"
            ),
        }
        for marker, body in heredocs.items():
            if marker in body:
                raise ValueError(f"{marker} must not occur in the text it delimits")

        def write(path: str, marker: str, mode: str = "0644") -> str:
            return f"install -m {mode} /dev/null {path}\ncat > {path} <<'{marker}'\n{heredocs[marker]}\n{marker}"

        user_data = ec2.UserData.for_linux()
        user_data.add_commands(
            "set -euo pipefail",
            "dnf install -y python3.11 python3.11-pip unzip awscli-2 amazon-cloudwatch-agent "
            "logrotate",
            f"install -d -m 0755 {NODE_ROOT} /etc/townhall {LOG_DIR}",
            write(SYSCTL_FILE, "SYSEOF"),
            f"sysctl -p {SYSCTL_FILE}",
            # The node's code (media_fleet/ and contracts/) from the CDK asset bucket.
            f"aws s3 cp s3://{code.s3_bucket_name}/{code.s3_object_key} {NODE_ROOT}/node.zip "
            f"--region {cdk.Aws.REGION} --only-show-errors",
            f"rm -rf {APP_DIR}",
            f"unzip -q {NODE_ROOT}/node.zip -d {APP_DIR}",
            f"rm -f {NODE_ROOT}/node.zip",
            f"python3.11 -m venv {VENV_DIR}",
            f"{pip} install --quiet --no-cache-dir --disable-pip-version-check "
            f"--only-binary=:all: -r {APP_DIR}/media_fleet/requirements.txt",
            # The unit's file system is read-only: compile once here.
            f"{VENV_DIR}/bin/python -m compileall -q {APP_DIR}",
            write(ENV_FILE, "ENVEOF"),
            write(START_SCRIPT, "SHEOF", "0755"),
            write(f"/etc/systemd/system/{SERVICE_NAME}", "UNITEOF"),
            write(CW_AGENT_CONFIG, "CWEOF"),
            # Metrics and log rotation must not keep the node itself from starting.
            "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config "
            f"-m ec2 -s -c file:{CW_AGENT_CONFIG} || echo 'townhall: CloudWatch agent failed' >&2",
            write("/etc/logrotate.d/townhall-media", "ROTEOF"),
            "systemctl enable --now logrotate.timer || echo 'townhall: no logrotate.timer' >&2",
            "systemctl daemon-reload",
            f"systemctl enable --now {SERVICE_NAME}",
        )
        return user_data
