"""Shared helpers. Integration fixtures come from cloudship.testing (the pytest plugin).

Tests never send traffic off this machine: every name resolution in the test process goes
through ``_resolver_guard``, which refuses any name or address that is not on this machine (as
if DNS were down) and fails the test that asked. Loopback, the machine's own name and private
addresses (the engine's bridges) resolve as usual; link-local (cloud metadata services such as
169.254.169.254) does not. Tests marked ``cloud`` may reach their cloud only when chosen with
``-m cloud``. Subprocesses (the CLI, ship_child.py, dockerd) are not covered."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_real_getaddrinfo = socket.getaddrinfo
_refused: list[str] = []
_refused_lock = threading.Lock()
_LOCAL_NAMES = {"", "localhost", socket.gethostname().lower()}


def _on_this_machine(host: object) -> bool:
    if host is None:
        return True
    name = (host.decode() if isinstance(host, bytes) else str(host)).strip("[]").rstrip(".")
    name = name.lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False  # a name only DNS would answer
    if address.is_link_local:
        return False
    return address.is_loopback or address.is_private or address.is_unspecified


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _on_this_machine(host):
        with _refused_lock:
            _refused.append(str(host))
        raise socket.gaierror(socket.EAI_NONAME, f"tests may not resolve {host!r} (off-machine)")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _resolver_guard() -> Iterator[None]:
    socket.getaddrinfo = _guarded_getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = _real_getaddrinfo


@pytest.fixture(scope="session")
def _build_records(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("xdg-cache")


@pytest.fixture(autouse=True)
def _build_records_stay_in_the_run(_build_records: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ship() records each build's fingerprint under ``$XDG_CACHE_HOME`` (cloudship.
    build_fingerprint): the run's own folder, never the user's ~/.cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(_build_records))


@pytest.fixture(autouse=True)
def _no_off_machine_lookups(
    request: pytest.FixtureRequest, _resolver_guard: None
) -> Iterator[None]:
    cloud = request.node.get_closest_marker("cloud") is not None
    if cloud and "cloud" in (request.config.getoption("markexpr") or ""):
        # -m cloud: the opt-in smoke tests of a real account may reach it
        socket.getaddrinfo = _real_getaddrinfo
        try:
            yield
        finally:
            socket.getaddrinfo = _guarded_getaddrinfo
        return
    yield
    with _refused_lock:
        asked = sorted(set(_refused))
        _refused.clear()
    # Not opted in, a cloud test's credential probe (boto3 asks the instance metadata service)
    # is refused like any other and the test skips as on a machine without credentials.
    if asked and not cloud:
        pytest.fail(f"the test looked up hosts off this machine: {', '.join(asked)}")


HTTPD = '["busybox", "httpd", "-f", "-v", "-p", "8000", "-h", "/www"]'


def write_app(folder: Path, body: str = "v1", *, cmd: str = HTTPD, expose: bool = True) -> Path:
    """A tiny web app on busybox httpd: fast to build, a real HTTP server to probe."""
    (folder / "www").mkdir(parents=True, exist_ok=True)
    (folder / "www" / "index.html").write_text(body + "\n")
    lines = [
        "FROM busybox:latest",
        "RUN echo dependencies-layer > /deps.txt",
        "COPY www /www",
        *(["EXPOSE 8000"] if expose else []),
        f"CMD {cmd}",
    ]
    (folder / "Dockerfile").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return write_app(tmp_path / "web")
