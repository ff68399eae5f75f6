#!/usr/bin/python3
"""ExecStartPre of coturn.service on a TURN instance: write /etc/turnserver.conf.

The fixed part of the configuration is the template the launch template's user data wrote
(/etc/townhall/turnserver.conf.in: realm, ports, denied peers, ...). This adds what only the
running instance knows, at every start of coturn:

- its addresses, from IMDSv2: coturn listens and relays on the private IP and announces the
  public one (`external-ip=<public>/<private>`: EC2 maps the public address 1:1 onto the
  private one, which is the only one on an interface);
- the shared secret(s), from Secrets Manager: one `static-auth-secret` line per version stage
  that exists (AWSCURRENT, AWSPENDING, AWSPREVIOUS); coturn accepts a credential made with any
  of them, which is what lets the secret rotate without refusing outstanding credentials.

The file is written atomically, readable by root and the coturn group only. Neither the secret
nor the file's contents are ever printed. Runs with the system Python and its python3-boto3
(no AWS CLI on the Ubuntu image). Environment: TURN_SECRET_ARN, AWS_REGION; for tests, the
paths and the group can be overridden, and AWS_EC2_METADATA_SERVICE_ENDPOINT moves IMDS.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path

STAGES = ("AWSCURRENT", "AWSPENDING", "AWSPREVIOUS")
SECRET_PATTERN = re.compile(r"[A-Za-z0-9]{32,}")
IPV4_PATTERN = re.compile(r"\d{1,3}(\.\d{1,3}){3}")


def imds(path: str) -> str:
    """One IMDSv2 metadata value (a token per call: this runs once per coturn start)."""
    endpoint = os.environ.get("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://169.254.169.254")
    endpoint = endpoint.rstrip("/")
    put = urllib.request.Request(
        f"{endpoint}/latest/api/token",
        method="PUT",
        headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
    )
    with urllib.request.urlopen(put, timeout=5) as response:
        token = response.read().decode()
    get = urllib.request.Request(
        f"{endpoint}/latest/meta-data/{path}",
        headers={"X-aws-ec2-metadata-token": token},
    )
    with urllib.request.urlopen(get, timeout=5) as response:
        value: str = response.read().decode().strip()
    if not IPV4_PATTERN.fullmatch(value):
        raise SystemExit(f"townhall-turn-config: IMDS {path} is not an IPv4 address")
    return value


def secrets(arn: str, region: str) -> list[str]:
    """The secret's value under each version stage that exists, AWSCURRENT first."""
    import boto3  # the system's python3-boto3

    client = boto3.client("secretsmanager", region_name=region)
    values: list[str] = []
    for stage in STAGES:
        try:
            value = client.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]
        except client.exceptions.ResourceNotFoundException:
            if stage == "AWSCURRENT":
                raise
            continue  # no pending or previous version: nothing is rotating
        value = str(value).strip()
        # Never echo the value: only say that it is unusable.
        if not SECRET_PATTERN.fullmatch(value):
            raise SystemExit(f"townhall-turn-config: the {stage} secret is not 32+ letters/digits")
        if value not in values:
            values.append(value)
    return values


def render(template: str, public_ip: str, private_ip: str, secret_values: list[str]) -> str:
    lines = [
        template.rstrip("\n"),
        f"listening-ip={private_ip}",
        f"relay-ip={private_ip}",
        f"external-ip={public_ip}/{private_ip}",
        *(f"static-auth-secret={value}" for value in secret_values),
    ]
    return "\n".join(lines) + "\n"


def write_private(path: Path, text: str, group: str) -> None:
    """Write `text` to `path` atomically, mode 0640, owned by root's uid and `group`."""
    fd, staging = tempfile.mkstemp(prefix=".turnserver.", dir=path.parent)
    try:
        os.fchmod(fd, 0o640)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        shutil.chown(staging, group=group)
        os.replace(staging, path)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def main() -> int:
    template = Path(os.environ.get("TURN_CONFIG_TEMPLATE", "/etc/townhall/turnserver.conf.in"))
    target = Path(os.environ.get("TURN_CONFIG", "/etc/turnserver.conf"))
    group = os.environ.get("TURN_CONFIG_GROUP", "turnserver")
    arn = os.environ["TURN_SECRET_ARN"]
    region = os.environ["AWS_REGION"]
    public_ip = imds("public-ipv4")
    private_ip = imds("local-ipv4")
    text = render(template.read_text(), public_ip, private_ip, secrets(arn, region))
    write_private(target, text, group)
    print(f"townhall-turn-config: wrote {target} (external-ip {public_ip}/{private_ip})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
