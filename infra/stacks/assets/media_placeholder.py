"""Placeholder media node: registers, heartbeats, reports NodeLoad and drains on scale-in.

Installed by the media fleet's user data as `townhall-media.service` until the real SFU
(`media_fleet/`) replaces it. It forwards no media. Python 3.9 (Amazon Linux 2023's python3)
plus boto3 from the distribution; settings come from /etc/townhall/media.env.
"""

import json
import os
import signal
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3

IMDS = "http://169.254.169.254/latest"
ENV = os.environ
HEARTBEAT_SECONDS = 10
TTL_SECONDS = 45
state: dict = {"status": "active", "load": 0.0}
stop = threading.Event()


def imds(path):
    token_req = urllib.request.Request(
        IMDS + "/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "300"},
    )
    token = urllib.request.urlopen(token_req, timeout=2).read().decode()
    req = urllib.request.Request(IMDS + path, headers={"X-aws-ec2-metadata-token": token})
    try:
        return urllib.request.urlopen(req, timeout=2).read().decode()
    except Exception:
        return ""


class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(state).encode()
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    region = ENV["AWS_REGION"]
    asg_name = ENV["ASG_NAME"]
    instance_id = imds("/meta-data/instance-id")
    table = boto3.resource("dynamodb", region_name=region).Table(ENV["MEDIA_NODES_TABLE"])
    cloudwatch = boto3.client("cloudwatch", region_name=region)
    autoscaling = boto3.client("autoscaling", region_name=region)
    server = ThreadingHTTPServer(("0.0.0.0", int(ENV["CONTROL_PORT"])), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    while not stop.is_set():
        if imds("/meta-data/autoscaling/target-lifecycle-state") == "Terminated":
            state["status"] = "draining"
        now = int(time.time())
        table.put_item(
            Item={
                "node_id": instance_id,
                "status": state["status"],
                "public_ip": imds("/meta-data/public-ipv4"),
                "private_ip": imds("/meta-data/local-ipv4"),
                "udp_port_min": int(ENV["UDP_PORT_MIN"]),
                "udp_port_max": int(ENV["UDP_PORT_MAX"]),
                "control_port": int(ENV["CONTROL_PORT"]),
                "load": int(state["load"]),
                "heartbeat_at": now,
                "ttl": now + TTL_SECONDS,
            }
        )
        cloudwatch.put_metric_data(
            Namespace=ENV["METRIC_NAMESPACE"],
            MetricData=[
                {
                    "MetricName": ENV["METRIC_NAME"],
                    "Dimensions": [{"Name": "AutoScalingGroupName", "Value": asg_name}],
                    "Value": state["load"],
                    "Unit": "Percent",
                }
            ],
        )
        if state["status"] == "draining":
            # Nothing to hand over yet: the real node moves its meetings first.
            autoscaling.complete_lifecycle_action(
                LifecycleHookName=ENV["LIFECYCLE_HOOK_NAME"],
                AutoScalingGroupName=asg_name,
                InstanceId=instance_id,
                LifecycleActionResult="CONTINUE",
            )
            break
        stop.wait(HEARTBEAT_SECONDS)
    server.shutdown()


if __name__ == "__main__":
    main()
