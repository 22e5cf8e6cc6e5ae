"""The local runtime's pure parts: the proxy's recorded state, the service lock, the deadline
and the probe's tally."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudship import ConcurrentShipError, DeployError, ShipTimeoutError
from cloudship.deadline import Deadline
from cloudship.probe import wait_healthy
from cloudship_local.lock import if_free, lock_path, service_lock
from cloudship_local.proxy import ProxyState, parse, render


def test_proxy_configuration_records_the_state_it_serves() -> None:
    state = ProxyState("cloudship-web-r3", 3, 8000, frozenset({1, 3}))
    text = render(state)
    assert parse(text) == state
    assert "set $cloudship_upstream http://cloudship-web-r3:8000;" in text
    assert "set $cloudship_revision r3;" in text
    assert "add_header X-Cloudship-Revision $cloudship_revision always;" in text
    assert state.to("cloudship-web-r4", 4, 8000).proven == {1, 3, 4}


@pytest.mark.parametrize("text", ["", "user nginx;\n", "# cloudship-proxy {not json\n"])
def test_a_configuration_cloudship_did_not_write_has_no_state(text: str) -> None:
    assert parse(text) is None


def test_a_held_lock_is_refused_naming_its_holder(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "unix:///var/run/docker.sock", "default", "web")
    with service_lock(path, service="web", what="ship of app@sha256:abc"):
        with (
            pytest.raises(ConcurrentShipError) as refused,
            service_lock(path, service="web", what="another ship"),
        ):
            pass
        with if_free(path) as free:
            assert not free
    assert isinstance(refused.value, DeployError)
    assert "ship of app@sha256:abc" in refused.value.holder
    assert "pid " in refused.value.holder and "lock_wait" in str(refused.value)
    with if_free(path) as free:
        assert free


def test_the_lock_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "default", "default", "web")
    code = (
        "import time; from pathlib import Path; from cloudship_local.lock import service_lock\n"
        f"with service_lock(Path({str(path)!r}), service='web', what='doomed ship'):\n"
        "    print('held', flush=True); time.sleep(60)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    with (
        pytest.raises(ConcurrentShipError, match="doomed ship"),
        service_lock(path, service="web", what="mine"),
    ):
        pass
    child.kill()
    child.wait()
    with service_lock(path, service="web", what="mine"):
        pass


def test_lock_wait_queues_behind_the_holder(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "default", "default", "web")
    code = (
        "import time; from pathlib import Path; from cloudship_local.lock import service_lock\n"
        f"with service_lock(Path({str(path)!r}), service='web', what='short ship'):\n"
        "    print('held', flush=True); time.sleep(0.5)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    seen: list[object] = []
    with service_lock(path, service="web", what="mine", wait=10, on_event=seen.append):
        pass
    child.wait()
    assert seen and "short ship" in str(seen[0])


def test_deadline_gives_what_is_left_and_names_the_step() -> None:
    deadline = Deadline(0.2)
    assert 0.0 < deadline.remaining() <= 0.2 and not deadline.expired
    time.sleep(0.25)
    assert deadline.remaining() == 0.0 and deadline.expired
    with pytest.raises(
        ShipTimeoutError, match="push of app did not finish within the ship's timeout of 0 s"
    ):
        deadline.check("push of app")


def test_the_probe_says_what_it_saw() -> None:
    # Nothing listens on port 9 of loopback (discard): every attempt is refused.
    progress: list[str] = []
    result = wait_healthy(
        "http://127.0.0.1:9/", timeout=0.6, on_progress=progress.append, progress_every=0.2
    )
    assert not result.healthy
    assert result.answers.keys() == {"connection refused"}
    assert "x connection refused" in result.reason and progress
    assert result.reason.startswith(f"no healthy answer within 1 s: {result.attempts} x")


def test_an_armed_state_round_trips_and_serves_its_candidate_only_with_its_flag() -> None:
    from cloudship_local.proxy import flag

    state = ProxyState("cloudship-web-r1", 1, 8000, frozenset({1}))
    armed = state.armed("cloudship-web-r2", 2, 8080)
    text = render(armed)
    assert parse(text) == armed
    assert f"if (-f {flag(2)})" in text and "http://cloudship-web-r2:8080" in text
    assert armed.promoted() == ProxyState("cloudship-web-r2", 2, 8080, frozenset({1, 2}))
    assert armed.disarmed() == state and "if (-f" not in render(state)
    first = ProxyState("", 0, 0).armed("cloudship-web-r1", 1, 8000)
    assert 'if ($cloudship_upstream = "") { return 503; }' in render(first)
    assert state.to("cloudship-web-r2", 2, 8000).candidate is None  # a switch is not armed
