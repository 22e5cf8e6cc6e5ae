"""The ARM fake served over HTTPS on a loopback port, with a throw-away CA (trustme).

azure-core refuses bearer tokens over plain HTTP, and a fake that needed certificate checks
turned off would let real misconfiguration pass; so clients trust ``ca_path`` instead::

    with FakeArmServer() as server:
        client = ContainerAppsAPIClient(credential, server.arm_settings.subscription, ...,
                                        base_url=server.url, connection_verify=server.ca_path)
"""

from __future__ import annotations

import json
import shutil
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cloudship.testing.registry import http_server_on, loopback_listener
from cloudship_azure.fake.arm import FakeArm
from cloudship_azure.fake.containerapps import RevisionRunner
from cloudship_azure.fake.messages import Request


class FakeArmServer:
    """Start/stop a ``FakeArm`` on ``https://127.0.0.1:PORT``; ``arm`` is its state."""

    def __init__(self, *, runner: RevisionRunner | None = None, **options: Any) -> None:
        import trustme

        self._listener = loopback_listener()
        self.port = int(self._listener.getsockname()[1])
        self.url = f"https://127.0.0.1:{self.port}"
        self.runner = runner
        self.arm = FakeArm(base_url=self.url, runner=runner, **options)
        self._folder = Path(tempfile.mkdtemp(prefix="cloudship-fake-arm-"))
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = str(self._folder / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self._context)
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> FakeArmServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        arm = self.arm

        class Handler(BaseHTTPRequestHandler):
            # Headers and body go out in separate writes: without TCP_NODELAY each answer
            # waits ~40 ms on Nagle + delayed ACK.
            disable_nagle_algorithm = True

            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: ``arm.log`` keeps what tests need, without headers."""

            def _serve(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=url.path,
                    query=dict(parse_qsl(url.query)),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                response = arm.handle(request)
                if isinstance(response.body, str):
                    data, kind = response.body.encode(), "text/plain; charset=utf-8"
                else:
                    data = b"" if response.body is None else json.dumps(response.body).encode()
                    kind = "application/json; charset=utf-8"
                self.send_response(response.status)
                for name, value in response.headers.items():
                    self.send_header(name, value)
                if data:
                    self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = do_HEAD = _serve

        server = http_server_on(self._listener, Handler)
        server.socket = self._context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._listener.close()  # also when it never served
        self.arm.close()
        shutil.rmtree(self._folder, ignore_errors=True)
