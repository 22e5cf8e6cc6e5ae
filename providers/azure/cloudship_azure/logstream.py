"""Reading a revision's console log through the Container Apps log stream.

The same calls ``az containerapp logs show`` makes: ``POST …/containerApps/<app>/getAuthToken``
for a short-lived token, the replicas of the revision from ARM, then
``GET <eventStreamEndpoint host>/subscriptions/…/containerApps/<app>/revisions/<rev>/replicas/
<replica>/containers/<container>/logstream?tailLines=N&follow=false&output=text`` with the token
as bearer. No Log Analytics workspace is involved.
"""

from __future__ import annotations

import ssl

from cloudship.errors import DeployError
from cloudship_azure.clients import AzureClients
from cloudship_azure.errors import arm_errors


def _verify(ca_bundle: str | None) -> bool | ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True


def read_log_tail(
    clients: AzureClients, service: str, revision: str, container: str, tail: int
) -> list[str]:
    import httpx

    group = clients.settings.resource_group
    apps = clients.apps
    with arm_errors(f"opening the log stream of {service}"):
        token = apps.container_apps.get_auth_token(group, service).token
        endpoint = apps.container_apps.get(group, service).event_stream_endpoint or ""
        replicas = apps.container_apps_revision_replicas.list_replicas(group, service, revision)
    if "/subscriptions/" not in endpoint or not replicas.value:
        return []
    base = endpoint[: endpoint.index("/subscriptions/")]
    lines: list[str] = []
    for replica in replicas.value:
        url = (
            f"{base}/subscriptions/{clients.subscription}/resourceGroups/{group}/containerApps/"
            f"{service}/revisions/{revision}/replicas/{replica.name}/containers/{container}"
            "/logstream"
        )
        try:
            response = httpx.get(
                url,
                params={"tailLines": str(tail), "follow": "false", "output": "text"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
                verify=_verify(clients.settings.ca_bundle),
            )
        except httpx.HTTPError as exc:
            raise DeployError(
                f"the log stream of {service} is not reachable ({type(exc).__name__})"
            ) from exc
        if response.status_code >= 400:
            raise DeployError(f"the log stream of {service} answered HTTP {response.status_code}")
        lines += response.text.splitlines()
    return lines[-tail:]
