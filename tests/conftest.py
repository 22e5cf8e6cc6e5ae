"""Shared helpers. Integration fixtures come from cloudship.testing (the pytest plugin)."""

from __future__ import annotations

from pathlib import Path

import pytest

HTTPD = '["busybox", "httpd", "-f", "-v", "-p", "8000", "-h", "/www"]'


def write_app(folder: Path, body: str = "v1", *, cmd: str = HTTPD, expose: bool = True) -> Path:
    """A tiny web app on busybox httpd: fast to build, a real HTTP server to probe."""
    (folder / "www").mkdir(parents=True, exist_ok=True)
    (folder / "www" / "index.html").write_text(body + "\n")
    lines = [
        "FROM busybox:latest",
        "RUN echo dependencies-layer > /deps.txt",
        "COPY www /www",
        *(["EXPOSE 8000"] if expose else []),
        f"CMD {cmd}",
    ]
    (folder / "Dockerfile").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    return write_app(tmp_path / "web")
