"""The build fingerprint on the real engine: an unchanged source is not rebuilt, and each thing
BuildKit's cache keys on that changes makes it build again (``cloudship.build_fingerprint``).

Records go to the test's own ``XDG_CACHE_HOME``; images and tags are removed by ``images``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cloudship import plan, ship
from cloudship.engine import Engine
from cloudship.events import BuildReused, BuildStep, Event
from cloudship.shipment import ShipPlan
from cloudship_local.testing import LocalTargetFactory
from tests.conftest import HTTPD
from tests.integration.test_build import Images, images, write

__all__ = ["images"]  # the fixture, imported to be used here


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def planned(
    folder: Path, factory: LocalTargetFactory, name: str, **options: object
) -> tuple[ShipPlan, list[Event]]:
    events: list[Event] = []
    options.setdefault("port", 8000)
    result = plan(folder, factory.target(), name=name, on_event=events.append, **options)  # type: ignore[call-overload]
    assert isinstance(result, ShipPlan)
    return result, events


def built(result: ShipPlan, events: list[Event]) -> bool:
    """The engine ran a build: steps were reported, nothing reused."""
    assert result.build is not None
    ran = any(isinstance(e, BuildStep) for e in events)
    assert ran == (not result.build.reused) == (not any(isinstance(e, BuildReused) for e in events))
    return ran


def source(root: Path, images: Images, dockerfile: str | None = None) -> Path:
    return write(
        root / images.unique("fp"),
        {
            "Dockerfile": dockerfile or "FROM busybox:latest\nCOPY . /app\nEXPOSE 8000\n",
            "main.py": "print('v1')\n",
            "notes.log": "ignored\n",
            ".dockerignore": "*.log\n",
        },
    )


def test_unchanged_source_is_not_rebuilt_and_ships_the_same_image(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, images: Images
) -> None:
    dockerfile = f"FROM busybox:latest\nCOPY . /www\nEXPOSE 8000\nCMD {HTTPD}\n"
    folder = source(tmp_path, images, dockerfile)
    target, name = cloudship_local_target.target(), cloudship_local_target.name()
    first = ship(folder, target, name=name, port=8000, health_path="/main.py")  # type: ignore[call-overload]
    assert first.build is not None and not first.build.reused and first.build.steps > 0
    events: list[Event] = []
    second = ship(
        folder, target, name=name, port=8000, health_path="/main.py", on_event=events.append
    )  # type: ignore[call-overload]
    assert second.build is not None and second.build.reused
    assert (second.build.steps, second.build.cache_hits) == (0, 0)
    assert second.build.image_id == first.build.image_id
    assert second.digest == first.digest and not second.changed
    assert [e.image_id for e in events if isinstance(e, BuildReused)] == [first.build.image_id]
    assert not any(isinstance(e, BuildStep) for e in events)


def test_same_size_same_mtime_content_change_rebuilds(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, images: Images
) -> None:
    folder = source(tmp_path, images)
    name = cloudship_local_target.name()
    first, events = planned(folder, cloudship_local_target, name)
    assert built(first, events)
    again, events = planned(folder, cloudship_local_target, name)
    assert not built(again, events)
    main = folder / "main.py"
    st = main.stat()
    main.write_text("print('v2')\n")  # the same size
    os.utime(main, ns=(st.st_atime_ns, st.st_mtime_ns))
    # Built, whatever BuildKit then makes of it: its session compares size and mtime and does
    # not fetch the file again (the image may be the old one; that is the engine's reading).
    assert built(*planned(folder, cloudship_local_target, name))


def test_a_file_dockerignore_excludes_changing_does_not_rebuild(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, images: Images
) -> None:
    folder = source(tmp_path, images)
    name = cloudship_local_target.name()
    assert built(*planned(folder, cloudship_local_target, name))
    (folder / "notes.log").write_text("something else entirely\n")
    (folder / "new.log").write_text("new\n")
    assert not built(*planned(folder, cloudship_local_target, name))
    (folder / "new.py").write_text("new\n")  # not ignored: it is copied
    assert built(*planned(folder, cloudship_local_target, name))


def test_a_changed_build_arg_rebuilds(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, images: Images
) -> None:
    dockerfile = "FROM busybox:latest\nARG FLAVOUR=plain\nRUN echo $FLAVOUR > /flavour\n"
    folder = source(tmp_path, images, dockerfile)
    name = cloudship_local_target.name()
    assert built(*planned(folder, cloudship_local_target, name, build_args={"FLAVOUR": "a"}))
    assert not built(*planned(folder, cloudship_local_target, name, build_args={"FLAVOUR": "a"}))
    assert built(*planned(folder, cloudship_local_target, name, build_args={"FLAVOUR": "b"}))


def test_a_base_image_retagged_to_another_image_rebuilds(
    tmp_path: Path,
    cloudship_engine: Engine,
    cloudship_local_target: LocalTargetFactory,
    images: Images,
) -> None:
    api = cloudship_engine.client.api
    base = f"cloudship-test/{images.unique('base')}"
    api.tag("busybox:latest", base, tag="1")
    folder = source(tmp_path, images, f"FROM {base}:1\nCOPY main.py /\n")
    name = cloudship_local_target.name()
    first, events = planned(folder, cloudship_local_target, name)
    assert built(first, events)
    assert not built(*planned(folder, cloudship_local_target, name))

    other = write(tmp_path / "other", {"Dockerfile": "FROM busybox:latest\nRUN echo other > /o\n"})
    other_tag = f"cloudship-test/{images.unique('other')}:1"
    cloudship_engine.build(other, tag=other_tag)
    api.tag(other_tag, base, tag="1", force=True)
    retagged, events = planned(folder, cloudship_local_target, name)
    assert built(retagged, events)
    assert retagged.build is not None and first.build is not None
    assert retagged.build.image_id != first.build.image_id


def test_a_removed_recorded_image_rebuilds(
    tmp_path: Path,
    cloudship_engine: Engine,
    cloudship_local_target: LocalTargetFactory,
    images: Images,
) -> None:
    folder = source(tmp_path, images)
    name = cloudship_local_target.name()
    first, events = planned(folder, cloudship_local_target, name)
    assert built(first, events) and first.build is not None
    # the build tag is the only name of this image (plan pushes nothing): removing it removes it
    for tag in cloudship_engine.client.api.inspect_image(first.build.image_id)["RepoTags"]:
        cloudship_engine.client.api.remove_image(tag)
    assert cloudship_engine.inspect(first.build.image_id) is None
    assert built(*planned(folder, cloudship_local_target, name))


def test_no_cache_and_force_rebuild(
    tmp_path: Path, cloudship_local_target: LocalTargetFactory, images: Images
) -> None:
    folder = source(tmp_path, images)
    name = cloudship_local_target.name()
    assert built(*planned(folder, cloudship_local_target, name))
    assert built(*planned(folder, cloudship_local_target, name, no_cache=True))
    assert built(*planned(folder, cloudship_local_target, name, force=True))
    # the forced build is recorded: the next one stands on it
    assert not built(*planned(folder, cloudship_local_target, name))
