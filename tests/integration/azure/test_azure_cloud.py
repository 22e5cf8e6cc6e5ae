"""Opt-in smoke test against a real Azure subscription (``pytest -m cloud``).

Skipped unless CLOUDSHIP_AZURE_SUBSCRIPTION and CLOUDSHIP_AZURE_REGISTRY are set and
DefaultAzureCredential can sign in. It creates (or reuses) the resource group, registry,
environment and pull identity named by the CLOUDSHIP_AZURE_* settings, ships a tiny app, checks
its public URL, and deletes the app again (the rest is left for the next run).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import httpx
import pytest

import cloudship
from cloudship import ship

pytestmark = [pytest.mark.cloud, pytest.mark.slow]


@pytest.fixture
def signed_in() -> None:
    missing = [
        name
        for name in ("CLOUDSHIP_AZURE_SUBSCRIPTION", "CLOUDSHIP_AZURE_REGISTRY")
        if not os.environ.get(name)
    ]
    if missing:
        pytest.skip(f"real-Azure smoke test: set {', '.join(missing)}")
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import DefaultAzureCredential

    try:
        DefaultAzureCredential().get_token("https://management.azure.com/.default")
    except ClientAuthenticationError as exc:
        pytest.skip(f"real-Azure smoke test: no Azure sign-in ({type(exc).__name__})")


@pytest.mark.usefixtures("signed_in")
def test_ship_to_real_container_apps(app_dir: Path) -> None:
    name = f"cs-smoke-{uuid.uuid4().hex[:6]}"
    try:
        shipment = ship(app_dir, "azure", name=name, port=8000, timeout=900)
        assert shipment.url is not None and shipment.url.endswith(".azurecontainerapps.io")
        assert httpx.get(shipment.url, timeout=30).text == "v1\n"
        again = ship(app_dir, "azure", name=name, port=8000, timeout=900)
        assert not again.changed
    finally:
        cloudship.destroy(name, "azure")
