"""TURN: coturn on a small Auto Scaling group of its own, behind an internet-facing NLB.

Why a group of its own and not coturn on the media nodes (docs/turn.md has the long form):

- it scales with the number of participants behind firewalls, not with forwarding load, and
  a relayed byte costs a TURN instance far less CPU than a forwarded one costs the SFU;
- a TURN server relays for anyone holding a credential: keeping it off the SFU keeps that
  attack surface away from the node's control API, its role (which writes the MediaNodes
  table) and its UDP range (the node pins its ephemeral ports to it for aioice);
- the NLB in front needs stable targets; media nodes drain for up to 15 minutes on scale-in;
- the signaling function needs the TURN address in its environment, and the media stack
  already depends on the API stack (for the JWKS URL): TURN in the media stack's VPC would
  make a cycle. It has its own VPC and depends on the data stack only.

Media nodes write their public IP into every ICE candidate (`--announced-host`), so a relay
only ever needs to reach public addresses: coturn denies every private, loopback, link-local
(the instance metadata service, the Amazon DNS resolver) and reserved range as a peer, its own
VPC included, with no exception.

Ports: TURN on UDP and TCP 3478 (one TCP_UDP listener: an NLB cannot hold a UDP and a TCP
listener on the same port), TURN over TLS on 443 when the deployer gives a domain and an ACM
certificate (the NLB terminates TLS and forwards plain TCP to coturn's 3478), and the relay
range straight to each instance's public IP (relayed media does not pass the NLB).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_autoscaling as autoscaling
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from constructs import Construct

from .config import ASSETS_DIR, Settings, retention
from .data import DataStack
from .nag import acknowledge

TURN_PORT = 3478
TLS_PORT = 443
VPC_CIDR = "10.41.0.0/16"
# Ubuntu 24.04 LTS (arm64) from Canonical's public SSM parameter: Amazon Linux 2023 has no
# coturn package (and no EPEL); Ubuntu's universe has coturn 4.6.
UBUNTU_AMI_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id"
)
DEFAULT_REALM = "townhall"

CONFIG_TEMPLATE = "/etc/townhall/turnserver.conf.in"
CONFIG_SCRIPT = "/usr/local/sbin/townhall-turn-config"
ENV_FILE = "/etc/townhall/turn.env"
UNIT_DROP_IN = "/etc/systemd/system/coturn.service.d/townhall.conf"
LOG_DIR = "/var/log/townhall"
TURN_LOG = f"{LOG_DIR}/coturn.log"
CW_AGENT_CONFIG = "/opt/aws/amazon-cloudwatch-agent/etc/townhall-turn.json"

# Peers a relay must never reach (RFC 6890 special-purpose ranges, roughly): the instance
# metadata service and the Amazon DNS resolver are link-local, the VPCs are in 10/8. The
# relay's peers are media nodes, which announce public addresses only.
DENIED_PEER_NETWORKS = (
    "0.0.0.0/8",  # "this" network
    "10.0.0.0/8",  # private: every VPC of this deployment, this one included
    "100.64.0.0/10",  # carrier-grade NAT
    "127.0.0.0/8",  # loopback
    "169.254.0.0/16",  # link-local: IMDS 169.254.169.254, DNS 169.254.169.253, NTP ...123
    "172.16.0.0/12",  # private
    "192.0.0.0/24",  # IETF protocol assignments
    "192.0.2.0/24",  # TEST-NET-1
    "192.88.99.0/24",  # 6to4 relay anycast
    "192.168.0.0/16",  # private
    "198.18.0.0/15",  # benchmarking
    "198.51.100.0/24",  # TEST-NET-2
    "203.0.113.0/24",  # TEST-NET-3
    "224.0.0.0/4",  # multicast
    "240.0.0.0/4",  # reserved, and 255.255.255.255
    "::/128",  # unspecified
    "::1/128",  # loopback
    "::ffff:0:0/96",  # IPv4-mapped: would reach the IPv4 ranges above
    "64:ff9b::/96",  # NAT64
    "100::/64",  # discard
    "2001:db8::/32",  # documentation
    "fc00::/7",  # unique local: IMDS over IPv6 is fd00:ec2::254
    "fe80::/10",  # link-local
    "ff00::/8",  # multicast
)


def coturn_range(cidr: str) -> str:
    """A network as coturn's `denied-peer-ip` takes it: `first-last`."""
    network = ipaddress.ip_network(cidr)
    return f"{network.network_address}-{network.broadcast_address}"


class TurnStack(cdk.Stack):
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
        if settings.turn_relay_port_min > settings.turn_relay_port_max:
            raise ValueError("townhall:turnRelayPortMin must not exceed turnRelayPortMax")
        if bool(settings.turn_domain) != bool(settings.turn_certificate_arn):
            raise ValueError(
                "TURN over TLS needs both -c townhall:turnDomain=<name> and "
                "-c townhall:turnCertificateArn=<ACM ARN>, or neither"
            )
        self.tls_domain = settings.turn_domain or None
        self.realm = settings.turn_domain or DEFAULT_REALM
        self.asg_name = f"{self.stack_name}-Servers"

        flow_logs = logs.LogGroup(
            self,
            "VpcFlowLogs",
            retention=retention(settings.access_log_retention_days),
            encryption_key=data.logs_key,
        )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            max_azs=2,
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                )
            ],
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
                    traffic_type=ec2.FlowLogTrafficType.ALL,
                )
            },
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "ServerSecurityGroup",
            vpc=self.vpc,
            description="Townhall TURN servers: TURN on 3478 and the relay range from anywhere",
            allow_all_outbound=True,
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.udp(TURN_PORT),
            "TURN over UDP (through the NLB, client IP preserved)",
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.tcp(TURN_PORT),
            "TURN over TCP, and TLS terminated by the NLB; NLB health checks",
        )
        self.security_group.add_ingress_rule(
            ec2.Peer.any_ipv4(),
            ec2.Port.udp_range(settings.turn_relay_port_min, settings.turn_relay_port_max),
            "TURN relay range: media from the peers a client gave permission to",
        )
        acknowledge(
            self.security_group,
            "AwsSolutions-EC23",
            "World-open is the point of a TURN server: browsers anywhere reach 3478 (the NLB "
            "preserves client IPs, so the instances see them), and relayed media arrives "
            "straight at the instance's public IP on the relay range. coturn answers only "
            "requests carrying a credential minted from the shared secret, accepts relayed "
            "data only from peers the client created a permission for, and refuses private, "
            "link-local and metadata peers. Nothing else listens.",
        )

        self.logs = logs.LogGroup(
            self,
            "ServerLogs",
            retention=retention(settings.log_retention_days),
            encryption_key=data.logs_key,
        )
        self.role = self._server_role(data)
        self.launch_template = ec2.LaunchTemplate(
            self,
            "ServerLaunchTemplate",
            machine_image=ec2.MachineImage.from_ssm_parameter(
                UBUNTU_AMI_PARAMETER, os=ec2.OperatingSystemType.LINUX
            ),
            instance_type=ec2.InstanceType(settings.turn_instance_type),
            role=self.role,
            security_group=self.security_group,
            associate_public_ip_address=True,
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            # 1-minute EC2 metrics: the group tracks NetworkOut per minute.
            detailed_monitoring=True,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/sda1",
                    volume=ec2.BlockDeviceVolume.ebs(
                        8,
                        encrypted=True,
                        volume_type=ec2.EbsDeviceVolumeType.GP3,
                        delete_on_termination=True,
                    ),
                )
            ],
            user_data=self._user_data(data),
        )

        self.scaling_events = sns.Topic(
            self,
            "ScalingEvents",
            display_name="Townhall TURN scaling events",
            # Auto Scaling publishes with its service-linked role: see media.py.
            master_key=kms.Alias.from_alias_name(self, "SnsManagedKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        self.asg = autoscaling.AutoScalingGroup(
            self,
            "Servers",
            auto_scaling_group_name=self.asg_name,
            vpc=self.vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            launch_template=self.launch_template,
            min_capacity=settings.turn_min_capacity,
            max_capacity=settings.turn_max_capacity,
            cooldown=cdk.Duration.minutes(5),
            default_instance_warmup=cdk.Duration.minutes(3),
            health_checks=autoscaling.HealthChecks.with_additional_checks(
                additional_types=[autoscaling.AdditionalHealthCheckType.ELB],
                grace_period=cdk.Duration.minutes(5),
            ),
            group_metrics=[autoscaling.GroupMetrics.all()],
            notifications=[autoscaling.NotificationConfiguration(topic=self.scaling_events)],
        )
        # Bytes per minute an instance sends (ASGAverageNetworkOut with 1-minute metrics).
        self.target_bytes_per_minute = settings.turn_target_mbps * 1_000_000 // 8 * 60
        self.asg.scale_on_outgoing_bytes(
            "NetworkOutTracking", target_bytes_per_second=self.target_bytes_per_minute
        )

        self._load_balancer()
        self.client_urls = self._client_urls()

        cdk.CfnOutput(
            self,
            "TurnLoadBalancerDnsName",
            value=self.nlb.load_balancer_dns_name,
            description="TURN on UDP and TCP 3478; point the TURN domain (CNAME) here",
        )
        cdk.CfnOutput(self, "TurnUrls", value=" ".join(self.client_urls))
        cdk.CfnOutput(self, "TurnServersGroupName", value=self.asg_name)
        if self.tls_domain:
            cdk.CfnOutput(
                self,
                "TurnTls",
                value=f"turns:{self.tls_domain}:{TLS_PORT}?transport=tcp",
                description=f"TURN over TLS: create a CNAME {self.tls_domain} -> the NLB",
            )
        else:
            message = (
                "No TURN over TLS: no domain given (-c townhall:turnDomain=<name> "
                "-c townhall:turnCertificateArn=<ACM ARN>). TURN serves UDP and TCP 3478 only, "
                "which a firewall that allows only HTTPS still blocks."
            )
            cdk.CfnOutput(self, "TurnTls", value=message)
            cdk.Annotations.of(self).add_warning_v2("townhall:turnWithoutTls", message)

    def _load_balancer(self) -> None:
        # The NLB's own security group filters what reaches it (it would otherwise be one
        # that CDK makes with no rules at all): TURN in, TURN on to the servers out.
        self.nlb_security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=self.vpc,
            description="Townhall TURN load balancer: TURN (and TURN over TLS) from anywhere",
            allow_all_outbound=False,
        )
        ports = [ec2.Port.udp(TURN_PORT), ec2.Port.tcp(TURN_PORT)]
        if self.tls_domain:
            ports.append(ec2.Port.tcp(TLS_PORT))
        for port in ports:
            self.nlb_security_group.add_ingress_rule(
                ec2.Peer.any_ipv4(), port, "TURN clients anywhere on the Internet"
            )
        servers = ec2.Peer.security_group_id(self.security_group.security_group_id)
        for port in (ec2.Port.udp(TURN_PORT), ec2.Port.tcp(TURN_PORT)):
            self.nlb_security_group.add_egress_rule(
                servers, port, "TURN to the servers, and health checks"
            )
        acknowledge(
            self.nlb_security_group,
            "AwsSolutions-EC23",
            "The TURN load balancer is for browsers anywhere on the Internet: UDP and TCP 3478 "
            "(and TCP 443 for TURN over TLS when a domain is configured) are open to 0.0.0.0/0 "
            "on purpose; coturn behind it answers only requests carrying a valid credential.",
        )
        self.nlb = elbv2.NetworkLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self.vpc,
            internet_facing=True,
            security_groups=[self.nlb_security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            # One instance may serve both AZs' addresses of the NLB.
            cross_zone_enabled=True,
        )
        acknowledge(
            self.nlb,
            "AwsSolutions-ELB2",
            "An NLB writes access logs for TLS listeners only, and TURN's flows are long-lived "
            "UDP and TCP sessions: they are in the TURN VPC's flow logs, and coturn logs every "
            "allocation with its username (expiry and participant id) to the TURN log group.",
        )
        health_check = elbv2.HealthCheck(
            protocol=elbv2.Protocol.TCP,
            port=str(TURN_PORT),
            interval=cdk.Duration.seconds(10),
            healthy_threshold_count=2,
            unhealthy_threshold_count=2,
        )
        self.turn_targets = elbv2.NetworkTargetGroup(
            self,
            "TurnTargets",
            vpc=self.vpc,
            port=TURN_PORT,
            protocol=elbv2.Protocol.TCP_UDP,
            targets=[self.asg],
            health_check=health_check,
            deregistration_delay=cdk.Duration.seconds(30),
        )
        self.turn_listener = self.nlb.add_listener(
            "Turn",
            port=TURN_PORT,
            protocol=elbv2.Protocol.TCP_UDP,
            default_target_groups=[self.turn_targets],
        )
        self.tls_listener: elbv2.NetworkListener | None = None
        if self.tls_domain:
            # TLS ends at the NLB; coturn gets plain TURN over TCP on 3478 (a TCP_UDP target
            # group cannot sit behind a TLS listener, hence a TCP one to the same port).
            self.tls_targets = elbv2.NetworkTargetGroup(
                self,
                "TlsTargets",
                vpc=self.vpc,
                port=TURN_PORT,
                protocol=elbv2.Protocol.TCP,
                targets=[self.asg],
                health_check=health_check,
                deregistration_delay=cdk.Duration.seconds(30),
            )
            self.tls_listener = self.nlb.add_listener(
                "TurnTls",
                port=TLS_PORT,
                protocol=elbv2.Protocol.TLS,
                certificates=[
                    elbv2.ListenerCertificate.from_arn(self.settings.turn_certificate_arn)
                ],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_target_groups=[self.tls_targets],
            )

    def media_node_urls(self) -> list[str]:
        """TURN_MEDIA_NODE_URLS: what the nodes' side gathers a relay on (UDP, never TLS)."""
        return [f"turn:{self.nlb.load_balancer_dns_name}:{TURN_PORT}?transport=udp"]

    def _client_urls(self) -> list[str]:
        """TURN_URLS for the signaling function: what browsers put in `iceServers`."""
        host = self.nlb.load_balancer_dns_name
        urls = [
            f"turn:{host}:{TURN_PORT}?transport=udp",
            f"turn:{host}:{TURN_PORT}?transport=tcp",
        ]
        if self.tls_domain:
            urls.append(f"turns:{self.tls_domain}:{TLS_PORT}?transport=tcp")
        return urls

    def _server_role(self, data: DataStack) -> iam.Role:
        role = iam.Role(
            self,
            "ServerRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="Townhall TURN server",
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
                sid="WriteTurnLogs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[self.logs.log_group_arn],
            )
        )
        # Written out rather than secret.grant_read(): that grant names this role in the data
        # key's policy, which would make the data stack depend on this one (as in api.py).
        role.add_to_policy(
            iam.PolicyStatement(
                sid="ReadTurnSecret",
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[data.turn_secret.secret_arn],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptTurnSecret",
                actions=["kms:Decrypt"],
                resources=[data.data_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"
                    }
                },
            )
        )
        return role

    def coturn_config_template(self) -> str:
        """/etc/townhall/turnserver.conf.in: everything but the addresses and the secret, which
        townhall-turn-config adds at each start of coturn."""
        s = self.settings
        lines = [
            "# Written by the launch template's user data; townhall-turn-config appends",
            "# listening-ip, relay-ip, external-ip and static-auth-secret to make",
            "# /etc/turnserver.conf at each start of coturn.",
            f"listening-port={TURN_PORT}",
            f"min-port={s.turn_relay_port_min}",
            f"max-port={s.turn_relay_port_max}",
            # TURN REST API credentials: username `expiry:participant`, HMAC-SHA1 password.
            "use-auth-secret",
            f"realm={self.realm}",
            "fingerprint",
            # TLS ends at the NLB; coturn itself serves plain UDP and TCP only.
            "no-tls",
            "no-dtls",
            # Browsers relay over UDP only; no RFC 6062 TCP relays to anywhere.
            "no-tcp-relay",
            "no-cli",
            "no-multicast-peers",
            # A leaked credential (valid for hours) opens a bounded number of relays.
            "user-quota=24",
            "stale-nonce=600",
            "no-software-attribute",
            f"log-file={TURN_LOG}",
            "simple-log",
            "no-stdout-log",
            *(f"denied-peer-ip={coturn_range(cidr)}" for cidr in DENIED_PEER_NETWORKS),
        ]
        return "\n".join(lines)

    def drop_in(self) -> str:
        """coturn.service's drop-in: make the configuration (as root: `+`) before each start."""
        return "\n".join(
            [
                "[Service]",
                f"EnvironmentFile={ENV_FILE}",
                f"ExecStartPre=+{CONFIG_SCRIPT}",
                "LimitNOFILE=65536",
                "Restart=always",
                "RestartSec=5",
            ]
        )

    def cloudwatch_agent_config(self) -> str:
        config = {
            "logs": {
                "logs_collected": {
                    "files": {
                        "collect_list": [
                            {
                                "file_path": TURN_LOG,
                                "log_group_name": self.logs.log_group_name,
                                "log_stream_name": "{instance_id}/coturn",
                            }
                        ]
                    }
                }
            }
        }
        return json.dumps(config, indent=1)

    def _user_data(self, data: DataStack) -> ec2.UserData:
        env = {
            "AWS_REGION": cdk.Aws.REGION,
            "TURN_SECRET_ARN": data.turn_secret.secret_arn,
            "TURN_CONFIG_TEMPLATE": CONFIG_TEMPLATE,
        }
        heredocs = {
            "ENVEOF": "\n".join(f"{k}={v}" for k, v in env.items()),
            "CONFEOF": self.coturn_config_template(),
            "PYEOF": (ASSETS_DIR / "turn_config.py").read_text().rstrip(),
            "UNITEOF": self.drop_in(),
            "CWEOF": self.cloudwatch_agent_config(),
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

        cw_agent_deb = (
            f"https://amazoncloudwatch-agent-{cdk.Aws.REGION}.s3.{cdk.Aws.REGION}."
            f"{cdk.Aws.URL_SUFFIX}/ubuntu/arm64/latest/amazon-cloudwatch-agent.deb"
        )
        user_data = ec2.UserData.for_linux()
        user_data.add_commands(
            "set -euo pipefail",
            "export DEBIAN_FRONTEND=noninteractive",
            # The package would start coturn at once with its stock configuration (no
            # credentials required): keep every service down until ours is in place.
            "printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d",
            "chmod 0755 /usr/sbin/policy-rc.d",
            # First boot: apt-daily or unattended-upgrades may hold dpkg's lock for a while.
            "apt-get -o DPkg::Lock::Timeout=600 update -q",
            "apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "
            "coturn python3-boto3 logrotate",
            "rm -f /usr/sbin/policy-rc.d",
            "systemctl stop coturn || true",
            "install -d -m 0755 /etc/townhall /etc/systemd/system/coturn.service.d",
            f"install -d -m 0755 -o turnserver -g turnserver {LOG_DIR}",
            write(ENV_FILE, "ENVEOF"),
            write(CONFIG_TEMPLATE, "CONFEOF"),
            write(CONFIG_SCRIPT, "PYEOF", "0755"),
            write(UNIT_DROP_IN, "UNITEOF"),
            # Logs must not keep TURN itself from starting.
            f"curl -fsSL --retry 3 -o /tmp/amazon-cloudwatch-agent.deb {cw_agent_deb} "
            "&& dpkg -i -E /tmp/amazon-cloudwatch-agent.deb "
            "|| echo 'townhall: CloudWatch agent not installed' >&2",
            "install -d -m 0755 /opt/aws/amazon-cloudwatch-agent/etc",
            write(CW_AGENT_CONFIG, "CWEOF"),
            "/opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config "
            f"-m ec2 -s -c file:{CW_AGENT_CONFIG} || echo 'townhall: CloudWatch agent failed' >&2",
            write("/etc/logrotate.d/townhall-turn", "ROTEOF"),
            "systemctl daemon-reload",
            "systemctl enable coturn",
            "systemctl restart coturn",
        )
        return user_data
