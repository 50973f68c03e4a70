"""Outbound requests cannot be turned against ARM's own network (issue 25 item 6): URLs are checked when
saved, every address a name resolves to is checked when called, the connection goes to the address
checked, answers are bounded in time and size, and redirects are never followed."""

import ipaddress
import socket

import pytest

from notifications import outbound
from notifications.outbound import OutboundError, UnsafeURL, check_url

REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def dns(monkeypatch):
    """``dns["name"] = ["10.0.0.5", ...]``: what names resolve to (addresses resolve to themselves)."""
    answers: dict[str, list[str]] = {}
    calls: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        calls.append(host)
        if host in answers:
            return [
                (
                    socket.AF_INET6 if ipaddress.ip_address(a).version == 6 else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port),
                )
                for a in answers[host]
            ]
        return REAL_GETADDRINFO(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return _Dns(answers, calls)


class _Dns:
    def __init__(self, answers, calls):
        self.answers, self.calls = answers, calls

    def __setitem__(self, name, addresses):
        self.answers[name] = addresses


@pytest.fixture(autouse=True)
def _defaults(settings):
    settings.DEBUG = False
    settings.ARM_OUTBOUND_ALLOW_PRIVATE = False
    settings.ARM_OUTBOUND_ALLOW_HTTP = False
    settings.ARM_OUTBOUND_ALLOW_HOSTS = []


# ---------------------------------------------------------------- check_url (forms, serializers, models)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://hooks.example.com/x", "Use https"),
        ("ftp://hooks.example.com/x", "Only https"),
        ("https://user:pass@hooks.example.com/x", "Credentials"),
        ("https:///path-only", "no host"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://localhost:8443/x", "loopback"),
        ("https://10.1.2.3/x", "private"),
        ("https://192.168.0.10/x", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/x", "loopback"),
        ("https://[fd00::1]/x", "private"),
        ("https://[::ffff:10.0.0.1]/x", "private"),
        ("https://224.0.0.1/x", "multicast"),
        ("https://0.0.0.0/x", "unspecified"),
        ("https://100.64.0.1/x", "non-public"),
    ],
)
def test_unsafe_urls_are_refused_with_the_reason(url, reason):
    with pytest.raises(UnsafeURL, match=reason):
        check_url(url)


def test_public_https_urls_pass():
    assert check_url("https://hooks.slack.com/services/T0/B0/x") == "https://hooks.slack.com/services/T0/B0/x"
    assert check_url("https://93.184.215.14:8443/hook")


def test_admins_may_allow_http_private_ranges_or_named_hosts(settings):
    settings.ARM_OUTBOUND_ALLOW_HTTP = True
    assert check_url("http://hooks.example.com/x")
    settings.ARM_OUTBOUND_ALLOW_HOSTS = ["10.20.0.0/16", "ci.internal"]
    assert check_url("https://10.20.3.4/x")
    with pytest.raises(UnsafeURL):
        check_url("https://10.21.3.4/x")
    settings.ARM_OUTBOUND_ALLOW_PRIVATE = True
    assert check_url("https://127.0.0.1:8000/x")


# ---------------------------------------------------------------- request (connect time)


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["127.0.0.1"],
        ["169.254.169.254"],
        ["::1"],
        ["fc00::7"],
        ["93.184.215.14", "192.168.1.1"],  # one bad address among good ones is enough
    ],
)
def test_a_name_that_resolves_to_a_private_range_is_refused_before_connecting(dns, addresses, monkeypatch):
    dns["hooks.example.com"] = addresses
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("must not connect"))
    with pytest.raises(UnsafeURL, match="resolves to"):
        outbound.request("POST", "https://hooks.example.com/x", body=b"{}")


def test_the_connection_goes_to_the_address_checked_with_the_name_kept(dns, receiver, settings):
    settings.ARM_OUTBOUND_ALLOW_HTTP = True
    settings.ARM_OUTBOUND_ALLOW_HOSTS = ["127.0.0.0/8"]
    port = receiver.url.split(":")[2].split("/")[0]
    dns["hooks.example.com"] = ["127.0.0.1"]

    response = outbound.request("POST", f"http://hooks.example.com:{port}/hooks/arm", body=b"{}")

    assert response.status == 200
    assert response.address == "127.0.0.1"
    assert receiver.received[0].headers["host"] == f"hooks.example.com:{port}"
    assert dns.calls.count("hooks.example.com") == 1  # resolved once: no second answer to trust


def test_a_redirect_is_returned_not_followed(receiver, settings):
    settings.ARM_OUTBOUND_ALLOW_PRIVATE = settings.ARM_OUTBOUND_ALLOW_HTTP = True
    receiver.respond = lambda item: (307, 0, {"Location": "http://169.254.169.254/"})
    response = outbound.request("POST", receiver.url, body=b"{}")
    assert (response.status, response.headers["location"]) == (307, "http://169.254.169.254/")
    assert len(receiver.received) == 1


def test_an_oversized_answer_is_read_up_to_the_cap(receiver, settings):
    settings.ARM_OUTBOUND_ALLOW_PRIVATE = settings.ARM_OUTBOUND_ALLOW_HTTP = True
    receiver.respond = lambda item: (200, 0, {}, b"x" * 5_000_000)
    response = outbound.request("POST", receiver.url, body=b"{}", max_bytes=1000)
    assert (len(response.body), response.truncated) == (1000, True)


def test_a_slow_server_times_out(receiver, settings):
    settings.ARM_OUTBOUND_ALLOW_PRIVATE = settings.ARM_OUTBOUND_ALLOW_HTTP = True
    receiver.respond = lambda item: (200, 2.0)
    with pytest.raises(OutboundError, match="timed out"):
        outbound.request("POST", receiver.url, body=b"{}", timeout=0.3)


def test_errors_name_the_host_never_the_path_that_holds_a_secret(settings):
    settings.ARM_OUTBOUND_ALLOW_PRIVATE = settings.ARM_OUTBOUND_ALLOW_HTTP = True
    with pytest.raises(OutboundError) as failed:
        outbound.request("POST", "http://127.0.0.1:9/services/T000/B000/SECRETTOKEN", body=b"{}")
    assert "SECRETTOKEN" not in str(failed.value)
    assert "http://127.0.0.1:9" in str(failed.value)


# ---------------------------------------------------------------- kept connections (webhook deliveries)


@pytest.fixture
def kept(settings):
    settings.ARM_OUTBOUND_ALLOW_PRIVATE = settings.ARM_OUTBOUND_ALLOW_HTTP = True
    outbound.close_kept_connections()
    yield
    outbound.close_kept_connections()


def _peers(receiver) -> list:
    return [item.peer for item in receiver.received]


def test_kept_alive_requests_to_one_host_share_a_connection(receiver, kept):
    for _ in range(3):
        assert outbound.request("POST", receiver.url, body=b"{}", keep_alive=True).status == 200
    assert len(receiver.received) == 3 and len(set(_peers(receiver))) == 1


def test_without_keep_alive_each_request_has_its_own_connection(receiver, kept):
    for _ in range(2):
        outbound.request("POST", receiver.url, body=b"{}")
    assert len(set(_peers(receiver))) == 2


def test_a_connection_the_server_closed_while_idle_is_replaced_and_the_request_goes_once(receiver, kept):
    receiver.hang_up = True
    outbound.request("POST", receiver.url, body=b"1", keep_alive=True)
    response = outbound.request("POST", receiver.url, body=b"2", keep_alive=True)
    assert response.status == 200
    assert [item.body for item in receiver.received] == [b"1", b"2"]
    assert len(set(_peers(receiver))) == 2


@pytest.mark.parametrize(
    "respond, expired",
    [
        (lambda item: (200, 0, {"Connection": "close"}), None),  # the server asked
        (lambda item: (200, 0, {}, b"x" * 5000), None),  # capped: the rest is unread
        (None, "KEEP_ALIVE_IDLE_SECONDS"),  # idle too long
        (None, "KEEP_ALIVE_MAX_SECONDS"),  # open too long: resolved and checked again
    ],
)
def test_a_connection_is_not_used_again_when_it_may_not_be(receiver, kept, monkeypatch, respond, expired, dns):
    receiver.respond = respond
    host_port = receiver.url.split("//")[1].split("/")[0]
    dns["hooks.example.com"] = ["127.0.0.1"]
    url = receiver.url.replace(host_port, f"hooks.example.com:{host_port.split(':')[1]}")
    if expired:
        monkeypatch.setattr(outbound, expired, 0.0)
    for _ in range(2):
        outbound.request("POST", url, body=b"{}", keep_alive=True, max_bytes=1000)
    assert len(set(_peers(receiver))) == 2
    assert dns.calls.count("hooks.example.com") == 2  # a new connection resolves and checks the name again


def test_a_kept_connection_is_resolved_once(receiver, kept, dns):
    host_port = receiver.url.split("//")[1].split("/")[0]
    dns["hooks.example.com"] = ["127.0.0.1"]
    url = receiver.url.replace(host_port, f"hooks.example.com:{host_port.split(':')[1]}")
    for _ in range(3):
        outbound.request("POST", url, body=b"{}", keep_alive=True)
    assert dns.calls.count("hooks.example.com") == 1 and len(set(_peers(receiver))) == 1
