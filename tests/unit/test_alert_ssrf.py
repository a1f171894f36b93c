"""The SSRF guard refuses every non-public target form, and allows private ones only
when asked."""

from __future__ import annotations

import ipaddress

import pytest

from alerting.ssrf import BlockedTargetError, check_url, refusal

REFUSED = [
    "http://127.0.0.1/hook",
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[64:ff9b::7f00:1]/hook",
    "http://[2002:7f00:1::]/hook",
    "http://2130706433/hook",
    "http://0x7f000001/hook",
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://localhost/hook",
    "http://224.0.0.1/hook",
    "http://[ff02::1]/hook",
    "http://0.0.0.0/hook",
    "http://[::]/hook",
    "http://100.64.0.1/hook",
    "http://198.18.0.1/hook",
    "http://240.0.0.1/hook",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "ftp://8.8.8.8/x",
    "file:///etc/passwd",
    "http:///nohost",
]


@pytest.mark.parametrize("url", REFUSED)
def test_refused(url: str) -> None:
    with pytest.raises(BlockedTargetError):
        check_url(url)


def test_public_literal_is_allowed_and_connects_to_the_checked_address() -> None:
    target = check_url("https://8.8.8.8:8443/path?q=1")
    assert target.connect_url() == "https://8.8.8.8:8443/path?q=1"
    assert target.host_header() == "8.8.8.8:8443"
    v6 = check_url("http://[2001:4860:4860::8888]/x")
    assert v6.connect_url() == "http://[2001:4860:4860::8888]:80/x"


def test_private_targets_only_when_allowed() -> None:
    assert check_url("http://127.0.0.1:8080/h", allow_private=True).port == 8080
    assert check_url("http://localhost:8080/h", allow_private=True).address.is_loopback
    assert check_url("http://10.0.0.1/h", allow_private=True).host == "10.0.0.1"
    for url in ("http://224.0.0.1/", "http://0.0.0.0/", "http://2130706433/"):
        with pytest.raises(BlockedTargetError):
            check_url(url, allow_private=True)


def test_embedded_forms_are_judged_by_their_ipv4() -> None:
    assert refusal(ipaddress.ip_address("64:ff9b::808:808")) is None  # NAT64 of 8.8.8.8
    assert refusal(ipaddress.ip_address("::ffff:8.8.8.8")) is None
    assert "embedded" in (refusal(ipaddress.ip_address("2002:a00:1::")) or "")
