"""The edge: CloudFront in front of the web app (S3), the HTTP API and the WebSocket API."""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from .api import ApiStack
from .config import WEB_ASSET_EXCLUDES, WEB_DIR, Settings
from .nag import acknowledge, acknowledge_wildcard_resource

from townhall import routes  # isort: skip
from townhall.model.organisation import API_KEY_PREFIX  # isort: skip

DEFAULT_QUALIFIER = cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


# Copies the viewer's Host into X-Forwarded-Host: API Gateway must see its own Host (the
# origin request policy drops the viewer's), yet the app needs the public host for links.
FORWARDED_HOST_FUNCTION = """\
function handler(event) {
  var request = event.request;
  var host = request.headers.host;
  if (host) {
    request.headers['x-forwarded-host'] = { value: host.value };
  } else {
    delete request.headers['x-forwarded-host'];
  }
  return request;
}
"""

NOT_FOUND_PAGE = "404.html"
# CloudFront Functions' limit on a function's code.
FUNCTION_CODE_LIMIT = 10 * 1024


def site_paths(web_dir: Path = WEB_DIR) -> list[str]:
    """The URL paths of the files BucketDeployment uploads from web/ (WEB_ASSET_EXCLUDES
    left out), plus "/" (the default root object)."""
    paths = ["/"]
    for file in sorted(web_dir.rglob("*")):
        if not file.is_file():
            continue
        relative = file.relative_to(web_dir).as_posix()
        prefixes = ["/".join(relative.split("/")[: i + 1]) for i in range(relative.count("/") + 1)]
        if any(
            fnmatch.fnmatchcase(part, pattern)
            for pattern in WEB_ASSET_EXCLUDES
            for part in prefixes
        ):
            continue
        paths.append(f"/{relative}")
    return paths


def not_found_function(web_dir: Path = WEB_DIR, csp: str | None = None) -> str:
    """A viewer-request CloudFront Function for the site's behavior: a path that is not one of
    the deployed files gets web/404.html with status 404, answered at the edge.

    S3 behind OAC answers a missing key with 403 and a bare XML error. A distribution-wide
    custom error response would also rewrite the API's own 403s and 404s (its JSON errors), so
    the site's paths are checked here instead, against the file list of this deployment.
    """
    page = (web_dir / NOT_FOUND_PAGE).read_text(encoding="utf-8")
    page = re.sub(r">\s+<", "><", page.strip())  # within the function size limit
    headers = {
        "content-type": {"value": "text/html; charset=utf-8"},
        "cache-control": {"value": "no-cache"},
        "x-content-type-options": {"value": "nosniff"},
        "content-security-policy": {"value": csp or content_security_policy(web_dir)},
    }
    files = {path: 1 for path in site_paths(web_dir)}
    return f"""\
var FILES = {json.dumps(files, separators=(",", ":"))};
var PAGE = {json.dumps(page)};
var HEADERS = {json.dumps(headers, separators=(",", ":"))};
function handler(event) {{
  var request = event.request;
  if (FILES[request.uri] === 1) {{
    return request;
  }}
  return {{
    statusCode: 404,
    statusDescription: 'Not Found',
    headers: HEADERS,
    body: {{ encoding: 'text', data: PAGE }}
  }};
}}
"""


_INLINE_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.DOTALL | re.IGNORECASE)


def inline_script_hashes(web_dir: Path = WEB_DIR) -> list[str]:
    """CSP sources for the inline scripts of the pages deployed from web/ (sha256, base64).

    Computed from the same files BucketDeployment uploads, so the policy always admits exactly
    the inline scripts that ship, and nothing injected.
    """
    hashes = set()
    for page in sorted(web_dir.rglob("*.html")):
        if "node_modules" in page.parts:
            continue
        for attributes, body in _INLINE_SCRIPT.findall(page.read_text(encoding="utf-8")):
            if re.search(r"\bsrc\s*=", attributes):
                continue
            digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
            hashes.add(f"'sha256-{digest}'")
    return sorted(hashes)


def content_security_policy(web_dir: Path = WEB_DIR) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "connect-src 'self'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:",
            "style-src 'self'",
            " ".join(["script-src 'self'", *inline_script_hashes(web_dir)]),
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


class EdgeStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        api: ApiStack,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)

        # Server access logs of the site bucket and CloudFront standard logs. CloudFront's
        # standard logging writes with ACLs, so object ownership is BucketOwnerPreferred.
        self.logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=cdk.Duration.days(365))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(
            self.logs_bucket,
            "AwsSolutions-S1",
            "This is the access-log bucket itself; logging it into itself would loop and "
            "logging it elsewhere would need yet another bucket with the same finding.",
        )

        # The web app: private, reachable only through CloudFront's origin access control.
        # SSE-S3 rather than KMS: the objects are the public web app, and OAC with SSE-KMS
        # would need the distribution in the key policy for no confidentiality gain.
        self.site_bucket = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.logs_bucket,
            server_access_logs_prefix="s3/site/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=cdk.Duration.days(30))],
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

        security_headers = cloudfront.ResponseHeadersPolicy(
            self,
            "SecurityHeaders",
            comment="Townhall web app security headers",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.STRICT_ORIGIN_WHEN_CROSS_ORIGIN,
                    override=True,
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=cdk.Duration.days(365),
                    include_subdomains=True,
                    override=True,
                ),
                xss_protection=cloudfront.ResponseHeadersXSSProtection(
                    protection=True, mode_block=True, override=True
                ),
            ),
            custom_headers_behavior=cloudfront.ResponseCustomHeadersBehavior(
                custom_headers=[
                    cloudfront.ResponseCustomHeader(
                        header="Permissions-Policy",
                        value="camera=(self), microphone=(self), display-capture=(self), "
                        "geolocation=()",
                        override=True,
                    )
                ]
            ),
        )

        forwarded_host = cloudfront.Function(
            self,
            "ForwardedHostFunction",
            comment="Copy the viewer Host header into X-Forwarded-Host for the HTTP API",
            code=cloudfront.FunctionCode.from_inline(FORWARDED_HOST_FUNCTION),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
        )

        not_found = cloudfront.Function(
            self,
            "NotFoundFunction",
            comment="Answer paths that are not files of the web app with its 404 page",
            code=cloudfront.FunctionCode.from_inline(not_found_function()),
            runtime=cloudfront.FunctionRuntime.JS_2_0,
        )

        api_origin = origins.HttpOrigin(
            api.http_api_domain,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
        )
        ws_origin = origins.HttpOrigin(
            api.ws_api_domain,
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            origin_ssl_protocols=[cloudfront.OriginSslPolicy.TLS_V1_2],
        )
        self.web_acl = (
            self._web_acl(settings.waf_rate_limit, settings.waf_key_rate_limit)
            if self.region == "us-east-1"
            else None
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            web_acl_id=self.web_acl.attr_arn if self.web_acl else None,
            comment="Townhall",
            default_root_object="index.html",
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            enable_logging=True,
            log_bucket=self.logs_bucket,
            log_file_prefix="cloudfront/",
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.site_bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=security_headers,
                compress=True,
                function_associations=[
                    cloudfront.FunctionAssociation(
                        function=not_found,
                        event_type=cloudfront.FunctionEventType.VIEWER_REQUEST,
                    )
                ],
            ),
            additional_behaviors={
                "/api/*": cloudfront.BehaviorOptions(
                    origin=api_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=(
                        cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER
                    ),
                    function_associations=[
                        cloudfront.FunctionAssociation(
                            function=forwarded_host,
                            event_type=cloudfront.FunctionEventType.VIEWER_REQUEST,
                        )
                    ],
                ),
                # The viewer path must equal the WebSocket stage, and the viewer's Host must
                # not reach API Gateway (it answers 403), hence this policy.
                f"/{routes.STAGE}": cloudfront.BehaviorOptions(
                    origin=ws_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_GET_HEAD_OPTIONS,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=(
                        cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER
                    ),
                ),
            },
        )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR1",
            "Townhall serves meetings worldwide; there is no country list to restrict to.",
        )
        if self.web_acl is None:
            acknowledge(
                self.distribution,
                "AwsSolutions-CFR2",
                "A web ACL for CloudFront must be created in us-east-1 and this deployment's "
                "Region is elsewhere; abuse is limited by API Gateway stage throttling and the "
                "$connect authorizer. Deploy the web ACL from a us-east-1 stack and pass its "
                "ARN as web_acl_id.",
            )
        acknowledge(
            self.distribution,
            "AwsSolutions-CFR4",
            "No custom domain yet, so viewers get the default *.cloudfront.net certificate, "
            "with which CloudFront fixes the viewer security policy (TLSv1 allowed). With a "
            "domain and an ACM certificate in us-east-1, set minimum_protocol_version to "
            "TLS_V1_2_2021 and drop this acknowledgment.",
        )

        self.deployment = s3deploy.BucketDeployment(
            self,
            "DeployWeb",
            sources=[s3deploy.Source.asset(str(WEB_DIR), exclude=WEB_ASSET_EXCLUDES)],
            destination_bucket=self.site_bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            memory_limit=512,
            prune=True,
        )
        self._acknowledge_bucket_deployment()

        domain = self.distribution.distribution_domain_name
        cdk.CfnOutput(self, "DistributionDomainName", value=domain)
        cdk.CfnOutput(self, "WebUrl", value=f"https://{domain}/")
        cdk.CfnOutput(self, "HttpApiUrl", value=f"https://{domain}/api/")
        cdk.CfnOutput(self, "WebSocketUrl", value=f"wss://{domain}/{routes.STAGE}")

    def _web_acl(self, rate_limit: int, key_rate_limit: int) -> wafv2.CfnWebACL:
        """Rate limiting per client IP and per partner API key, plus two low-false-positive
        AWS managed rule groups.

        The rate counts page loads, API calls and WebSocket upgrades through CloudFront;
        signaling messages on an open socket do not pass through it again.

        The per-key rule counts requests whose Authorization header carries an API key
        (`Bearer thk_...`), aggregated on that header's value: a flood on one key is stopped
        here, before Lambda or DynamoDB is paid for it. It is a backstop above the exact
        per-key limit the API enforces itself (townhall.auth.api_keys: 429 with Retry-After),
        so its limit is the highest per-second rate a key can be given, over a minute.
        WAF cannot sit on the HTTP API (it attaches to REST APIs, CloudFront, ALB...); this
        distribution fronts /api/*, so the rule lives here.

        The common rule set is left out on purpose: its body-size and XSS rules misfire on API
        payloads and WebSocket upgrades, and the app validates its input itself.
        """

        def managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name
                    )
                ),
                visibility_config=_visibility(name),
            )

        return wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="CLOUDFRONT",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility("townhall-edge"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=rate_limit, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=_visibility("RateLimitPerIp"),
                ),
                self._key_rate_rule(key_rate_limit, priority=1),
                managed("AWSManagedRulesAmazonIpReputationList", 2),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 3),
            ],
        )

    @staticmethod
    def _key_rate_rule(limit: int, priority: int) -> wafv2.CfnWebACL.RuleProperty:
        none = [wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")]
        return wafv2.CfnWebACL.RuleProperty(
            name="RateLimitPerApiKey",
            priority=priority,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=limit,
                    evaluation_window_sec=60,
                    aggregate_key_type="CUSTOM_KEYS",
                    custom_keys=[
                        wafv2.CfnWebACL.RateBasedStatementCustomKeyProperty(
                            header=wafv2.CfnWebACL.RateLimitHeaderProperty(
                                name="authorization", text_transformations=none
                            )
                        )
                    ],
                    scope_down_statement=wafv2.CfnWebACL.StatementProperty(
                        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                                single_header={"Name": "authorization"}
                            ),
                            positional_constraint="STARTS_WITH",
                            search_string=f"Bearer {API_KEY_PREFIX}",
                            text_transformations=none,
                        )
                    ),
                )
            ),
            visibility_config=_visibility("RateLimitPerApiKey"),
        )

    def _acknowledge_bucket_deployment(self) -> None:
        """BucketDeployment brings its own singleton Lambda (AWS CLI layer) and role."""
        for child in self.node.children:
            if not child.node.id.startswith("Custom::CDKBucketDeployment"):
                continue
            acknowledge(
                child,
                "AwsSolutions-L1",
                "The BucketDeployment handler's runtime is chosen by aws-cdk-lib (it ships "
                "its own code and AWS CLI layer); it runs only during deployments.",
            )
            acknowledge(
                child,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AWSLambdaBasicExecutionRole]",
                "The BucketDeployment handler role is created by aws-cdk-lib with the basic "
                "execution policy (its own logs only).",
            )
            for action in (
                "s3:GetBucket*",
                "s3:GetObject*",
                "s3:List*",
                "s3:Abort*",
                "s3:DeleteObject*",
            ):
                acknowledge(
                    child,
                    f"AwsSolutions-IAM5[Action::{action}]",
                    "aws-cdk-lib's BucketDeployment grants read on the asset object and "
                    "read/write on the site bucket with these action groups; it copies, "
                    "lists and prunes objects during deployments only.",
                )
            acknowledge_wildcard_resource(
                child,
                self.site_bucket.arn_for_objects("*"),
                "BucketDeployment syncs and prunes every object of the site bucket.",
            )
            acknowledge_wildcard_resource(
                child,
                f"arn:{self.partition}:s3:::cdk-{DEFAULT_QUALIFIER}-assets-"
                f"{cdk.Aws.ACCOUNT_ID}-{self.region}/*",
                "BucketDeployment reads the web/ zip from the CDK bootstrap asset bucket, "
                "whose object keys are content hashes.",
            )
            acknowledge(
                child,
                "AwsSolutions-IAM5[Resource::*]",
                "BucketDeployment invalidates the distribution after a deployment; aws-cdk-lib "
                "grants cloudfront:CreateInvalidation/GetInvalidation on '*'.",
            )
