"""The switch's parts on a real proxy: a configuration nginx refuses changes nothing, the drain
wait sees an old worker, and pruning keeps ``keep_revisions`` stopped revisions."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from cloudship import DeployError, ship, status
from cloudship.engine import Engine
from cloudship_local import proxy
from cloudship_local.proxy import ProxyState
from cloudship_local.runtime import wait_for_retirements
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app


def test_a_configuration_nginx_refuses_leaves_the_old_one_serving(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("sw")
    first = ship(write_app(tmp_path / "v1", "v1"), target, name=name)
    assert first.url is not None
    wait_for_retirements()  # the ship's own last touch of the proxy is done
    container = cloudship_engine.client.containers.get(f"cloudship-{name}-proxy")
    before = proxy.read_state(container)
    assert before is not None
    # A space ends nginx's `set` directive early: `nginx -t` rejects the whole file.
    broken = ProxyState("no such host", 9, 8000, frozenset({9}))
    with pytest.raises(DeployError, match="refused its new configuration"):
        proxy.apply(container, broken)
    assert proxy.read_state(container) == before
    assert httpx.get(first.url).text.strip() == "v1"
    proxy.apply(container, before)  # a valid one is taken (and the marker is seen)


def test_the_drain_wait_sees_an_old_worker_that_holds_a_request(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("sw")
    app = write_app(tmp_path / "v1", "v1")
    slow = app / "www" / "cgi-bin" / "slow"
    slow.parent.mkdir()
    # Long enough to still be under way after the checks below on a loaded CI machine.
    slow.write_text("#!/bin/sh\nsleep 5\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow\\n'\n")
    slow.chmod(0o755)
    first = ship(app, target, name=name)
    assert first.url is not None
    wait_for_retirements()
    container = cloudship_engine.client.containers.get(f"cloudship-{name}-proxy")
    state = proxy.read_state(container)
    assert state is not None and proxy.wait_drained(container, seconds=1)
    answers: list[str] = []
    held = threading.Thread(
        target=lambda: answers.append(httpx.get(first.url + "/cgi-bin/slow", timeout=10).text)
    )
    held.start()
    time.sleep(0.5)  # the request is with the upstream now
    # The same container under a new revision number: the header says when the new
    # workers answer, which is when a switch starts its drain wait.
    proxy.apply(container, ProxyState(state.active, 7, state.port, state.proven))
    assert not answers, answers  # still under way
    # apply() has returned: only the new workers accept connections now, while the old one
    # finishes its request.
    seen = {httpx.get(first.url).headers[proxy.REVISION_HEADER] for _ in range(10)}
    assert seen == {"r7"}
    assert not proxy.wait_drained(container, seconds=0.5)  # its worker still holds it
    assert proxy.wait_drained(container, seconds=10)
    held.join()
    assert answers == ["slow\n"]  # the old worker finished the request it held


def test_pruning_keeps_the_serving_and_keep_revisions_stopped_ones(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target = cloudship_local_target.target(keep_revisions=1)
    name = cloudship_local_target.name("sw")
    for n in range(1, 5):
        ship(write_app(tmp_path / f"v{n}", f"v{n}"), target, name=name)
    listed = {r.id: r.state for r in status(name, target).revisions}
    assert listed == {"r4": "serving", "r3": "standby"}
    left = cloudship_engine.client.containers.list(
        all=True, filters={"label": f"org.cloudship.service={name}"}
    )
    assert sorted(c.name for c in left) == sorted(
        f"cloudship-{name}-{s}" for s in ("proxy", "r3", "r4")
    )
