"""The test kit's in-process HTTP servers answer without Nagle's delay."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from cloudship.testing.registry import http_server_on, loopback_listener


def test_http_server_on_disables_nagle_even_for_a_handler_that_does_not_ask() -> None:
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            self.send_response(204)
            self.end_headers()

    server = http_server_on(loopback_listener(), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 204
    finally:
        server.shutdown()
        server.server_close()
    assert seen and seen[0] != 0
    assert Handler.disable_nagle_algorithm is False  # the caller's class is left as it was
