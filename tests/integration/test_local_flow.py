"""The whole flow on a real Docker engine and a real registry: ship, re-ship, change, fail."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from cloudship import HealthCheckFailed, RevisionNotFoundError, plan, rollback, ship, status
from cloudship.engine import Engine
from cloudship.events import BuildStep, Event, PushFinished
from cloudship.testing.registry import ThrowawayRegistry
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app

pytestmark = pytest.mark.usefixtures("cloudship_docker_config_guard")


def containers(engine: Engine, service: str) -> list[str]:
    found = engine.client.containers.list(
        all=True, filters={"label": f"org.cloudship.service={service}"}
    )
    return sorted(c.name for c in found)


def catalog(registry: ThrowawayRegistry) -> list[str]:
    body = httpx.get(f"http://{registry.address}/v2/_catalog").json()
    return list(body.get("repositories") or [])


def test_ship_serves_then_reship_changes_nothing(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("web")
    first = ship(app_dir, target, name=name)
    assert first.changed and first.revision == "r1"
    assert first.image == f"{cloudship_local_target.registry.address}/{name}@{first.digest}"
    assert first.digest.startswith("sha256:") and len(first.digest) == 71
    assert first.url is not None
    assert httpx.get(first.url).text == "v1\n"
    running = cloudship_engine.client.containers.get(f"cloudship-{name}-r1")
    registry_digest = httpx.head(
        f"http://{cloudship_local_target.registry.address}/v2/{name}/manifests/{first.tag}",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    ).headers["Docker-Content-Digest"]
    assert registry_digest == first.digest

    events: list[Event] = []
    again = ship(app_dir, target, name=name, on_event=events.append)
    assert not again.changed
    assert again.digest == first.digest and again.revision == "r1"
    assert again.push is not None and again.push.skipped
    assert next(e for e in events if isinstance(e, PushFinished)).skipped
    same = cloudship_engine.client.containers.get(f"cloudship-{name}-r1")
    assert (
        same.id == running.id
        and same.attrs["State"]["StartedAt"] == (running.attrs["State"]["StartedAt"])
    )
    assert containers(cloudship_engine, name) == [f"cloudship-{name}-proxy", f"cloudship-{name}-r1"]


def test_code_change_rebuilds_and_pushes_only_the_changed_layer(
    app_dir: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("web")
    first = ship(app_dir, target, name=name)
    changed = f"v2 {uuid.uuid4()}\n"  # unique: the layer cache is shared by every test run
    (app_dir / "www" / "index.html").write_text(changed)
    events: list[Event] = []
    second = ship(app_dir, target, name=name, on_event=events.append)
    assert second.changed and second.digest != first.digest
    assert second.revision == "r2" and second.previous_revision == "r1"
    steps = {e.instruction: e.cached for e in events if isinstance(e, BuildStep)}
    assert steps["RUN echo dependencies-layer > /deps.txt"] is True
    assert steps["COPY www /www"] is False
    assert second.push is not None
    assert second.push.layers_pushed == 1, second.push
    assert second.push.layers_existing == 2
    assert second.url == first.url, "the host port is stable across revisions"
    assert second.url is not None
    assert httpx.get(second.url).text == changed


def test_crash_looping_version_is_rolled_back_and_old_one_keeps_answering(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("web")
    good = ship(app_dir, target, name=name)
    write_app(app_dir, "broken", cmd='["sh", "-c", "echo starting; echo fatal: no config; exit 3"]')
    started = time.monotonic()
    with pytest.raises(HealthCheckFailed) as info:
        ship(app_dir, target, name=name, timeout=120)
    assert time.monotonic() - started < 60, "a dead container must fail fast, not time out"
    assert info.value.rolled_back_to == "r1"
    assert "fatal: no config" in "\n".join(info.value.log_tail)
    assert "exited with code 3" in str(info.value)
    assert good.url is not None
    assert httpx.get(good.url).text == "v1\n"
    current = status(name, target)
    assert current.current is not None and current.current.id == "r1"
    assert containers(cloudship_engine, name) == [f"cloudship-{name}-proxy", f"cloudship-{name}-r1"]


def test_unhealthy_first_deploy_leaves_nothing_running(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("web")
    with pytest.raises(HealthCheckFailed) as info:
        # the whole ship's budget: 3 s left the gate no time on a loaded machine (build and
        # push took 2 s of it: ShipTimeoutError instead of the gate's HealthCheckFailed)
        ship(app_dir, target, name=name, health_path="/missing", timeout=6)
    assert info.value.rolled_back_to is None
    assert "HTTP 404" in str(info.value)
    assert containers(cloudship_engine, name) == []


def test_rollback_on_demand_and_status_history(
    app_dir: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("web")
    ship(app_dir, target, name=name)
    (app_dir / "www" / "index.html").write_text("v2\n")
    second = ship(app_dir, target, name=name)
    assert second.url is not None

    back = rollback(name, target)
    assert (back.revision, back.previous, back.changed) == ("r1", "r2", True)
    assert httpx.get(second.url).text == "v1\n"
    history = status(name, target)
    assert [(r.id, r.state) for r in history.revisions] == [("r2", "standby"), ("r1", "serving")]

    forward = rollback(name, target, to="r2")
    assert forward.revision == "r2"
    assert httpx.get(second.url).text == "v2\n"
    assert not rollback(name, target, to="r2").changed
    with pytest.raises(
        RevisionNotFoundError, match=r"choose one of: r2 \(serving\), r1 \(standby\)"
    ):
        rollback(name, target, to="r9")


def test_plan_changes_nothing(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("web")
    before = catalog(cloudship_local_target.registry)
    planned = plan(app_dir, target, name=name)
    assert planned.changed
    assert any(action.startswith("push") for action in planned.actions)
    assert catalog(cloudship_local_target.registry) == before
    assert containers(cloudship_engine, name) == []
    shipped = ship(app_dir, target, name=name)
    replanned = plan(app_dir, target, name=name)
    assert not replanned.changed and replanned.digest == shipped.digest
    assert "nothing to do" in replanned.actions[-1]


def test_image_sources_local_and_remote_digest(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("img")
    cloudship_engine.client.images.build(path=str(app_dir), tag=f"{name}-src:v1.0")
    from_image = ship(f"{name}-src:v1.0", target, name=name)
    assert from_image.tag == "v1.0" and from_image.changed
    assert from_image.url is not None and httpx.get(from_image.url).text == "v1\n"

    other = cloudship_local_target.name("remote")
    remote = ship(from_image.image, target, name=other)
    assert remote.digest == from_image.digest and remote.push is None
    assert remote.url is not None and httpx.get(remote.url).text == "v1\n"


def test_secrets_reach_the_app_but_no_output(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_engine: Engine
) -> None:
    target, name = cloudship_local_target.target(), cloudship_local_target.name("sec")
    secret = "s3cr3t-value-do-not-print"
    events: list[Event] = []
    shipped = ship(
        app_dir,
        target,
        name=name,
        env={"MODE": "prod"},
        secrets={"API_KEY": secret},
        on_event=events.append,
    )
    container = cloudship_engine.client.containers.get(f"cloudship-{name}-r1")
    assert f"API_KEY={secret}" in container.attrs["Config"]["Env"]
    assert "MODE=prod" in container.attrs["Config"]["Env"]
    assert secret not in str(container.labels)
    assert secret not in shipped.model_dump_json()
    assert all(secret not in repr(event) for event in events)
