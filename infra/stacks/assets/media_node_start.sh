#!/bin/bash
# ExecStart of townhall-media.service: run the SFU media node as this instance.
#
# The instance's identity comes from IMDSv2 at every start (the node's own IMDS client, so one
# code path reads IMDS); everything else comes from /etc/townhall/media.env, which the launch
# template's user data writes. `exec` makes the node the unit's main process, so systemd's
# SIGTERM (KillMode=mixed) reaches the supervisor, which drains and stops its workers itself.
#
# The control API listens on the private IP (the public one is not on any interface; EC2
# translates it) and is advertised on the public IP: the signaling Lambda runs outside the VPC.
# It is TLS with a self-signed certificate the node makes at start and whose fingerprint it
# registers; the control plane pins it, and every request carries a media token.
set -euo pipefail

imds() { "$TOWNHALL_PYTHON" -m media_fleet.service.imds "$1"; }
instance_id=$(imds instance-id)
private_ip=$(imds local-ipv4)
public_ip=$(imds public-ipv4)

exec "$TOWNHALL_PYTHON" -m media_fleet \
    --node-id "$instance_id" \
    --instance-id "$instance_id" \
    --control-host "$private_ip" \
    --control-advertise-host "$public_ip" \
    --control-port "$TOWNHALL_CONTROL_PORT" \
    --ice-host "$private_ip" \
    --announced-host "$public_ip" \
    --jwks "$TOWNHALL_JWKS_URL" \
    --registry-table "$TOWNHALL_MEDIA_NODES_TABLE" \
    --asg-name "$TOWNHALL_ASG_NAME" \
    --lifecycle-hook "$TOWNHALL_LIFECYCLE_HOOK" \
    --drain-deadline "$TOWNHALL_DRAIN_DEADLINE_SECONDS" \
    --workers "$(nproc)"
