"""Townhall's CDK stacks and the one function that wires them into an app."""

from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from .api import ApiStack
from .config import Settings
from .data import DataStack
from .edge import EdgeStack
from .media import MediaStack
from .observability import ObservabilityStack
from .turn import TurnStack

__all__ = [
    "ApiStack",
    "DataStack",
    "EdgeStack",
    "MediaStack",
    "ObservabilityStack",
    "Settings",
    "TownhallStacks",
    "TurnStack",
    "build_app",
]


@dataclass(frozen=True)
class TownhallStacks:
    data: DataStack
    api: ApiStack
    media: MediaStack
    edge: EdgeStack
    observability: ObservabilityStack
    turn: TurnStack

    def all(self) -> tuple[cdk.Stack, ...]:
        return (self.data, self.turn, self.api, self.media, self.edge, self.observability)


def build_app(app: cdk.App, *, nag: bool = True) -> TownhallStacks:
    """Add every Townhall stack to ``app`` (environment-agnostic) and register cdk-nag."""
    settings = Settings.from_context(app)
    name = settings.stack_name
    # Account-agnostic on purpose: no context lookups (AZs come from Fn::GetAZs at deploy time).
    env = cdk.Environment(region=settings.region)

    data = DataStack(
        app,
        name("Data"),
        env=env,
        description="Townhall: DynamoDB tables, KMS keys, token-signing and TURN secrets",
        termination_protection=True,
    )
    turn = TurnStack(
        app,
        name("Turn"),
        env=env,
        settings=settings,
        data=data,
        description="Townhall: TURN servers (coturn group, Network Load Balancer)",
    )
    api = ApiStack(
        app,
        name("Api"),
        env=env,
        settings=settings,
        data=data,
        turn=turn,
        description="Townhall: Lambda functions, HTTP API and WebSocket API",
    )
    media = MediaStack(
        app,
        name("Media"),
        env=env,
        settings=settings,
        data=data,
        api=api,
        description="Townhall: media fleet (VPC, launch template, Auto Scaling group)",
    )
    edge = EdgeStack(
        app,
        name("Edge"),
        env=env,
        settings=settings,
        api=api,
        description="Townhall: CloudFront, web app bucket",
    )
    observability = ObservabilityStack(
        app,
        name("Observability"),
        env=env,
        settings=settings,
        data=data,
        api=api,
        media=media,
        turn=turn,
        description="Townhall: dashboard, alarms, alarm topic",
    )
    for stack in (data, turn, api, media, edge, observability):
        cdk.Tags.of(stack).add("project", "townhall")

    if nag:
        cdk.Validations.of(app).add_plugins(
            AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True)
        )
    return TownhallStacks(data, api, media, edge, observability, turn)
