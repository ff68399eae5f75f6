"""The node's command line, and the Auto Scaling boundary (boto3 replaced by a recorder)."""

from __future__ import annotations

import os
from typing import Any

import pytest

from media_fleet.service import lifecycle_hook
from media_fleet.service.settings import parse
from media_fleet.service.supervisor import lifecycle_completion

REQUIRED = ["--node-id", "n-1", "--control-port", "8700", "--jwks", "/etc/jwks.json"]


def test_defaults_one_worker_per_core_and_no_registry() -> None:
    settings = parse(REQUIRED)
    assert settings.workers == (os.cpu_count() or 1)
    assert settings.control_host == "127.0.0.1" and settings.front_url == "https://127.0.0.1:8700"
    assert settings.registry_table is None and settings.asg_name is None
    assert settings.announced_host is None and settings.control_advertise_host is None


def test_the_front_is_advertised_on_its_own_host_over_https() -> None:
    settings = parse(
        [*REQUIRED, "--control-host", "10.0.0.5", "--control-advertise-host", "203.0.113.9"]
    )
    assert settings.control_host == "10.0.0.5"
    assert settings.front_url == "https://203.0.113.9:8700"


def test_the_front_certificate_names_its_hosts_and_has_a_sha256_fingerprint() -> None:
    import hashlib
    import ipaddress

    from cryptography import x509

    from media_fleet.service.tls import generate

    certificate = generate("n-1", ["203.0.113.9", "10.0.0.5", "node.example"])
    parsed = x509.load_pem_x509_certificate(certificate.cert_pem)
    names = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("203.0.113.9"),
        ipaddress.ip_address("10.0.0.5"),
    ]
    assert names.get_values_for_type(x509.DNSName) == ["node.example"]
    assert certificate.sha256 == hashlib.sha256(certificate.der).hexdigest()
    assert len(certificate.sha256) == 64
    assert generate("n-1", ["10.0.0.5"]).sha256 != certificate.sha256  # a new key every start


@pytest.mark.parametrize(
    "extra", [["--workers", "0"], ["--capacity", "0"], ["--control-port", "70000"]]
)
def test_nonsense_is_refused(extra: list[str]) -> None:
    with pytest.raises(SystemExit):
        parse([*REQUIRED, *extra])


def test_the_lifecycle_action_is_completed_only_when_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    class Recorder:
        def complete_lifecycle_action(self, **kwargs: Any) -> None:
            calls.append(("complete_lifecycle_action", kwargs))

    def client(service: str) -> Recorder:
        assert service == "autoscaling"
        return Recorder()

    monkeypatch.setattr(lifecycle_hook.boto3, "client", client)
    assert lifecycle_completion(parse(REQUIRED)) is None
    assert lifecycle_completion(parse([*REQUIRED, "--asg-name", "g"])) is None
    configured = parse(
        [*REQUIRED, "--asg-name", "g", "--instance-id", "i-0abc", "--lifecycle-hook", "h"]
    )
    complete = lifecycle_completion(configured)
    assert complete is not None
    complete()
    assert calls == [
        (
            "complete_lifecycle_action",
            {
                "AutoScalingGroupName": "g",
                "LifecycleHookName": "h",
                "InstanceId": "i-0abc",
                "LifecycleActionResult": "CONTINUE",
            },
        )
    ]


def test_ice_can_be_limited_to_chosen_addresses(monkeypatch: pytest.MonkeyPatch) -> None:
    import aioice.ice

    from media_fleet.service.ice import gather_only_on

    monkeypatch.setattr(aioice.ice, "get_host_addresses", aioice.ice.get_host_addresses)
    assert parse([*REQUIRED, "--ice-host", "127.0.0.1", "--ice-host", "::1"]).ice_hosts == (
        "127.0.0.1",
        "::1",
    )
    gather_only_on(["127.0.0.1", "::1"])
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    with pytest.raises(ValueError):
        gather_only_on([])
