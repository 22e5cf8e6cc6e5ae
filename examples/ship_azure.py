"""Ship the monitor app to Azure Container Apps and show its revisions.

Against Azure: sign in (az login, or AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET) and

    export CLOUDSHIP_AZURE_SUBSCRIPTION=<subscription id>
    export CLOUDSHIP_AZURE_REGISTRY=<acr name, 5-50 letters/digits>
    .venv/bin/python examples/ship_azure.py

The resource group, registry, environment and pull identity are created on first use (see
docs/azure.md for the RBAC roles this needs). Re-running it unchanged moves nothing.

Without Azure: ``.venv/bin/python examples/ship_azure.py --fake`` runs the same code against
``cloudship_azure.testing.fake_azure()`` — the ARM fake, an ACR-style registry and revisions on
the local Docker engine, with Azure's delays and failures (CI runs it this way).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cloudship
from cloudship import ship
from cloudship.cli import err
from cloudship.cli_report import Reporter


def main(settings: dict[str, Any]) -> None:
    app = Path(__file__).parent / "monitor-app"
    result = ship(
        app,
        target="azure",
        name="monitor",
        port=8000,
        cpu=0.5,
        memory="1Gi",
        env={"MODE": "prod"},
        timeout=900,
        on_event=Reporter(err.console),
        **settings,
    )
    print(f"{'shipped' if result.changed else 'unchanged'}: {result.name} {result.revision}")
    print(f"  image  {result.image}")
    print(f"  url    {result.url}")
    for revision in cloudship.status("monitor", "azure", **settings).revisions:
        print(f"  {revision.state:8} {revision.id}  {revision.digest[:19]}")


if __name__ == "__main__":
    if "--fake" in sys.argv[1:]:
        from cloudship_azure.testing import fake_azure

        with fake_azure() as azure:
            main(azure.settings())
    else:
        main({})
