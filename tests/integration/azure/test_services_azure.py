"""``services()`` on Container Apps: the apps cloudship deployed in the resource group (by
its tag), not the ones other tools made there; and ``cloudship services --target azure``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloudship import ship
from cloudship.api import services
from cloudship.cli import app as cli
from cloudship_azure.clients import AzureClients
from cloudship_azure.settings import AzureSettings
from cloudship_azure.testing import AzureTargetFactory


def _clients(factory: AzureTargetFactory) -> AzureClients:
    settings = factory.settings()
    credential = settings.pop("credential")
    return AzureClients(AzureSettings(**settings), credential)


def test_services_lists_cloudships_apps_only(
    app_dir: Path, cloudship_azure_target: AzureTargetFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = cloudship_azure_target.settings()
    assert services("azure", **settings) == []  # not even a resource group
    names = sorted(cloudship_azure_target.name(base) for base in ("b", "a"))
    for name in names:
        ship(app_dir, "azure", name=name, port=8000, **settings)
    # an app someone made with another tool, in the same group and environment
    clients = _clients(cloudship_azure_target)
    env = clients.apps.managed_environments.get("cloudship-test", "cloudship-env")
    clients.apps.container_apps.begin_create_or_update(
        "cloudship-test",
        "not-ours",
        {
            "location": "eastus",
            "properties": {
                "environmentId": env.id,
                "configuration": {"activeRevisionsMode": "Single"},
                "template": {"containers": [{"name": "x", "image": "busybox:latest"}]},
            },
        },
    ).result()
    assert services("azure", **settings) == names

    # the CLI, signed in as `az login` would be (DefaultAzureCredential → the test credential)
    monkeypatch.setattr(
        "azure.identity.DefaultAzureCredential", lambda: cloudship_azure_target.credential
    )
    flags = [
        part
        for key, value in settings.items()
        if key != "credential"
        for part in ("--set", f"{key}={value}")
    ]
    listed = CliRunner().invoke(cli, ["services", "--target", "azure", "--json", *flags])
    assert listed.exit_code == 0, listed.output
    body = json.loads(listed.stdout)
    assert [s["name"] for s in body] == names
    assert all(s["revision"] == "r1" and s["url"].startswith("https://") for s in body)
