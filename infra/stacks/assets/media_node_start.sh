#!/bin/bash
# ExecStart of townhall-media.service: run the SFU media node as this instance.
#
# The instance's identity comes from IMDSv2 at every start (the node's own IMDS client, so one
# code path reads IMDS); everything else comes from /etc/townhall/media.env, which the launch
# template's user data writes. `exec` makes the node the unit's main process, so systemd's
# SIGTERM (KillMode=mixed) reaches the supervisor, which drains and stops its workers itself.
set -euo pipefail

imds() { "$TOWNHALL_PYTHON" -m media_fleet.service.imds "$1"; }
instance_id=$(imds instance-id)
private_ip=$(imds local-ipv4)
public_ip=$(imds public-ipv4)

exec "$TOWNHALL_PYTHON" -m media_fleet \
    --node-id "$instance_id" \
    --instance-id "$instance_id" \
    --control-host "$private_ip" \
    --control-port "$TOWNHALL_CONTROL_PORT" \
    --ice-host "$private_ip" \
    --announced-host "$public_ip" \
    --jwks "$TOWNHALL_JWKS_URL" \
    --registry-table "$TOWNHALL_MEDIA_NODES_TABLE" \
    --asg-name "$TOWNHALL_ASG_NAME" \
    --lifecycle-hook "$TOWNHALL_LIFECYCLE_HOOK" \
    --drain-deadline "$TOWNHALL_DRAIN_DEADLINE_SECONDS" \
    --workers "$(nproc)"
