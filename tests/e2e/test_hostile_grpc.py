"""Hostile input over OTLP/gRPC: what costs the receiver something before authentication.

Issue 9, finding 4 and deliverable 4 for gRPC: the key is checked before the message is
read (so before it is decoded), a stalled message is cut off after the body timeout, the
process's bound on bodies in flight covers gRPC messages, and silent, idle or crowded
connections are bounded by server options, checked here on the wire with a raw HTTP/2
client (``h2``) where a gRPC client hides them. The suite's service has 2 s header and
body timeouts, a 5 s idle timeout, 2 s keepalive pings and 6 streams per connection.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Callable, Iterator
from urllib.parse import unquote

import grpc
import h2.config
import h2.connection
import h2.events
import pytest

from storage import admin
from storage.migrate import StorageEngine
from tests.conftest import ENGINES, PgServer
from tests.e2e._hostile import (
    ANSWER_TIMEOUT_S,
    TRACES_METHOD,
    GrpcAnswer,
    HostileService,
    alongside,
    grpc_export,
    hostile,
    serve,
    spans_body,
)

__all__ = ["hostile"]  # the fixture

MiB = 1024 * 1024
RECEIVED = "aeos_receiver_received_bytes_total"
IN_FLIGHT = "aeos_receiver_body_bytes_in_flight"
_Events = list[h2.events.Event]


@pytest.fixture(scope="module", params=ENGINES)
def lone(
    request: pytest.FixtureRequest,
    pg_server: PgServer,
    templates: dict[StorageEngine, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[HostileService]:
    """One receiver process (so that every connection shares its budget), 30 s bodies."""
    yield from serve(
        request, pg_server, templates, tmp_path_factory,
        AEOS_RECEIVER_WORKERS="1", AEOS_RECEIVER_BODY_TIMEOUT_SECONDS="30",
    )  # fmt: skip


def _grpc_bytes(svc: HostileService) -> float:
    return svc.metric(RECEIVED, 'transport="grpc"')


def _revoked_key(svc: HostileService) -> str:
    org, _ = svc.new_org()
    with svc.db.admin_engine().begin() as conn:
        name = str(svc.scalar("SELECT name FROM orgs WHERE id = :o", o=org))
        key = admin.create_key(conn, name, "ingest")
        admin.revoke_key(conn, str(key.key_id))
    return key.plaintext


def _assert_retry_later(answer: GrpcAnswer, needle: str) -> None:
    assert answer.code == grpc.StatusCode.UNAVAILABLE, answer
    assert needle in answer.details
    assert answer.retry_delay_s is not None
    assert answer.retry_delay_s >= 1


def test_an_unauthenticated_message_is_never_read(hostile: HostileService) -> None:
    """Finding 4 over gRPC: the message was received in full, then the key checked."""
    big = spans_body(1, {"blob": "x" * (3 * MiB)})
    revoked = _revoked_key(hostile)
    bogus = f"aeos_ik_{uuid.uuid4().hex[:8]}_{'A' * 43}"
    before, refused = _grpc_bytes(hostile), hostile.refusals("unauthenticated")

    def attack() -> list[GrpcAnswer]:
        return [grpc_export(hostile.grpc_endpoint, k, big) for k in (None, revoked, bogus)]

    answers = alongside(hostile, attack)  # the normal request over HTTP: gRPC bytes are ours
    assert [a.code for a in answers] == [grpc.StatusCode.UNAUTHENTICATED] * 3
    assert "missing authorization header" in answers[0].details
    assert "unknown or revoked ingest key" in answers[1].details
    assert _grpc_bytes(hostile) == before  # not one of the 9 MiB was read
    assert hostile.refusals("unauthenticated") == refused + 3
    _, key = hostile.new_org()
    small = spans_body(2)
    assert grpc_export(hostile.grpc_endpoint, key, small).code == grpc.StatusCode.OK
    assert _grpc_bytes(hostile) == before + len(small)  # what is read is counted


def test_a_message_over_the_size_limit_is_resource_exhausted(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    huge = spans_body(1, {"blob": "x" * (4 * MiB + 1)})
    before = hostile.refusals("incomplete")

    answer = alongside(hostile, lambda: grpc_export(hostile.grpc_endpoint, key, huge), "grpc")
    assert answer.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in answer.details  # gRPC's own answer, before reading it all
    assert answer.retry_delay_s is None  # not retryable: the client must split it
    assert hostile.refusals("incomplete") == before + 1  # grpcio hides why from the handler


def _h2_client(port: int) -> tuple[socket.socket, h2.connection.H2Connection]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=ANSWER_TIMEOUT_S)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def _h2_events(
    sock: socket.socket, conn: h2.connection.H2Connection, done: Callable[[_Events], bool]
) -> _Events:
    """Events until ``done`` says so, the server closes, or the client timeout ends."""
    events: _Events = []
    try:
        while not done(events):
            data = sock.recv(65536)
            if not data:
                break
            events.extend(conn.receive_data(data))
            sock.sendall(conn.data_to_send())  # acknowledges SETTINGS and PINGs
    except (TimeoutError, ConnectionResetError, BrokenPipeError):
        pass
    return events


def _seen(*kinds: type[h2.events.Event]) -> Callable[[_Events], bool]:
    return lambda events: any(isinstance(e, kinds) for e in events)


def _status(events: _Events) -> dict[bytes, bytes]:
    """The grpc-status and grpc-message of a call (trailers, or a trailers-only answer)."""
    headers: dict[bytes, bytes] = {}
    for event in events:
        if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
            headers.update((bytes(k), bytes(v)) for k, v in event.headers)
    return headers


def test_an_unauthenticated_call_is_answered_before_its_message_arrives(
    hostile: HostileService,
) -> None:
    """Finding 4 over gRPC, on the wire: the answer does not wait for the message."""

    def attack() -> _Events:
        sock, conn = _stalled_call(hostile, None)
        with sock:
            return _h2_events(sock, conn, _seen(h2.events.StreamEnded, h2.events.StreamReset))

    status = _status(alongside(hostile, attack, "grpc"))
    assert status[b"grpc-status"] == str(grpc.StatusCode.UNAUTHENTICATED.value[0]).encode()
    assert "missing authorization header" in unquote(status[b"grpc-message"].decode())


def test_a_stalled_message_is_cut_off_after_the_body_timeout(hostile: HostileService) -> None:
    _, key = hostile.new_org()
    before = hostile.refusals("timeout")

    def attack() -> _Events:
        sock, conn = _stalled_call(hostile, key)
        with sock:
            return _h2_events(sock, conn, _seen(h2.events.StreamEnded, h2.events.StreamReset))

    status = _status(alongside(hostile, attack, "grpc"))
    assert status[b"grpc-status"] == str(grpc.StatusCode.DEADLINE_EXCEEDED.value[0]).encode()
    assert "not received within 2s" in unquote(status[b"grpc-message"].decode())
    assert hostile.refusals("timeout") == before + 1


def test_a_silent_connection_is_closed_after_the_header_timeout(hostile: HostileService) -> None:
    def attack() -> bool:
        with socket.create_connection(("127.0.0.1", hostile.grpc_port), timeout=20) as sock:
            try:
                while sock.recv(65536):  # the server's SETTINGS, then the close
                    pass
            except TimeoutError:
                return False
            except ConnectionResetError:
                pass
            return True

    assert alongside(hostile, attack, "grpc")  # closed, not left open for the client's 20 s


def test_an_idle_connection_is_asked_to_go_away(hostile: HostileService) -> None:
    def attack() -> _Events:
        sock, conn = _h2_client(hostile.grpc_port)
        with sock:
            return _h2_events(sock, conn, _seen(h2.events.ConnectionTerminated))

    events = alongside(hostile, attack, "grpc")
    settings = [e for e in events if isinstance(e, h2.events.RemoteSettingsChanged)]
    limit = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
    assert settings[0].changed_settings[limit].new_value == 6  # streams per connection
    assert isinstance(events[-1], h2.events.ConnectionTerminated)  # GOAWAY when idle


def _stalled_call(
    svc: HostileService, key: str | None
) -> tuple[socket.socket, h2.connection.H2Connection]:
    """A call whose 1 MB message (announced by its length prefix) stops after 1,000 bytes."""
    sock, conn = _h2_client(svc.grpc_port)
    headers = [
        (":method", "POST"), (":scheme", "http"), (":path", TRACES_METHOD),
        (":authority", "127.0.0.1"), ("content-type", "application/grpc"), ("te", "trailers"),
    ]  # fmt: skip
    if key is not None:
        headers.append(("authorization", f"Bearer {key}"))
    conn.send_headers(1, headers)
    conn.send_data(1, b"\x00" + (1_000_000).to_bytes(4, "big") + b"\x00" * 1000)
    sock.sendall(conn.data_to_send())
    return sock, conn


def test_a_peer_that_stops_answering_pings_is_dropped(lone: HostileService) -> None:
    """Keepalive: a stalled call (30 s body timeout here) whose peer never acknowledges
    the server's pings is dropped after the 2 s keepalive timeout, and counted."""
    _, key = lone.new_org()
    before = lone.refusals("incomplete")

    def attack() -> _Events:
        sock, conn = _stalled_call(lone, key)
        events: _Events = []
        with sock:
            try:
                while data := sock.recv(65536):
                    new = conn.receive_data(data)
                    events.extend(new)
                    out = conn.data_to_send()  # SETTINGS ACK and the like: sent...
                    if not any(isinstance(e, h2.events.PingReceived) for e in new):
                        sock.sendall(out)  # ...but never a PING ACK
            except (TimeoutError, ConnectionResetError):
                pass
        return events

    events = alongside(lone, attack, "grpc")
    assert any(isinstance(e, h2.events.PingReceived) for e in events)
    assert b"grpc-status" not in _status(events)  # dropped, not answered by the body timeout
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while lone.refusals("incomplete") < before + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lone.refusals("incomplete") == before + 1


def _stall(svc: HostileService, key: str, length: int) -> socket.socket:
    """An OTLP/HTTP request whose body (``length`` bytes declared) never comes."""
    sock = socket.create_connection(("127.0.0.1", svc.http_port), timeout=ANSWER_TIMEOUT_S)
    head = (
        "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/x-protobuf\r\nContent-Length: {length}\r\n"
        f"Authorization: Bearer {key}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def _wait_for(svc: HostileService, in_flight: int) -> None:
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while svc.metric(IN_FLIGHT) < in_flight and time.monotonic() < deadline:
        time.sleep(0.1)
    assert svc.metric(IN_FLIGHT) == in_flight


def test_grpc_messages_count_against_the_bodies_in_flight(lone: HostileService) -> None:
    """16 MiB per process, 8 MiB per key: 14 MiB held by two keys' stalled uploads."""
    (_, full), (_, other), (_, third) = (lone.new_org() for _ in range(3))
    stalled = [_stall(lone, full, 4 * MiB), _stall(lone, full, 4 * MiB),
               _stall(lone, other, 4 * MiB), _stall(lone, other, 2 * MiB)]  # fmt: skip
    try:
        _wait_for(lone, 14 * MiB)
        before, refused = _grpc_bytes(lone), lone.refusals("bodies_in_flight")
        # The key holding its half is refused before its message is read...
        answer = grpc_export(lone.grpc_endpoint, full, spans_body(1))
        _assert_retry_later(answer, "too many request bodies")
        assert _grpc_bytes(lone) == before
        # ...another key's 3 MiB message, read, is over the process's bound.
        big = spans_body(1, {"blob": "x" * (3 * MiB)})
        answer = alongside(lone, lambda: grpc_export(lone.grpc_endpoint, third, big), "grpc")
        _assert_retry_later(answer, "too many request bodies")
        assert lone.refusals("bodies_in_flight") == refused + 2
    finally:
        for sock in stalled:
            sock.close()
    _wait_for(lone, 0)  # every byte given back
    assert grpc_export(lone.grpc_endpoint, third, spans_body(1)).code == grpc.StatusCode.OK
