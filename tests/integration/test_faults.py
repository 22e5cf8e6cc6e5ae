"""cloudship.testing.faults on its own: the fault proxy passes the registry through unchanged
and fails exactly the requests its rules name; the engine relay works until it is cut."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from cloudship import EngineError
from cloudship.engine import Engine
from cloudship.testing.faults import EngineSocketProxy, FaultyRegistry
from cloudship.testing.registry import ThrowawayRegistry


def test_passes_through_then_fails_as_told(cloudship_registry: ThrowawayRegistry) -> None:
    with FaultyRegistry(upstream=cloudship_registry.address) as faulty:
        url = f"http://{faulty.address}/v2/"
        assert httpx.get(url).status_code == 200
        faulty.fail("GET", r"^/v2/$", status=503, times=2)
        assert [httpx.get(url).status_code for _ in range(3)] == [503, 503, 200]
        faulty.fail(None, r"^/v2/$", status=429, times=1)
        limited = httpx.get(url)
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
        faulty.fail("GET", r"^/v2/$", action="reset")
        with pytest.raises(httpx.TransportError):
            httpx.get(url)
        faulty.fail("GET", r"^/v2/$", action="close")
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(url)
        assert [what for _, _, what in faulty.log] == [
            "200",
            "503",
            "503",
            "200",
            "429",
            "reset",
            "close",
        ]


def test_a_hang_holds_the_request_until_released(cloudship_registry: ThrowawayRegistry) -> None:
    with FaultyRegistry(upstream=cloudship_registry.address) as faulty:
        faulty.hang()
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"http://{faulty.address}/v2/", timeout=0.5)
        threading.Timer(0.3, faulty.release).start()
        started = time.monotonic()
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"http://{faulty.address}/v2/", timeout=5)
        assert time.monotonic() - started < 3


def test_the_engine_relay_answers_until_cut(cloudship_engine: Engine) -> None:
    with EngineSocketProxy() as relay:
        engine = Engine(relay.docker_host)
        assert engine.client.ping()
        relay.cut()
        with pytest.raises(EngineError, match="lost the Docker engine"):
            engine.inspect("busybox:latest")
