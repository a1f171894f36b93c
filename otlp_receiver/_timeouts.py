"""uvicorn's HTTP/1.1 protocol with a header timeout.

uvicorn closes idle keep-alive connections (``timeout_keep_alive``) but waits for a
request's headers forever, so a client sending them a byte at a time holds a connection
(and a file descriptor) as long as it likes. This protocol closes a connection whose
request headers are not complete ``header_timeout`` seconds after its first byte (or
after the connection opened). Body timeouts are the application's (``_http``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol


class HeaderTimeoutProtocol(H11Protocol):
    """``H11Protocol`` closing connections whose request headers arrive too slowly."""

    header_timeout: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and not self._in_request():
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self._header_timer is not None and self._in_request():
            self._header_timer.cancel()  # headers complete: the request is the app's now
            self._header_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)

    def _in_request(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._expired)

    def _expired(self) -> None:
        self._header_timer = None
        if not self._in_request() and not self.transport.is_closing():
            self.transport.close()


def protocol_class(header_timeout: float) -> type[HeaderTimeoutProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with this header timeout."""
    return type(
        "ReceiverHttpProtocol", (HeaderTimeoutProtocol,), {"header_timeout": header_timeout}
    )
