"""The session's file walk and wire messages (the exchange itself runs against the engine in
tests/integration/test_build.py, beside ``DOCKER_BUILDKIT=1 docker build`` as the reference)."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from cloudship import buildkit_session
from cloudship.buildkit_session import (
    Filters,
    Session,
    SessionUnavailable,
    go_mode,
    packet,
    parse_packet,
    walk,
)
from cloudship.errors import EngineError


def tree(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(name)
    return root


def paths(root: Path, **filters: list[str]) -> list[str]:
    return [entry.path for entry in walk(root, Filters(**filters))]


def test_walk_order_is_go_filepath_walk(tmp_path: Path) -> None:
    # a folder's entries by name (bytes), each folder before what it holds: "a" < "a.txt" < "b"
    root = tree(tmp_path, ["b", "a.txt", "a/z", "a/B", "C"])
    assert paths(root) == ["C", "a", "a/B", "a/z", "a.txt", "b"]


def test_excludes_with_an_exception_inside_an_excluded_folder(tmp_path: Path) -> None:
    root = tree(tmp_path, ["app.py", "logs/a.log", "logs/keep.log", "x.log", "Dockerfile"])
    found = paths(root, excludes=["*.log", "logs", "!logs/keep.log", "Dockerfile"])
    assert found == ["app.py", "logs", "logs/keep.log"]


def test_an_ignored_dockerignore_stays_out(tmp_path: Path) -> None:
    # docker-py's matcher re-admits .dockerignore for its tar; the engine's does not
    root = tree(tmp_path, [".dockerignore", "app.py"])
    assert paths(root, excludes=[".dockerignore"]) == ["app.py"]
    assert paths(root, excludes=["app.py"]) == [".dockerignore"]


def test_follow_paths_bring_their_folders_and_nothing_else(tmp_path: Path) -> None:
    root = tree(tmp_path, ["docker/web.Dockerfile", "docker/other", "app.py"])
    assert paths(root, follow=["docker/web.Dockerfile"]) == ["docker", "docker/web.Dockerfile"]
    assert paths(root, includes=["docker/*"]) == ["docker", "docker/other", "docker/web.Dockerfile"]
    assert paths(root, includes=["docker"]) == ["docker", "docker/other", "docker/web.Dockerfile"]


def test_go_file_modes(tmp_path: Path) -> None:
    # Go's os.FileMode: ModeDir is bit 31, ModeSymlink bit 27 (https://pkg.go.dev/io/fs#FileMode)
    (tmp_path / "f").write_text("")
    (tmp_path / "f").chmod(0o640)
    (tmp_path / "l").symlink_to("f")
    assert go_mode(os.lstat(tmp_path / "f")) == 0o640
    assert go_mode(os.lstat(tmp_path)) & ~0o777 == 1 << 31
    assert go_mode(os.lstat(tmp_path / "l")) & ~0o777 == 1 << 27


def test_packets_in_protobuf_wire_format() -> None:
    # Packet{type=PACKET_REQ(1), ID=3}: field 1 varint 1, field 3 varint 3
    assert parse_packet(b"\x08\x01\x18\x03") == (1, 3, b"")
    assert packet(2, ident=3, data=b"hi") == b"\x08\x02\x18\x03\x22\x02hi"
    # the last STAT carries no Stat at all (an empty one reads as the path "")
    assert packet(0) == b""
    assert packet(0, stat=b"\x0a\x01a") == b"\x12\x03\x0a\x01a"


class _Socket:
    """docker-py's APIClient as connect_raw reads it: a unix socket address and API version."""

    def __init__(self, path: Path) -> None:
        self.base_url = "http+docker://localhost"
        self._version = "1.41"
        self._custom_adapter = type("Adapter", (), {"socket_path": str(path)})()


def _server(path: Path, answer: bytes | None) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        if answer is not None:
            conn.sendall(answer)
        time.sleep(2)
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server


def test_an_engine_that_never_answers_the_session_is_an_engine_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(buildkit_session, "_HANDSHAKE_SECONDS", 0.2)
    server = _server(tmp_path / "engine.sock", None)
    session = Session(_Socket(tmp_path / "engine.sock"), {"context": tmp_path})
    with pytest.raises(EngineError, match="did not open a build session"):
        session.open()
    server.close()


def test_an_engine_without_sessions_means_the_tar_fallback(tmp_path: Path) -> None:
    server = _server(tmp_path / "engine.sock", b"HTTP/1.1 404 Not Found\r\n\r\n")
    session = Session(_Socket(tmp_path / "engine.sock"), {"context": tmp_path})
    with pytest.raises(SessionUnavailable, match="404"):
        session.open()
    server.close()
