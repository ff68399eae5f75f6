"""Edge stack: CloudFront with OAC to S3, /api/* and /ws to API Gateway."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from html.parser import HTMLParser
from typing import Any

import pytest
from aws_cdk import aws_cloudfront as cloudfront

from infra.stacks.config import WEB_DIR
from infra.stacks.edge import (
    FORWARDED_HOST_FUNCTION,
    FUNCTION_CODE_LIMIT,
    not_found_function,
    site_paths,
)
from townhall import routes
from townhall.auth.api_keys import MAX_RATE_PER_SECOND

from .conftest import Synth
from .helpers import mentions

pytestmark = pytest.mark.infra

ALL_VIEWER_EXCEPT_HOST = cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER
CACHING_DISABLED = cloudfront.CachePolicy.CACHING_DISABLED


def _distribution(synth: Synth) -> dict[str, Any]:
    (dist,) = synth.resources(synth.stacks.edge, "AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = dist["Properties"]["DistributionConfig"]
    return config


def _origin(config: dict[str, Any], origin_id: str) -> dict[str, Any]:
    (origin,) = [o for o in config["Origins"] if o["Id"] == origin_id]
    return origin


def test_default_behavior_is_s3_through_oac(synth: Synth) -> None:
    config = _distribution(synth)
    default = config["DefaultCacheBehavior"]
    origin = _origin(config, default["TargetOriginId"])
    (oac_id,) = synth.resources(synth.stacks.edge, "AWS::CloudFront::OriginAccessControl")
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": [oac_id, "Id"]}
    assert origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    site = synth.logical_id(synth.stacks.edge.site_bucket)
    assert origin["DomainName"] == {"Fn::GetAtt": [site, "RegionalDomainName"]}
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    policy_id = default["ResponseHeadersPolicyId"]["Ref"]
    policy = synth.template(synth.stacks.edge)["Resources"][policy_id]["Properties"]
    security = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert {"StrictTransportSecurity", "ContentTypeOptions", "FrameOptions"} <= set(security)


@pytest.mark.parametrize("path", ["/api/*", f"/{routes.STAGE}"])
def test_api_behaviors(synth: Synth, path: str) -> None:
    config = _distribution(synth)
    (behavior,) = [b for b in config["CacheBehaviors"] if b["PathPattern"] == path]
    assert behavior["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST.origin_request_policy_id
    assert behavior["CachePolicyId"] == CACHING_DISABLED.cache_policy_id
    assert behavior["ViewerProtocolPolicy"] == "https-only"
    origin = _origin(config, behavior["TargetOriginId"])
    assert "OriginPath" not in origin or origin["OriginPath"] == ""
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    api = synth.stacks.api
    target_api = api.http_api if path == "/api/*" else api.ws_api
    assert mentions(origin["DomainName"], synth.logical_id(target_api))
    assert mentions(origin["DomainName"], ".execute-api.")


def test_api_behavior_allows_all_methods_and_sets_forwarded_host(synth: Synth) -> None:
    config = _distribution(synth)
    (api,) = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "/api/*"]
    assert set(api["AllowedMethods"]) == {
        "GET",
        "HEAD",
        "OPTIONS",
        "PUT",
        "PATCH",
        "POST",
        "DELETE",
    }
    (association,) = api["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    function_id = association["FunctionARN"]["Fn::GetAtt"][0]
    fn = synth.template(synth.stacks.edge)["Resources"][function_id]["Properties"]
    assert fn["FunctionCode"] == FORWARDED_HOST_FUNCTION
    assert fn["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"


def test_forwarded_host_function_runs() -> None:
    # Node.js is a stated requirement (the CDK CLI runs on it): fail, never skip, without it.
    assert shutil.which("node"), "node is not installed (the README lists Node.js 20+)"
    event = {
        "request": {
            "headers": {
                "host": {"value": "meet.example.org"},
                "x-forwarded-host": {"value": "evil.example"},
            }
        }
    }
    program = (
        FORWARDED_HOST_FUNCTION + f"console.log(JSON.stringify(handler({json.dumps(event)})));"
    )
    out = subprocess.run(["node", "-e", program], capture_output=True, text=True, check=True)
    headers = json.loads(out.stdout)["headers"]
    assert headers["x-forwarded-host"] == {"value": "meet.example.org"}
    assert headers["host"] == {"value": "meet.example.org"}


def test_site_paths_outside_the_files_get_the_404_page(synth: Synth) -> None:
    edge = synth.stacks.edge
    default = _distribution(synth)["DefaultCacheBehavior"]
    (association,) = default["FunctionAssociations"]
    assert association["EventType"] == "viewer-request"
    functions = synth.resources(edge, "AWS::CloudFront::Function")
    fn = functions[association["FunctionARN"]["Fn::GetAtt"][0]]["Properties"]
    assert fn["FunctionConfig"]["Runtime"] == "cloudfront-js-2.0"
    assert fn["FunctionCode"] == not_found_function()
    assert len(fn["FunctionCode"].encode()) < FUNCTION_CODE_LIMIT
    paths = site_paths()
    assert {"/", "/index.html", "/join.html", "/404.html", "/favicon.svg", "/room/room.js"} <= set(
        paths
    )
    assert not [p for p in paths if "node_modules" in p or p.endswith(".test.js")]


def test_not_found_function_runs() -> None:
    assert shutil.which("node"), "node is not installed (the README lists Node.js 20+)"
    uris = ["/", "/join.html", "/room/stage.js", "/favicon.svg", "/joinn.html", "/room/", "/x/y"]
    program = not_found_function() + "".join(
        f"console.log(JSON.stringify(handler({{request: {{uri: {json.dumps(u)}, headers: {{}}}}}})));"
        for u in uris
    )
    out = subprocess.run(["node", "-e", program], capture_output=True, text=True, check=True)
    answers = dict(zip(uris, [json.loads(line) for line in out.stdout.splitlines()], strict=True))
    for uri in ("/", "/join.html", "/room/stage.js", "/favicon.svg"):
        assert answers[uri] == {"uri": uri, "headers": {}}  # on to S3, unchanged
    for uri in ("/joinn.html", "/room/", "/x/y"):
        answer = answers[uri]
        assert answer["statusCode"] == 404
        assert answer["headers"]["content-type"] == {"value": "text/html; charset=utf-8"}
        assert "default-src 'self'" in answer["headers"]["content-security-policy"]["value"]
        assert answer["body"]["encoding"] == "text"
        assert "This page does not exist" in answer["body"]["data"]
        assert 'href="/"' in answer["body"]["data"]


def test_buckets_private_encrypted_ssl_only(synth: Synth) -> None:
    edge = synth.stacks.edge
    buckets = synth.resources(edge, "AWS::S3::Bucket")
    assert len(buckets) == 2
    for bucket in buckets.values():
        props = bucket["Properties"]
        assert props["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    site = synth.template(edge)["Resources"][synth.logical_id(edge.site_bucket)]["Properties"]
    assert site["LoggingConfiguration"]["DestinationBucketName"] == {
        "Ref": synth.logical_id(edge.logs_bucket)
    }
    policies = synth.resources(edge, "AWS::S3::BucketPolicy")
    for policy in policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny"
            and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )


def test_web_is_deployed_and_logged(synth: Synth) -> None:
    edge = synth.stacks.edge
    assert len(synth.resources(edge, "AWS::Lambda::Function")) == 1  # BucketDeployment's
    assert len(synth.resources(edge, "Custom::CDKBucketDeployment")) == 1
    logging = _distribution(synth)["Logging"]
    assert logging["Bucket"] == {
        "Fn::GetAtt": [synth.logical_id(edge.logs_bucket), "RegionalDomainName"]
    }


def test_outputs(synth: Synth) -> None:
    outputs = synth.template(synth.stacks.edge)["Outputs"]
    assert {"DistributionDomainName", "WebSocketUrl", "HttpApiUrl"} <= set(outputs)
    assert mentions(outputs["WebSocketUrl"]["Value"], f"/{routes.STAGE}")


def test_web_acl_in_us_east_1(synth: Synth) -> None:
    edge = synth.stacks.edge
    assert edge.region == "us-east-1"
    (acl_id,) = synth.resources(edge, "AWS::WAFv2::WebACL")
    acl = synth.template(edge)["Resources"][acl_id]["Properties"]
    assert acl["Scope"] == "CLOUDFRONT"
    assert acl["DefaultAction"] == {"Allow": {}}
    rate = acl["Rules"][0]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert _distribution(synth)["WebACLId"] == {"Fn::GetAtt": [acl_id, "Arn"]}


class _InlineScripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.bodies: list[str] = []
        self._inside = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script" and not any(name == "src" for name, _ in attrs):
            self._inside = True
            self.bodies.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._inside = False

    def handle_data(self, data: str) -> None:
        if self._inside:
            self.bodies[-1] += data


def test_csp_admits_exactly_the_inline_scripts_that_ship(synth: Synth) -> None:
    (policy,) = synth.resources(
        synth.stacks.edge, "AWS::CloudFront::ResponseHeadersPolicy"
    ).values()
    config = policy["Properties"]["ResponseHeadersPolicyConfig"]
    csp = config["SecurityHeadersConfig"]["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert "'unsafe-inline'" not in csp
    expected = set()
    for page in WEB_DIR.rglob("*.html"):
        parser = _InlineScripts()
        parser.feed(page.read_text(encoding="utf-8"))
        for body in parser.bodies:
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            expected.add(f"'sha256-{digest}'")
    sources = set(directives["script-src"].split())
    assert sources - {"'self'"} == expected
    assert directives["frame-ancestors"] == "'none'"


def test_web_acl_limits_each_partner_api_key(synth: Synth) -> None:
    """A rate rule per API key at the edge: requests carrying `Bearer thk_...` are counted on
    the Authorization header's value over 60 s, above the fastest rate a key can be given."""
    edge = synth.stacks.edge
    (acl_id,) = synth.resources(edge, "AWS::WAFv2::WebACL")
    rules = synth.template(edge)["Resources"][acl_id]["Properties"]["Rules"]
    (rule,) = [r for r in rules if r["Name"] == "RateLimitPerApiKey"]
    assert rule["Action"] == {"Block": {}}
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "CUSTOM_KEYS"
    assert statement["CustomKeys"] == [
        {
            "Header": {
                "Name": "authorization",
                "TextTransformations": [{"Priority": 0, "Type": "NONE"}],
            }
        }
    ]
    assert statement["EvaluationWindowSec"] == 60
    assert statement["Limit"] == 60 * MAX_RATE_PER_SECOND
    match = statement["ScopeDownStatement"]["ByteMatchStatement"]
    assert match["FieldToMatch"] == {"SingleHeader": {"Name": "authorization"}}
    assert (match["PositionalConstraint"], match["SearchString"]) == ("STARTS_WITH", "Bearer thk_")
    assert sorted(r["Priority"] for r in rules) == list(range(len(rules)))
