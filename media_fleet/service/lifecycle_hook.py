"""The AWS boundary of a drain: telling Auto Scaling the instance may now terminate.

Auto Scaling holds a scaling-in instance in `Terminating:Wait` until its termination lifecycle
hook is completed (or its heartbeat timeout passes). The node completes it itself once drained,
so an instance leaves as soon as its meetings have moved, not after the whole timeout.
"""

from __future__ import annotations

import boto3


def complete_lifecycle_action(asg_name: str, hook_name: str, instance_id: str) -> None:
    """CONTINUE the termination hook for this instance (boto3, blocking)."""
    client = boto3.client("autoscaling")
    client.complete_lifecycle_action(
        AutoScalingGroupName=asg_name,
        LifecycleHookName=hook_name,
        InstanceId=instance_id,
        LifecycleActionResult="CONTINUE",
    )
