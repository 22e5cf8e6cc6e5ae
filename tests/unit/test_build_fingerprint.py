"""The build fingerprint's key and record, without an engine (``cloudship.build_fingerprint``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cloudship import build_fingerprint as fp
from cloudship.engine import ImageInfo


class StubEngine:
    """What the fingerprint asks of an engine: the builder, and image ids by name."""

    def __init__(self, images: dict[str, str], builder: str = "buildkit") -> None:
        self.images = images
        self._builder = builder

    def builder(self) -> tuple[str, str]:
        return self._builder, ""

    def inspect(self, image: str) -> ImageInfo | None:
        found = self.images.get(image)
        return None if found is None else ImageInfo(found, "linux/amd64", (), ())


BASES = {"busybox:latest": "sha256:" + "1" * 64, "tools:1": "sha256:" + "2" * 64}


def key(folder: Path, engine: Any = None, **options: Any) -> str | None:
    return fp.key(engine or StubEngine(BASES), folder, **options)


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return write(
        tmp_path / "app",
        {
            "Dockerfile": "FROM busybox:latest\nCOPY . /app\n",
            "main.py": "v1\n",
            "debug.log": "x\n",
            ".dockerignore": "*.log\n",
        },
    )


def test_the_key_is_stable_and_follows_content_not_mtime(app: Path) -> None:
    first = key(app)
    assert first is not None and key(app) == first
    main = app / "main.py"
    st = main.stat()
    os.utime(main, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert key(app) == first  # BuildKit's cache ignores the mtime
    main.write_text("v2\n")
    os.utime(main, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert key(app) != first


def test_ignored_files_are_left_out_and_the_ignore_file_is_in(app: Path) -> None:
    first = key(app)
    (app / "debug.log").write_text("much more\n")
    assert key(app) == first
    (app / ".dockerignore").write_text("*.log\n*.tmp\n")
    assert key(app) != first


def test_mode_dockerfile_args_target_platform_change_the_key(app: Path) -> None:
    first = key(app)
    (app / "main.py").chmod(0o755)
    moded = key(app)
    assert moded != first
    assert key(app, buildargs={"A": "1"}) not in (moded, key(app, buildargs={"A": "2"}))
    assert key(app, target="web") != moded
    assert key(app, platform="linux/arm64") != moded
    (app / "Dockerfile").write_text("FROM busybox:latest\nCOPY . /srv\n")
    assert key(app) != moded


def test_external_images_change_the_key_and_a_missing_one_gives_none(app: Path) -> None:
    (app / "Dockerfile").write_text(
        "FROM busybox:latest AS build\nRUN --mount=type=bind,from=tools:1,target=/t true\n"
        "FROM build\nCOPY --from=build /bin /bin\n"
    )
    first = key(app)
    assert first is not None
    moved = {**BASES, "tools:1": "sha256:" + "3" * 64}
    assert key(app, StubEngine(moved)) != first
    assert key(app, StubEngine({"busybox:latest": BASES["busybox:latest"]})) is None


def test_external_images_names_only_images_from_outside(tmp_path: Path) -> None:
    dockerfile = write(
        tmp_path,
        {
            "Dockerfile": "FROM busybox:latest AS base\nFROM scratch\nCOPY --from=base / /\n"
            "COPY --from=0 / /\nCOPY --from=tools:1 /x /x\nFROM Base\n"
        },
    )
    assert fp.external_images(dockerfile / "Dockerfile") == ["busybox:latest", "tools:1"]


@pytest.mark.parametrize(
    "dockerfile",
    [
        "FROM busybox:latest\nADD https://example.com/a.tar /a\n",
        "FROM busybox:latest\nADD http://example.com/a /a\n",
        "FROM busybox:latest\nADD git@github.com:moby/moby.git /src\n",
        "FROM busybox:latest\nADD --keep-git-dir=true https://github.com/moby/moby.git /src\n",
        "# syntax=docker/dockerfile:1\nFROM busybox:latest\n",
        "ARG BASE=busybox:latest\nFROM $BASE\n",
        "FROM busybox:latest\nCOPY --from=${TOOLS} /x /x\n",
    ],
)
def test_what_may_change_without_the_context_gives_no_key(tmp_path: Path, dockerfile: str) -> None:
    assert key(write(tmp_path, {"Dockerfile": dockerfile})) is None


def test_no_cache_and_the_classic_builder_give_no_key(app: Path) -> None:
    assert key(app, no_cache=True) is None
    assert key(app, StubEngine(BASES, builder="classic")) is None


def test_a_record_is_trusted_only_while_the_tag_names_its_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    image = "sha256:" + "9" * 64
    fp.record("cloudship-build/app-1:latest", "k1", image)
    engine: Any = StubEngine({"cloudship-build/app-1:latest": image})
    assert fp.recorded(engine, "cloudship-build/app-1:latest", "k1") == image
    assert fp.recorded(engine, "cloudship-build/app-1:latest", "k2") is None
    assert fp.recorded(StubEngine({}), "cloudship-build/app-1:latest", "k1") is None  # type: ignore[arg-type]
    moved: Any = StubEngine({"cloudship-build/app-1:latest": "sha256:" + "8" * 64})
    assert fp.recorded(moved, "cloudship-build/app-1:latest", "k1") is None
    files = list((tmp_path / "cloudship" / "builds").iterdir())
    assert len(files) == 1 and json.loads(files[0].read_text())["image_id"] == image
    files[0].write_text("{not json")
    assert fp.recorded(engine, "cloudship-build/app-1:latest", "k1") is None
