"""Opt-in smoke test against a real cluster (``pytest -m cloud``).

Skipped unless KUBECONFIG names a file and CLOUDSHIP_KUBERNETES_REGISTRY names a registry the
cluster's nodes can pull from (with CLOUDSHIP_KUBERNETES_USERNAME/PASSWORD when it needs a
login). It ships a tiny app into CLOUDSHIP_KUBERNETES_NAMESPACE (default: the context's),
checks the rollout, an unchanged re-ship and the status, and destroys it again. A
LoadBalancer address is only probed when the cluster hands one out.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest

import cloudship

pytestmark = [pytest.mark.cloud, pytest.mark.slow]


@pytest.fixture
def cluster() -> None:
    config = os.environ.get("KUBECONFIG", "")
    if not config or not Path(config.split(os.pathsep)[0]).is_file():
        pytest.skip("real-cluster smoke test: set KUBECONFIG to a kubeconfig file")
    if not os.environ.get("CLOUDSHIP_KUBERNETES_REGISTRY"):
        pytest.skip("real-cluster smoke test: set CLOUDSHIP_KUBERNETES_REGISTRY")


@pytest.mark.usefixtures("cluster")
def test_ship_to_a_real_cluster(app_dir: Path) -> None:
    name = f"cs-smoke-{uuid.uuid4().hex[:6]}"
    try:
        shipment = cloudship.ship(app_dir, "kubernetes", name=name, port=8000, timeout=600)
        assert shipment.revision == "r1" and shipment.digest.startswith("sha256:")
        again = cloudship.ship(app_dir, "kubernetes", name=name, port=8000, timeout=600)
        assert not again.changed and again.revision == "r1"
        state = cloudship.status(name, "kubernetes")
        assert state is not None and state.current is not None and state.current.id == "r1"
        if shipment.url and ".svc.cluster.local" not in shipment.url:
            assert httpx.get(shipment.url, timeout=30).text == "v1\n"
    finally:
        cloudship.destroy(name, "kubernetes")
