from townhall.notifier import management_endpoint


def test_endpoint_is_the_api_domain_and_stage_unless_overridden() -> None:
    assert management_endpoint("abc.execute-api.eu-west-1.amazonaws.com", "ws", None) == (
        "https://abc.execute-api.eu-west-1.amazonaws.com/ws"
    )
    assert management_endpoint("x", "ws", "http://127.0.0.1:9/ws") == "http://127.0.0.1:9/ws"
