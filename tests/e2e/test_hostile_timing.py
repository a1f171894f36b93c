"""Hostile input, class "timing": slow, stalled and abandoned requests (raw sockets).

Issue 9, finding 4 (bodies read in full before authentication, with no read timeout) and
finding 7 (a client that disconnects mid-body logs a 45-line ERROR traceback) are
reproduced here. The suite's service has 2 s header and body timeouts.
"""

from __future__ import annotations

import socket
import time

from tests.e2e._hostile import (
    ANSWER_TIMEOUT_S,
    HostileService,
    alongside,
    hostile,
    spans_body,
)

__all__ = ["hostile"]  # the fixture


def _connect(svc: HostileService) -> socket.socket:
    return socket.create_connection(("127.0.0.1", svc.http_port), timeout=ANSWER_TIMEOUT_S)


def _head(key: str | None, length: int) -> bytes:
    lines = [
        "POST /v1/traces HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/x-protobuf",
        f"Content-Length: {length}",
    ]
    if key is not None:
        lines.append(f"Authorization: Bearer {key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (or the client timeout ends)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


def test_a_stalled_body_is_answered_408_after_the_body_timeout(hostile: HostileService) -> None:
    _, key = hostile.new_org()

    def attack() -> bytes:
        with _connect(hostile) as sock:
            sock.sendall(_head(key, 1_000_000) + b"\x00" * 100_000)  # then nothing
            return _read_answer(sock)

    answer = alongside(hostile, attack)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"not received within 2s" in answer


def test_an_unauthenticated_body_is_not_read(hostile: HostileService) -> None:
    """Finding 4: 16 unauthenticated 60 MiB uploads held about 1 GB until they closed."""

    def attack() -> bytes:
        with _connect(hostile) as sock:
            sock.sendall(_head(None, 60 * 1024 * 1024) + b"\x00" * 65536)  # then stall
            return _read_answer(sock)

    answer = alongside(hostile, attack)
    assert answer.startswith(b"HTTP/1.1 401 ")  # answered without waiting for the body


def test_headers_sent_a_byte_at_a_time_are_cut_off(hostile: HostileService) -> None:
    def attack() -> tuple[bool, int]:
        sent = 0
        with _connect(hostile) as sock:
            sock.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            try:
                for _ in range(40):  # 20 s of trickling, far past the 2 s header timeout
                    sock.sendall(b"X")
                    sent += 1
                    time.sleep(0.5)
                    sock.settimeout(0.01)
                    try:
                        if sock.recv(1) == b"":
                            return True, sent
                    except TimeoutError:
                        pass
            except (BrokenPipeError, ConnectionResetError):
                return True, sent
        return False, sent

    closed, sent = alongside(hostile, attack)
    assert closed
    assert sent < 40


def test_an_idle_connection_is_closed(hostile: HostileService) -> None:
    def attack() -> bytes:
        with _connect(hostile) as sock:
            return _read_answer(sock)  # sends nothing at all

    assert alongside(hostile, attack) == b""


def test_a_client_disconnect_is_one_line_and_a_count(hostile: HostileService) -> None:
    """Finding 7: a disconnect mid-body produced a 45-line ERROR traceback."""
    _, key = hostile.new_org()
    before = hostile.refusals("client_disconnect")

    def attack() -> None:
        with _connect(hostile) as sock:
            sock.sendall(_head(key, 500_000) + spans_body(3)[:100])
            time.sleep(0.3)  # the request is being read when the client goes away

    alongside(hostile, attack)
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    while hostile.refusals("client_disconnect") < before + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert hostile.refusals("client_disconnect") == before + 1
    log = hostile.stderr_text()
    assert "Traceback" not in log
    assert "ClientDisconnect" not in log
