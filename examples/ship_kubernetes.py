"""Ship the monitor app to a Kubernetes cluster and show its revisions.

Any cluster a kubeconfig reaches, with a registry its nodes can pull from:

    export CLOUDSHIP_KUBERNETES_REGISTRY=registry.example.com
    export CLOUDSHIP_KUBERNETES_USERNAME=ci CLOUDSHIP_KUBERNETES_PASSWORD=...
    .venv/bin/python examples/ship_kubernetes.py            # KUBECONFIG's current context

Without a cluster, try it on the test kit's fake (pods run on the local engine, pulling from
the local registry):

    .venv/bin/python examples/ship_kubernetes.py --fake
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudship
from cloudship import ship
from cloudship.cli import err
from cloudship.cli_report import Reporter


@contextlib.contextmanager
def cluster_settings(fake: bool) -> Iterator[dict[str, Any]]:
    if not fake:
        yield {}
        return
    from cloudship_kubernetes.testing import FakeCluster

    with FakeCluster() as cluster:
        yield {"kubeconfig": cluster.kubeconfig, "registry": "127.0.0.1:5000"}


def main() -> None:
    app = Path(__file__).parent / "monitor-app"
    with cluster_settings("--fake" in sys.argv) as settings:
        result = ship(
            app,
            target="kubernetes",
            name="monitor",
            port=8000,
            health_path="/health",
            cpu=0.5,
            memory="256Mi",
            timeout=300,
            on_event=Reporter(err.console),
            settings=settings,
        )
        print(f"{'shipped' if result.changed else 'unchanged'}: {result.name} {result.revision}")
        print(f"  image  {result.image}")
        print(f"  url    {result.url}")
        for revision in cloudship.status("monitor", "kubernetes", **settings).revisions:
            print(f"  {revision.state:8} {revision.id}  {revision.native_id}")


if __name__ == "__main__":
    main()
