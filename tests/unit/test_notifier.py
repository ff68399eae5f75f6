"""What counts as a gone connection: boto3 raises GoneException only when the response carries
`x-amzn-ErrorType: GoneException`; a bare 410 arrives as a ClientError with code '410'."""

from botocore.exceptions import ClientError

from townhall.notifier import is_gone, management_endpoint


def _error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": ""}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PostToConnection",
    )


def test_gone_exception_and_bare_410_are_both_gone() -> None:
    assert is_gone(_error("GoneException", 410))
    assert is_gone(_error("410", 410))


def test_other_errors_are_not_gone() -> None:
    assert not is_gone(_error("LimitExceededException", 429))
    assert not is_gone(_error("ForbiddenException", 403))
    assert not is_gone(_error("PayloadTooLargeException", 413))


def test_endpoint_is_the_api_domain_and_stage_unless_overridden() -> None:
    assert management_endpoint("abc.execute-api.eu-west-1.amazonaws.com", "ws", None) == (
        "https://abc.execute-api.eu-west-1.amazonaws.com/ws"
    )
    assert management_endpoint("x", "ws", "http://127.0.0.1:9/ws") == "http://127.0.0.1:9/ws"
