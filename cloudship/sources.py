"""What ``ship()`` was given: a build directory, a local image, or a remote pinned image."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cloudship.errors import ConfigError, SourceError
from cloudship.images import ImageRef


@dataclass(frozen=True)
class BuildSource:
    """A directory with a Dockerfile."""

    path: Path
    dockerfile: str

    @property
    def default_name(self) -> str:
        return _service_name_from(self.path.resolve().name)


@dataclass(frozen=True)
class ImageSource:
    """An image reference: in the local engine, or (with a registry and digest) remote."""

    ref: ImageRef

    @property
    def remote(self) -> bool:
        """A registry-qualified, digest-pinned reference: deploy it as is, push nothing."""
        return self.ref.registry is not None and self.ref.digest is not None

    @property
    def default_name(self) -> str:
        return _service_name_from(self.ref.repository.rsplit("/", 1)[-1])


Source = BuildSource | ImageSource


def _service_name_from(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63] or "app"


def detect(source: str | Path, dockerfile: str = "Dockerfile") -> Source:
    """Classify ``source``; raise ``SourceError`` naming the problem and the fix."""
    path = Path(source)
    if path.is_dir():
        if not (path / dockerfile).is_file():
            raise SourceError(
                f"{path} has no {dockerfile}",
                fix=f"add a {dockerfile} to {path}, or name another one with [app] dockerfile "
                "in cloudship.toml (CLOUDSHIP_APP_DOCKERFILE)",
            )
        return BuildSource(path=path, dockerfile=dockerfile)
    if path.exists():
        raise SourceError(
            f"{path} is a file; ship a directory with a Dockerfile or an image reference",
            fix=f"ship {path.parent}" if path.name == dockerfile else None,
        )
    text = str(source)
    if text.startswith((".", "/", "~")) or "\\" in text:
        raise SourceError(
            f"no such directory: {text}", fix="check the path (relative to the working directory)"
        )
    try:
        return ImageSource(ImageRef.parse(text))
    except ConfigError as exc:
        raise SourceError(
            f"{text!r} is neither a directory nor a valid image reference ({exc.message})",
            fix="pass a directory with a Dockerfile, or an image such as 'app:v1' or "
            "'registry.example.com/app@sha256:…'",
        ) from None


def git_tag(path: Path) -> str | None:
    """The short commit SHA when ``path`` is in a git work tree with nothing changed under it."""
    try:
        status = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        if status.stdout.strip():
            return None
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() or None


def content_tag(image_id: str) -> str:
    """A tag derived from the image content (its id), for trees that git cannot name."""
    return "img-" + image_id.removeprefix("sha256:")[:12]
