import contextlib
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloudship.errors import CloudshipError


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(autouse=True)
def _remove_build_tags_of_tmp_sources(tmp_path: Path) -> Iterator[None]:
    """A ship of a source folder tags its build ``cloudship-build/<folder>-<hash of its
    path>`` (the engine's previous build of that source, kept for a developer's next build).
    A test's sources live under its ``tmp_path`` and are gone after it, so their tags would only
    pile up on the shared engine (thousands over a few runs): remove those, and only those.
    Depends on ``tmp_path`` so that it ends before the folder is gone."""
    yield
    sources = {
        dockerfile.parent
        for pattern in ("Dockerfile", "*/Dockerfile", "*/*/Dockerfile", "*/*/*/Dockerfile")
        for dockerfile in tmp_path.glob(pattern)
    }
    if not sources:
        return
    from docker.errors import APIError

    from cloudship.engine import Engine
    from cloudship.sources import BuildSource

    api = Engine.shared().client.api
    # By exact name, one call each: listing images (even filtered) costs the engine a walk of
    # every image it has, seconds on a busy shared engine.
    for folder in sorted(sources):
        where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:8]
        name = BuildSource(folder, "Dockerfile").default_name
        for suffix in ("latest", "linux-arm64", "linux-amd64"):
            with contextlib.suppress(APIError):
                api.remove_image(f"cloudship-build/{name}-{where}:{suffix}")


@pytest.fixture(autouse=True)
def _remove_images_of_this_processs_registries() -> Iterator[None]:
    """Images a test pushed to or pulled from a registry this process started (their tags and
    digests name ``127.0.0.1:PORT`` of a ThrowawayRegistry or FaultyRegistry) are untagged
    after it. Left, they piled up by the hundred in one run, and every image listing (the
    engine walks all its images) slowed down with them. Images in use and anything another
    process made are left alone."""
    from docker.errors import APIError, DockerException

    from cloudship.engine import Engine
    from cloudship.testing.registry import STARTED_HERE

    try:
        api = Engine.shared().client.api
        before = {image["Id"] for image in api.images()}
    except (DockerException, OSError, CloudshipError):  # a test without an engine
        yield
        return
    yield
    for image in api.images():
        if image["Id"] in before:
            continue
        for ref in (image.get("RepoTags") or []) + (image.get("RepoDigests") or []):
            if ref.split("/", 1)[0] in STARTED_HERE:
                with contextlib.suppress(APIError):
                    api.remove_image(ref)
