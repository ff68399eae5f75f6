"""Dashboard, alarms and the alarm topic."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .api import ApiStack
from .config import Settings
from .data import DataStack
from .media import MediaStack
from .turn import TurnStack

from townhall import functions, routes, schema  # isort: skip

FIVE_MINUTES = cdk.Duration.minutes(5)


class ObservabilityStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        data: DataStack,
        api: ApiStack,
        media: MediaStack,
        turn: TurnStack | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        # CloudWatch alarms publish as cloudwatch.amazonaws.com, which needs a customer key
        # whose policy admits it (the AWS-managed SNS key does not).
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Townhall: alarm topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsOfThisAccount",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        self.alarm_topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name="Townhall alarms",
            master_key=key,
            enforce_ssl=True,
        )
        if settings.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(settings.alarm_email))
        action = cw_actions.SnsAction(self.alarm_topic)
        self.alarms: list[cloudwatch.Alarm] = []

        def alarm(construct_id: str, metric: cloudwatch.IMetric, description: str) -> None:
            created = cloudwatch.Alarm(
                self,
                construct_id,
                metric=metric,
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                alarm_description=description,
            )
            created.add_alarm_action(action)
            created.add_ok_action(action)
            self.alarms.append(created)

        # -- Lambda ------------------------------------------------------------------------
        fn_widgets: list[cloudwatch.IWidget] = []
        for logical_id, fn in api.functions.items():
            errors = fn.metric_errors(period=FIVE_MINUTES, statistic="Sum")
            throttles = fn.metric_throttles(period=FIVE_MINUTES, statistic="Sum")
            alarm(f"{logical_id}Errors", errors, f"{logical_id} raised errors")
            alarm(f"{logical_id}Throttles", throttles, f"{logical_id} was throttled")
            fn_widgets.append(
                cloudwatch.GraphWidget(
                    title=logical_id,
                    left=[fn.metric_invocations(period=FIVE_MINUTES), errors, throttles],
                    right=[
                        fn.metric_duration(period=FIVE_MINUTES, statistic="p50"),
                        fn.metric_duration(period=FIVE_MINUTES, statistic="p99"),
                    ],
                    width=8,
                )
            )

        # -- APIs --------------------------------------------------------------------------
        http_5xx = api.http_api.metric_server_error(period=FIVE_MINUTES, statistic="Sum")
        http_4xx = api.http_api.metric_client_error(period=FIVE_MINUTES, statistic="Sum")
        alarm("HttpApi5xx", http_5xx, "The HTTP API answered 5xx")

        def ws_metric(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=name,
                dimensions_map={"ApiId": api.ws_api.api_id, "Stage": routes.STAGE},
                statistic="Sum",
                period=FIVE_MINUTES,
            )

        ws_errors = cloudwatch.MathExpression(
            expression="integration + execution",
            using_metrics={
                "integration": ws_metric("IntegrationError"),
                "execution": ws_metric("ExecutionError"),
            },
            label="WebSocket integration + execution errors",
            period=FIVE_MINUTES,
        )
        alarm("WebSocketErrors", ws_errors, "The WebSocket API failed to run a route")

        # -- DynamoDB ----------------------------------------------------------------------
        table_throttles: list[cloudwatch.IMetric] = []
        for spec in schema.ALL_TABLES:
            table = data.table(spec)

            def table_metric(name: str, table_name: str = table.table_name) -> cloudwatch.Metric:
                return cloudwatch.Metric(
                    namespace="AWS/DynamoDB",
                    metric_name=name,
                    dimensions_map={"TableName": table_name},
                    statistic="Sum",
                    period=FIVE_MINUTES,
                )

            # Metric ids must be unique within one graph, which shows every table.
            reads, writes = f"r{spec.logical_id.lower()}", f"w{spec.logical_id.lower()}"
            throttled = cloudwatch.MathExpression(
                expression=f"{reads} + {writes}",
                using_metrics={
                    reads: table_metric("ReadThrottleEvents"),
                    writes: table_metric("WriteThrottleEvents"),
                },
                label=f"{spec.logical_id} throttled requests",
                period=FIVE_MINUTES,
            )
            alarm(f"{spec.logical_id}TableThrottles", throttled, f"{spec.logical_id} throttled")
            table_throttles.append(throttled)

        # -- the outbox --------------------------------------------------------------------
        outbox_widgets: list[cloudwatch.IWidget] = []
        for source_id, failures in api.stream_failures.items():
            failed = failures.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic="Maximum"
            )
            alarm(
                f"{source_id}FailedBatches",
                failed,
                f"{source_id} gave up on stream records (its failure queue holds them)",
            )
            consumer = api.functions[
                next(
                    s.function.logical_id
                    for s in functions.ALL_STREAM_SOURCES
                    if s.logical_id == source_id
                )
            ]
            # How far behind the stream delivery runs: a growing age means events arrive late.
            iterator_age = consumer.metric("IteratorAge", period=FIVE_MINUTES, statistic="Maximum")
            outbox_widgets.append(
                cloudwatch.GraphWidget(
                    title=f"{source_id}: iterator age (ms) / failed batches",
                    left=[iterator_age],
                    right=[failed],
                    width=12,
                )
            )

        # -- webhooks: deliveries the retry schedule gave up on ----------------------------
        for queue_id, dead_letters in api.dead_letter_queues.items():
            alarm(
                f"{queue_id}DeadLetters",
                dead_letters.metric_approximate_number_of_messages_visible(
                    period=FIVE_MINUTES, statistic="Maximum"
                ),
                f"{queue_id}: messages reached the dead-letter queue (a subscription failed for a "
                "day, or the sender could not process a message)",
            )

        # -- TURN ------------------------------------------------------------------------
        turn_widgets: list[cloudwatch.IWidget] = []
        if turn is not None:
            # Dimensions from the TURN stack's own attributes: CDK's target-group metrics
            # split the listener's ARN, which cfn-lint refuses over a cross-stack value.
            def nlb_metric(name: str, statistic: str, **dimensions: str) -> cloudwatch.Metric:
                return cloudwatch.Metric(
                    namespace="AWS/NetworkELB",
                    metric_name=name,
                    dimensions_map={"LoadBalancer": turn.nlb.load_balancer_full_name, **dimensions},
                    statistic=statistic,
                    period=FIVE_MINUTES,
                )

            target_group = {"TargetGroup": turn.turn_targets.target_group_full_name}
            unhealthy = nlb_metric("UnHealthyHostCount", "Maximum", **target_group)
            healthy = nlb_metric("HealthyHostCount", "Minimum", **target_group)
            alarm(
                "TurnUnhealthyServers",
                unhealthy,
                "A TURN server failed the load balancer's health check (TCP 3478)",
            )
            turn_widgets = [
                cloudwatch.GraphWidget(
                    title="TURN servers: healthy / unhealthy",
                    left=[healthy, unhealthy],
                    width=12,
                ),
                cloudwatch.GraphWidget(
                    title="TURN: bytes through the NLB / out of the servers",
                    left=[nlb_metric("ProcessedBytes", "Sum")],
                    right=[
                        cloudwatch.Metric(
                            namespace="AWS/EC2",
                            metric_name="NetworkOut",
                            dimensions_map={"AutoScalingGroupName": turn.asg_name},
                            statistic="Average",
                            period=FIVE_MINUTES,
                        )
                    ],
                    width=12,
                ),
            ]

        # -- dashboard ---------------------------------------------------------------------
        dashboard = cloudwatch.Dashboard(
            self, "Dashboard", dashboard_name=f"{settings.prefix}-Operations"
        )
        dashboard.add_widgets(
            cloudwatch.TextWidget(
                markdown="# Townhall\nLambda, APIs, DynamoDB, the media fleet and TURN.",
                width=24,
                height=1,
            )
        )
        dashboard.add_widgets(*fn_widgets)
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="HTTP API 4xx / 5xx", left=[http_4xx, http_5xx], width=8),
            cloudwatch.GraphWidget(
                title="WebSocket connects / messages",
                left=[ws_metric("ConnectCount"), ws_metric("MessageCount")],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="WebSocket errors",
                left=[ws_metric("ClientError"), ws_errors],
                width=8,
            ),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="DynamoDB throttled requests", left=table_throttles, width=12
            ),
            cloudwatch.GraphWidget(
                title="Media NodeLoad (target tracking)",
                left=[media.node_load_metric()],
                left_annotations=[
                    cloudwatch.HorizontalAnnotation(
                        value=settings.media_target_load, label="target"
                    )
                ],
                width=12,
            ),
        )
        if outbox_widgets:
            dashboard.add_widgets(*outbox_widgets)
        if turn_widgets:
            dashboard.add_widgets(*turn_widgets)
        self.dashboard = dashboard
        cdk.CfnOutput(self, "AlarmTopicArn", value=self.alarm_topic.topic_arn)
