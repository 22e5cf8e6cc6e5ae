"""A second, empty Docker engine: what a fresh CI runner's engine looks like (no images, no
build cache), without touching the engine other people use on this machine.

Isolation, because the main engine is shared: its own ``--data-root``, ``--exec-root``,
``--pidfile`` and unix socket; its own bridge ``-b cs-fresh<N>`` that this module creates
with its own subnet (never ``--bridge=none``, which deletes the shared docker0, and never
docker0 itself, whose addresses the main engine hands out); ``--iptables=false`` so it
never rewrites the main engine's DOCKER chains. Builds on it therefore have no outbound
network, which the tests here do not need. It is stopped by its own pid, its bridge deleted
and its data root removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from cloudship.engine import Engine


@contextlib.contextmanager
def fresh_engine(*, load: tuple[str, ...] = ()) -> Iterator[Engine]:
    """Start the engine, copy the images ``load`` names into it from the main engine, yield it."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        raise RuntimeError("a second dockerd needs root and dockerd (scripts/dev-env)")
    if Path("/run/containerd/containerd.sock").exists():
        # dockerd would then share the system containerd (and its "moby" namespace) with the
        # main engine instead of starting its own under --exec-root: refuse.
        raise RuntimeError("a system containerd runs; a second dockerd would share it")
    ident = uuid.uuid4().hex[:6]
    root = Path(tempfile.mkdtemp(prefix=f"cs-fresh-{ident}-", dir="/var/tmp"))
    bridge = f"cs-fresh{ident}"[:15]
    socket = root / "docker.sock"
    subnet = f"10.{200 + int(ident[:2], 16) % 50}.{int(ident[2:4], 16)}"
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    process: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["ip", "addr", "add", f"{subnet}.1/24", "dev", bridge], check=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        log = (root / "dockerd.log").open("wb")
        process = subprocess.Popen(
            [
                "dockerd",
                f"--data-root={root / 'data'}",
                f"--exec-root={root / 'exec'}",
                f"--pidfile={root / 'docker.pid'}",
                f"--host=unix://{socket}",
                f"--bridge={bridge}",
                "--iptables=false",
                "--ip-masq=false",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        engine = Engine(f"unix://{socket}")
        deadline = time.monotonic() + 60
        while True:
            try:
                _ = engine.client
                break
            except Exception:
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = (root / "dockerd.log").read_text()[-2000:]
                    raise RuntimeError(f"the second dockerd did not start:\n{tail}") from None
                time.sleep(0.3)
        main = Engine.shared()
        for image in load:
            data = b"".join(main.client.api.get_image(image))  # saved under this name
            engine.client.images.load(data)
        yield engine
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        subprocess.run(["ip", "link", "delete", bridge], check=False)
        _remove_tree(root)


def _remove_tree(root: Path) -> None:
    # dockerd unmounts its overlays on a clean stop; unmount anything left before deleting.
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(str(root))]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(root, ignore_errors=True)
