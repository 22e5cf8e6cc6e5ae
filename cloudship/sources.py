"""What ``ship()`` was given: a build directory, a local image, or a remote pinned image."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cloudship.errors import ConfigError, SourceError
from cloudship.images import ImageRef
from cloudship.validation import check_source, path_problem


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
    """Classify ``source``; raise ``SourceError`` naming the problem and the fix.

    Nothing is read but file metadata: a Dockerfile outside the build directory (``..``, an
    absolute path, a symlink that leaves it) is refused without being opened, so its content
    can never reach a build log or a message.
    """
    check_source(source)
    path = Path(source)
    try:
        is_dir, exists = path.is_dir(), path.exists()
    except OSError as exc:
        raise SourceError(
            f"cannot look at {path}: {exc.strerror or type(exc).__name__}",
            fix="check the path and its permissions",
        ) from None
    if is_dir:
        return BuildSource(path=path, dockerfile=_dockerfile_inside(path, dockerfile))
    if exists:
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


_DOCKERFILE_FIX = (
    "name a file inside the source directory with [app] dockerfile in cloudship.toml "
    "(CLOUDSHIP_APP_DOCKERFILE), e.g. dockerfile = 'Dockerfile.prod'"
)


def _dockerfile_inside(context: Path, dockerfile: str) -> str:
    """``dockerfile`` if it names a file inside ``context`` (after symlinks), else refuse."""
    problem = path_problem(dockerfile) if isinstance(dockerfile, str) else "is not a string"
    if problem:
        raise SourceError(f"[app] dockerfile {problem}", fix=_DOCKERFILE_FIX)
    if Path(dockerfile).is_absolute() or dockerfile.startswith("~"):
        raise SourceError(
            "[app] dockerfile must be a path relative to the source directory, not an "
            "absolute path",
            fix=_DOCKERFILE_FIX,
        )
    try:
        root = context.resolve(strict=True)
        target = (context / dockerfile).resolve()
        inside = target.is_relative_to(root)
        is_file = inside and target.is_file()
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise SourceError(
            f"cannot look at {dockerfile} in {context}: {type(exc).__name__}", fix=_DOCKERFILE_FIX
        ) from None
    if not inside:
        raise SourceError(
            f"[app] dockerfile {dockerfile!r} is outside the build directory {context}; "
            "cloudship never reads a Dockerfile from outside it",
            fix=_DOCKERFILE_FIX,
        )
    if not is_file:
        raise SourceError(
            f"{context} has no {dockerfile}",
            fix=f"add a {dockerfile} to {context}, or name another one with [app] dockerfile "
            "in cloudship.toml (CLOUDSHIP_APP_DOCKERFILE)",
        )
    return dockerfile


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
