"""The host's HTTP protocol: uvicorn's httptools protocol with the limits a service on a shared port needs.

- a cap on open connections: one over it is answered 503 at once and closed (nothing queues, so a flood
  of half-open connections cannot exhaust the file descriptors);
- a deadline for the request line and headers, from the connection (or the previous response) on: a
  client that connects and sends nothing, or trickles its headers, gets 408 and is closed.

The body's deadline is the application's (HostApp reads it under BODY_TIMEOUT_S).
"""

from __future__ import annotations

import asyncio
import os
import resource
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class Limits:
    max_connections: int = 1024
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0

    @classmethod
    def from_environment(cls) -> Limits:
        """The defaults, or MLOPS_GITOPS_HOST_{MAX_CONNECTIONS,HEADER_TIMEOUT_S,BODY_TIMEOUT_S}; the connection
        cap never exceeds what the file-descriptor limit leaves after the host's own files and workers."""
        env = os.environ
        wanted = int(env.get("MLOPS_GITOPS_HOST_MAX_CONNECTIONS", cls.max_connections))
        return cls(max(1, min(wanted, _descriptors() - 256)),
                   float(env.get("MLOPS_GITOPS_HOST_HEADER_TIMEOUT_S", cls.header_timeout_s)),
                   float(env.get("MLOPS_GITOPS_HOST_BODY_TIMEOUT_S", cls.body_timeout_s)))


def _descriptors() -> int:
    """Raise the soft file-descriptor limit to the hard one; the number the host may use."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _response(status: int, reason: str, message: str) -> bytes:
    body = orjson.dumps({"error": message})
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\nconnection: close\r\n"
            f"content-length: {len(body)}\r\n\r\n").encode() + body


class GuardedProtocol(HttpToolsProtocol):
    limits = Limits()
    refusal = b""
    too_slow = b""
    _refused = False
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            transport.write(self.refusal)
            transport.close()
            return
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._refused:
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the next request on a kept-alive connection
            self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        super().on_headers_complete()

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.limits.header_timeout_s, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.write(self.too_slow)
            self.transport.close()


def guarded_protocol(limits: Limits) -> type[HttpToolsProtocol]:
    """The protocol class uvicorn instantiates per connection, bound to these limits."""
    return type("GuardedProtocol", (GuardedProtocol,), {
        "limits": limits,
        "refusal": _response(503, "Service Unavailable", f"too many connections to this endpoint host (limit "
                                                         f"{limits.max_connections}); retry later"),
        "too_slow": _response(408, "Request Timeout", f"the request line and headers did not arrive within "
                                                      f"{limits.header_timeout_s:g} s")})
