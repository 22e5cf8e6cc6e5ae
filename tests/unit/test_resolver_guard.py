"""The suite's resolver guard (tests/conftest.py) refuses names off this machine and lets
loopback and the engine's bridges through."""

from __future__ import annotations

import socket

import pytest

from tests import conftest


@pytest.mark.parametrize(
    "host", ["registry-1.docker.io", "management.azure.com", "169.254.169.254", "8.8.8.8"]
)
def test_a_lookup_off_this_machine_is_refused_and_recorded(host: str) -> None:
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(host, 443)
    assert conftest._refused == [host]
    conftest._refused.clear()  # recorded as it should be: this test must not fail for it


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "172.17.0.2", None])
def test_loopback_and_local_addresses_resolve(host: str | None) -> None:
    assert socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    assert conftest._refused == []
