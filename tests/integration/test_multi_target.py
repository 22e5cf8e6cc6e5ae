"""Several targets in one call, and named targets composed in cloudship.toml."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from cloudship import ConfigError, MultiTargetError, RegistryError, ship, status
from cloudship.events import BuildFinished, Event, PushFinished
from cloudship.targets import Target
from cloudship.testing.registry import ThrowawayRegistry, free_port
from cloudship_local.testing import LocalTargetFactory


def named(factory: LocalTargetFactory, name: str, **settings: object) -> Target:
    """A local target with its own project, so two of them can share one engine."""
    built = factory.target(project=name, **settings)
    return Target(registry=built.registry, runtime=built.runtime, name=name, paired=True)


def test_builds_once_pushes_and_deploys_to_each(
    app_dir: Path, cloudship_local_target: LocalTargetFactory, cloudship_auth_registry: object
) -> None:
    other: ThrowawayRegistry = cloudship_auth_registry({"u": "p"})  # type: ignore[operator]
    first = named(cloudship_local_target, "one")
    second = named(
        cloudship_local_target, "two", registry=other.address, username="u", password="p"
    )
    service = cloudship_local_target.name("multi")
    events: list[Event] = []
    shipped = ship(app_dir, [first, second], name=service, on_event=events.append)
    assert [s.target for s in shipped] == ["one", "two"]
    assert len([e for e in events if isinstance(e, BuildFinished)]) == 1
    pushes = {e.target for e in events if isinstance(e, PushFinished)}
    assert pushes == {"one", "two"}
    assert shipped[0].digest == shipped[1].digest, "same image, same manifest"
    assert shipped[0].image.startswith(cloudship_local_target.registry.address)
    assert shipped[1].image.startswith(other.address)
    for one in shipped:
        assert one.url is not None and httpx.get(one.url).text == "v1\n"
    assert shipped[0].url != shipped[1].url

    again = ship(app_dir, [first, second], name=service)
    assert [s.changed for s in again] == [False, False]
    for target in (first, second):
        target.runtime.destroy(service)


def test_one_failing_target_does_not_undo_the_others(
    app_dir: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    good = named(cloudship_local_target, "good")
    down = named(cloudship_local_target, "down", registry=f"127.0.0.1:{free_port()}")
    service = cloudship_local_target.name("partial")
    with pytest.raises(MultiTargetError) as info:
        ship(app_dir, [good, down], name=service)
    error = info.value
    assert set(error.shipped) == {"good"} and set(error.failed) == {"down"}
    assert isinstance(error.failed["down"], RegistryError)
    assert "1 of 2 targets failed" in str(error) and "down: RegistryError" in str(error)
    url = error.shipped["good"].url
    assert url is not None and httpx.get(url).text == "v1\n"
    assert status(service, good).current is not None
    good.runtime.destroy(service)


def test_bad_input_for_any_target_stops_all_before_push(
    app_dir: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    ok = named(cloudship_local_target, "ok")
    with pytest.raises(ConfigError, match="exactly one replica"):
        ship(
            app_dir,
            [ok, named(cloudship_local_target, "ok2")],
            name=cloudship_local_target.name(),
            replicas=2,
        )
    with pytest.raises(ConfigError, match="same target twice"):
        ship(app_dir, [ok, ok], name=cloudship_local_target.name())
    with pytest.raises(ConfigError, match="empty list"):
        ship(app_dir, [], name=cloudship_local_target.name())


def test_named_target_from_cloudship_toml(
    app_dir: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    (app_dir / "cloudship.toml").write_text(
        "[targets.staging]\n"
        'registry = "local"\n'
        'runtime = "local"\n'
        f'local = {{ registry = "{cloudship_local_target.registry.address}", embedded = false, '
        'project = "staging" }\n'
    )
    service = cloudship_local_target.name("named")
    shipped = ship(app_dir, "staging", name=service)
    assert shipped.target == "staging"
    assert shipped.image.startswith(cloudship_local_target.registry.address)
    assert shipped.url is not None and httpx.get(shipped.url).text == "v1\n"
    cloudship_local_target.target(project="staging").runtime.destroy(service)


def test_named_target_errors(app_dir: Path) -> None:
    (app_dir / "cloudship.toml").write_text(
        '[targets.bad]\nregistry = "quay"\nruntime = "local"\n'
        '[targets.typo]\nregistry = "local"\nruntime = "local"\nlocall = {}\n'
    )
    with pytest.raises(ConfigError, match="registry = 'quay' is not a provider or a registry kind"):
        ship(app_dir, "bad")
    with pytest.raises(ConfigError, match=r"unknown keys \['locall'\]"):
        ship(app_dir, "typo")
