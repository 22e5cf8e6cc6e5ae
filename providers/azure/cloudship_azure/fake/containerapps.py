"""``Microsoft.App/containerApps`` and their revisions, as the ARM fake serves them.

Revision semantics follow the Container Apps docs (shared/CLOUD-FACTS.md §2.4): a change to
``properties.template`` creates a new immutable revision named ``<app>--<suffix>`` (the
``template.revisionSuffix`` if given, else 7 random characters); configuration changes
(ingress, traffic, secrets) do not. In ``Multiple`` mode traffic goes exactly where
``configuration.ingress.traffic`` says; in ``Single`` mode it moves to the newest revision only
once that one runs, and stays on the old one if it fails.

A revision's image is pulled with the registry entry of ``configuration.registries`` whose
``server`` matches the image host. For a registry the fake holds, a managed-identity pull
succeeds only when that identity holds AcrPull on the registry and the assignment has
propagated (``FakeArm.role_propagation``); a system-assigned identity has no role assignment
when the app is created, so the first revision fails to pull — the trap Azure users hit
(MicrosoftDocs/azure-docs articles/container-apps/containers.md; microsoft/azure-container-apps
#646 and #836). The refusal reads as Azure's: "unable to pull image using Managed identity
<id or 'system'> for registry <server>" inside the field-error text quoted in
microsoft/azure-container-apps#1061. Restarting a revision pulls again ("After restarting the
revision things start working again", microsoft/azure-container-apps#960).

Revision ``runningState`` values are the spec's enum (``Running | Processing | Stopped |
Degraded | Failed | Unknown``, specification/app/resource-manager/Microsoft.App/ContainerApps/
stable/2025-07-01/ContainerAppsRevisions.json).
"""

from __future__ import annotations

import json
import random
import re
import secrets as secrets_module
import string
import threading
from typing import TYPE_CHECKING, Any, Protocol

from cloudship_azure.fake import resources
from cloudship_azure.fake.messages import Request, Response
from cloudship_azure.fake.resources import ArmError

if TYPE_CHECKING:
    from cloudship_azure.fake.arm import FakeArm

ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
#: "Container Registry Repository Reader": the pull role of ABAC-mode registries
REPOSITORY_READER = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
#: revision running states after which a new revision will not come up by itself
TERMINAL_RUNNING_STATES = frozenset({"Failed", "Degraded", "Stopped"})
#: ARM's rule and words for container app names (dotnet/docs-aspire#1094)
_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")
_SECRET_NAME = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")
_MEMORY = re.compile(r"^(\d+(?:\.\d+)?)Gi$")


class RevisionRunner(Protocol):
    """Runs a revision's image somewhere it can answer HTTP (e.g. ``LocalEngineRunner``)."""

    def start(
        self, revision: str, image: str, port: int, env: dict[str, str], *, lazy: bool = False
    ) -> None:
        """``lazy``: scaled to zero, start on the first request (``minReplicas: 0``)."""
        ...

    def state(self, revision: str) -> tuple[str, str]:
        """``("Provisioning" | "Running" | "Failed", detail)``."""
        ...

    def stop(self, revision: str) -> None: ...

    def logs(self, revision: str, tail: int) -> list[str]: ...

    def route(self, fqdn: str, revision: str | None) -> None:
        """Send HTTP for ``fqdn`` to ``revision`` (None: nothing answers)."""
        ...

    def close(self) -> None: ...


def _check_resources(containers: list[dict[str, Any]]) -> None:
    """Total cpu/memory must be a consumption pair: cpu a multiple of 0.25 up to 4 vCPU and
    memory exactly twice as many Gi (containers.md; 2.0/4.0Gi was the 2022 top)."""
    cpu = 0.0
    memory = 0.0
    for container in containers:
        res = container.get("resources") or {}
        cpu += float(res.get("cpu", 0.5))
        text = str(res.get("memory", "1Gi"))
        match = _MEMORY.match(text)
        if not match:
            raise ArmError(
                400,
                "ContainerAppInvalidMemoryFormat",
                f"Container memory '{text}' is invalid: use a number of Gi, e.g. '1.0Gi'.",
            )
        memory += float(match[1])
    quarters = cpu / 0.25
    if (
        not (abs(quarters - round(quarters)) < 1e-9 and 1 <= round(quarters) <= 16)
        or abs(memory - 2 * cpu) > 1e-9
    ):
        pairs = "; ".join(f"[cpu: {q / 4:g}, memory: {q / 2:.1f}Gi]" for q in range(1, 17))
        raise ArmError(
            400,
            "ContainerAppInvalidResourceTotal",
            "Total CPU and memory for all containers defined in a Container App must add up "
            f"to one of the following CPU - Memory combinations: {pairs}. "
            f"Total CPU and memory: [cpu: {cpu:g}, memory: {memory:g}Gi]",
        )


def normalized_template(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` with the defaults Azure fills in (CommonDefinitions.json: Scale
    maxReplicas 10, cooldownPeriod 300, pollingInterval 30; container resources 0.5/1Gi),
    read-only ``ephemeralStorage`` left out."""
    out: dict[str, Any] = json.loads(json.dumps(template))
    scale = out.setdefault("scale", {}) or {}
    out["scale"] = scale
    scale.setdefault("minReplicas", 0)
    scale.setdefault("maxReplicas", 10)
    scale.setdefault("cooldownPeriod", 300)
    scale.setdefault("pollingInterval", 30)
    for container in out.get("containers") or []:
        res = container.setdefault("resources", {}) or {}
        container["resources"] = res
        res.setdefault("cpu", 0.5)
        res.setdefault("memory", "1Gi")
        res.pop("ephemeralStorage", None)
    return out


def _suffix() -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=7))


class AppBook:
    """Container apps, their last request bodies (for PATCH), and their revisions."""

    def __init__(self, arm: FakeArm, runner: RevisionRunner | None) -> None:
        self.arm = arm
        self.runner = runner
        #: lower-cased app id → the last request body, secret values included (never returned)
        self.requests: dict[str, dict[str, Any]] = {}
        #: lower-cased app id → its revisions, oldest first
        self.revisions: dict[str, list[dict[str, Any]]] = {}
        #: lower-cased app id → the token getAuthtoken handed out for its log stream
        self.log_tokens: dict[str, str] = {}
        self._lock = threading.RLock()

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()

    def forget(self, key: str) -> None:
        for revision in self.revisions.pop(key, []):
            if self.runner is not None:
                self.runner.stop(revision["name"])
        self.requests.pop(key, None)

    # -- create / update ---------------------------------------------------------------

    def put(
        self, rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None
    ) -> tuple[dict[str, Any], str | None]:
        """The resource as stored, and the name of the revision this PUT created (if any)."""
        if existing is None and (not _APP_NAME.match(name) or "--" in name):
            raise ArmError(
                400,
                "ContainerAppInvalidName",
                f"Invalid ContainerApp name '{name}'. A name must consist of lower case "
                "alphanumeric characters or '-', start with an alphabetic character, and end "
                "with an alphanumeric character and cannot have '--'. The length must be "
                "between 2 and 32 characters inclusive.",
            )
        resources.require(
            body,
            "location",
            "properties.configuration",
            # strict on the fields cloudship sets: a client that silently drops one (as
            # azure-mgmt-appcontainers 5.0.0 drops activeRevisionsMode, issue #48043) fails
            "properties.configuration.activeRevisionsMode",
            "properties.template.containers",
        )
        props = body["properties"]
        environment = self._environment(body, props)
        config = props["configuration"]
        mode = config["activeRevisionsMode"]
        if mode not in ("Single", "Multiple"):
            raise ArmError(
                400, "InvalidActiveRevisionsMode", f"activeRevisionsMode '{mode}' is not valid."
            )
        identities = self._identities(body.get("identity"))
        secrets = self._secrets(config.get("secrets") or [])
        self._registries(config.get("registries") or [], secrets, identities)
        template = props["template"]
        self._template(template, secrets)
        ingress = config.get("ingress")
        if ingress is not None:
            resources.require(body, "properties.configuration.ingress.targetPort")

        key = rid.lower()
        revisions = self.revisions.setdefault(key, [])
        domain = environment["properties"]["defaultDomain"]
        latest = revisions[-1] if revisions else None
        # compared with the platform's defaults filled in: a re-PUT of a GET (which carries
        # them) is not a template change, as in Azure
        wanted = json.dumps(normalized_template(template), sort_keys=True)
        new_revision: dict[str, Any] | None = None
        if latest is None or wanted != json.dumps(
            normalized_template(latest["properties"]["template"]), sort_keys=True
        ):
            suffix = template.get("revisionSuffix") or _suffix()
            revision_name = f"{name}--{suffix}"
            if any(r["name"] == revision_name for r in revisions):
                raise ArmError(
                    400,
                    "ContainerAppRevisionSuffixAlreadyUsed",
                    f"Revision with suffix '{suffix}' already exists; use a new revisionSuffix.",
                )
            # internal ingress: the app and its revisions are named under ``.internal.``
            # (learn.microsoft.com/azure/container-apps/ingress-overview#internal-ingress;
            # container-apps/connect-apps.md: <app>.internal.<env domain>)
            external = bool((config.get("ingress") or {}).get("external"))
            host = f"{revision_name}.{domain}" if external else f"{revision_name}.internal.{domain}"
            new_revision = self._revision(rid, revision_name, template, host)
        self._check_traffic(ingress, revisions, new_revision)
        if new_revision is not None:
            revisions.append(new_revision)
            self._launch(new_revision, body, secrets, identities)
        self.requests[key] = json.loads(json.dumps(body))
        resource = self._view(rid, name, body, environment, identities, existing)
        self.arm.resources[key] = resource  # refresh() fills latest* fields in from it
        self.refresh(key)
        return resource, new_revision["name"] if new_revision is not None else None

    def _environment(self, body: dict[str, Any], props: dict[str, Any]) -> dict[str, Any]:
        """The app's environment: it exists, is provisioned, has the workload profile named."""
        env_id = props.get("environmentId") or props.get("managedEnvironmentId")
        if not env_id:
            resources.require(body, "properties.environmentId")
        environment = self.arm.resources.get(str(env_id).lower())
        if environment is None or environment["type"] != "Microsoft.App/managedEnvironments":
            raise ArmError(
                404, "ManagedEnvironmentNotFound", f"Managed environment '{env_id}' not found."
            )
        profile = props.get("workloadProfileName")
        profiles = [p.get("name") for p in environment["properties"].get("workloadProfiles") or []]
        if profile is not None and profile not in profiles:
            # not compared with a recording: Azure's code for this refusal is not public
            raise ArmError(
                400,
                "WorkloadProfileNotFound",
                f"Workload profile '{profile}' is not defined in environment "
                f"'{environment['name']}' (profiles: {', '.join(map(str, profiles)) or 'none'}).",
            )
        if not self.arm.environment_ready(str(env_id).lower()):
            raise ArmError(
                400,
                "ManagedEnvironmentNotProvisioned",
                f"The environment '{environment['id']}' has not been provisioned successfully.",
            )
        return environment

    @staticmethod
    def operation_error(app: str, detail: str) -> dict[str, str]:
        """The error of a failed container app operation, worded as Azure words it
        (microsoft/azure-container-apps#1061)."""
        return {
            "code": "ContainerAppOperationError",
            "message": f"Failed to provision revision for container app '{app}'. "
            f"Error details: {detail}",
        }

    def outcome(
        self, key: str, revision_name: str | None
    ) -> tuple[str, dict[str, str] | None] | None:
        """How the PUT that created ``revision_name`` ends: Succeeded once it runs, Failed when
        it failed, None while it provisions."""
        if revision_name is None:
            return ("Succeeded", None)
        self.refresh(key)
        revision = next(
            (r for r in self.revisions.get(key, []) if r["name"] == revision_name), None
        )
        if revision is None:  # deleted meanwhile
            return ("Succeeded", None)
        props = revision["properties"]
        if props["provisioningState"] == "Failed" or (
            props["runningState"] in TERMINAL_RUNNING_STATES
        ):
            app = revision_name.split("--")[0]
            detail = props["provisioningError"] or f"revision {props['runningState']}"
            return ("Failed", self.operation_error(app, str(detail)))
        if props["runningState"] == "Running":
            return ("Succeeded", None)
        return None

    def _identities(self, identity: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
        """The app's identities: user-assigned id (lower-cased) → properties."""
        if not identity:
            return {}
        kind = str(identity.get("type", "None"))
        found: dict[str, dict[str, Any]] = {}
        if "UserAssigned" in kind:
            for uid in identity.get("userAssignedIdentities") or {}:
                held = self.arm.resources.get(uid.lower())
                if held is None:
                    raise ArmError(
                        400,
                        "InvalidUserAssignedIdentity",
                        f"The user-assigned identity '{uid}' does not exist.",
                    )
                found[uid.lower()] = held["properties"]
        if "SystemAssigned" in kind:
            found["system"] = {"principalId": "system-assigned-without-roles"}
        return found

    @staticmethod
    def _secrets(secrets: list[dict[str, Any]]) -> dict[str, str]:
        values: dict[str, str] = {}
        for secret in secrets:
            name = str(secret.get("name", ""))
            if not _SECRET_NAME.match(name):
                raise ArmError(
                    400,
                    "ContainerAppSecretInvalidName",
                    f"Secret name '{name}' is invalid: use lower-case letters, digits, '-' "
                    "and '.', starting and ending with a letter or digit.",
                )
            if secret.get("value") is None and not secret.get("keyVaultUrl"):
                raise ArmError(400, "ContainerAppSecretInvalid", f"Secret '{name}' has no value.")
            values[name] = str(secret.get("value", ""))
        return values

    def _registries(
        self,
        registries: list[dict[str, Any]],
        secrets: dict[str, str],
        identities: dict[str, dict[str, Any]],
    ) -> None:
        for entry in registries:
            if not entry.get("server"):
                raise ArmError(400, "InvalidRequestContent", "registries[].server is required.")
            ref = entry.get("identity")
            if ref:
                if str(ref).lower() not in identities:
                    raise ArmError(
                        400,
                        "InvalidRegistryIdentity",
                        f"Registry identity '{ref}' is not an identity of this container app.",
                    )
            elif entry.get("passwordSecretRef") not in secrets:
                raise ArmError(
                    400,
                    "ContainerAppSecretRefNotFound",
                    f"passwordSecretRef '{entry.get('passwordSecretRef')}' is not a secret.",
                )

    @staticmethod
    def _template(template: dict[str, Any], secrets: dict[str, str]) -> None:
        containers = template["containers"]
        for container in containers:
            if not container.get("name") or not container.get("image"):
                raise ArmError(
                    400,
                    "InvalidRequestContent",
                    "Each container needs a name and an image.",
                )
            for item in container.get("env") or []:
                ref = item.get("secretRef")
                if ref is not None and ref not in secrets:
                    raise ArmError(
                        400,
                        "ContainerAppSecretRefNotFound",
                        f"Secret '{ref}' referenced by env '{item.get('name')}' is not defined.",
                    )
        _check_resources(containers)
        scale = template.get("scale") or {}
        low, high = scale.get("minReplicas", 0), scale.get("maxReplicas", 10)
        if not (0 <= low <= high <= 1000) or high < 1:
            raise ArmError(
                400,
                "ContainerAppInvalidScale",
                f"minReplicas {low} / maxReplicas {high}: need 0 <= min <= max, 1 <= max <= 1000.",
            )

    def _check_traffic(
        self,
        ingress: dict[str, Any] | None,
        revisions: list[dict[str, Any]],
        new: dict[str, Any] | None,
    ) -> None:
        if not ingress or not ingress.get("traffic"):
            return
        names = {r["name"]: r for r in revisions}
        if new is not None:
            names[new["name"]] = new
        total = 0
        for entry in ingress["traffic"]:
            total += int(entry.get("weight", 0))
            target = entry.get("revisionName")
            if target is None:
                continue
            if target not in names:
                raise ArmError(
                    400,
                    "ContainerAppInvalidTrafficRevision",
                    f"Revision '{target}' in the traffic configuration does not exist.",
                )
            if not names[target]["properties"]["active"] and int(entry.get("weight", 0)) > 0:
                raise ArmError(
                    400,
                    "ContainerAppRevisionNotActive",
                    f"Revision '{target}' is not active; activate it before sending traffic.",
                )
        if total != 100:
            raise ArmError(
                400,
                "ContainerAppInvalidTrafficWeight",
                f"Traffic weights must add up to 100, not {total}.",
            )

    @staticmethod
    def _revision(rid: str, name: str, template: dict[str, Any], fqdn: str) -> dict[str, Any]:
        return {
            "id": f"{rid}/revisions/{name}",
            "name": name,
            "type": "Microsoft.App/containerApps/revisions",
            "properties": {
                "createdTime": resources.now(),
                "lastActiveTime": resources.now(),
                "fqdn": fqdn,
                "template": json.loads(json.dumps(template)),
                "active": True,
                "replicas": 0,
                "trafficWeight": 0,
                "healthState": "None",
                "provisioningState": "Provisioning",
                "runningState": "Processing",
                "provisioningError": None,
            },
        }

    def _launch(
        self,
        revision: dict[str, Any],
        body: dict[str, Any],
        secrets: dict[str, str],
        identities: dict[str, dict[str, Any]],
    ) -> None:
        """Pull (permission check) and start the revision's first container."""
        container = revision["properties"]["template"]["containers"][0]
        image = str(container["image"])
        denied = self._pull_denied(
            image, str(container["name"]), body["properties"]["configuration"], identities
        )
        missing = [
            str(item["secretRef"])
            for item in container.get("env") or []
            if "secretRef" in item and item["secretRef"] not in secrets
        ]
        if missing and not denied:
            # an older revision re-activated after its secret was removed from the app
            # (not compared with a recording: Azure's exact text is not public)
            denied = (
                f"Secret '{missing[0]}' referenced by container '{container['name']}' is not "
                "defined in the container app's configuration."
            )
        if denied:
            revision["properties"].update(
                provisioningState="Failed",
                runningState="Failed",
                healthState="Unhealthy",
                provisioningError=denied,
            )
            return
        if self.runner is None:
            revision["properties"].update(
                provisioningState="Provisioned", runningState="Running", healthState="Healthy"
            )
            return
        env = {
            item["name"]: secrets[item["secretRef"]] if "secretRef" in item else item["value"]
            for item in container.get("env") or []
        }
        port = int((body["properties"]["configuration"].get("ingress") or {}).get("targetPort", 80))
        scale = revision["properties"]["template"].get("scale") or {}
        lazy = int(scale.get("minReplicas", 0)) == 0
        self.runner.start(revision["name"], image, port, env, lazy=lazy)

    def _pull_denied(
        self,
        image: str,
        container: str,
        config: dict[str, Any],
        identities: dict[str, dict[str, Any]],
    ) -> str | None:
        server = image.split("/", 1)[0].lower()
        registry = next(
            (
                r
                for r in self.arm.resources.values()
                if r["type"] == "Microsoft.ContainerRegistry/registries"
                and r["properties"]["loginServer"].lower() == server
            ),
            None,
        )
        if registry is None:
            return None  # a registry the fake does not hold: the runner decides
        entry = next(
            (e for e in config.get("registries") or [] if e["server"].lower() == server), None
        )

        def invalid(details: str) -> str:
            # the field-error text Azure puts in provisioningError (azure-container-apps#1061)
            return (
                "The following field(s) are either invalid or missing. Field "
                f"'template.containers.{container}.image' is invalid with details: "
                f"'Invalid value: \"{image}\": {details}';.."
            )

        unauthorized = invalid(f"GET https:?{server}: UNAUTHORIZED: authentication required")
        if entry is None:
            return unauthorized
        if entry.get("identity"):
            principal = identities[str(entry["identity"]).lower()]["principalId"]
            abac = registry["properties"].get("roleAssignmentMode") == "AbacRepositoryPermissions"
            role = REPOSITORY_READER if abac else ACR_PULL  # ABAC ignores AcrPull
            if not resources.has_role(self.arm, principal, registry["id"], role):
                return invalid(
                    f"unable to pull image using Managed identity {entry['identity']} for "
                    f"registry {entry['server']}"
                )
            return None
        if not registry["properties"]["adminUserEnabled"]:
            return unauthorized
        return None

    # -- reading -------------------------------------------------------------------------

    def refresh(self, key: str) -> None:
        """Bring revision states, traffic and the app's latest* fields up to date."""
        app = self.arm.resources.get(key)
        request = self.requests.get(key)
        if app is None or request is None:
            return
        revisions = self.revisions.get(key, [])
        if self.runner is not None:
            for revision in revisions:
                props = revision["properties"]
                if props["provisioningState"] == "Failed" or not props["active"]:
                    continue
                state, detail = self.runner.state(revision["name"])
                if state == "Running":
                    props.update(
                        provisioningState="Provisioned",
                        runningState="Running",
                        healthState="Healthy",
                        replicas=0 if detail == "scaled to zero" else 1,
                    )
                elif state == "Failed":
                    props.update(
                        provisioningState="Provisioned",
                        runningState="Failed",
                        healthState="Unhealthy",
                        replicas=0,
                        provisioningError=detail,
                    )
        config = request["properties"]["configuration"]
        weights = self._weights(config, revisions)
        for revision in revisions:
            props = revision["properties"]
            props["trafficWeight"] = weights.get(revision["name"], 0)
        latest = revisions[-1] if revisions else None
        ready = [r for r in revisions if r["properties"]["runningState"] == "Running"]
        props = app["properties"]
        props["latestRevisionName"] = latest["name"] if latest else None
        props["latestRevisionFqdn"] = latest["properties"]["fqdn"] if latest else None
        props["latestReadyRevisionName"] = ready[-1]["name"] if ready else None
        ingress = props["configuration"].get("ingress")
        if self.runner is not None and ingress:
            serving = max(weights, key=lambda n: weights[n]) if weights else None
            self.runner.route(ingress["fqdn"], serving)
            for revision in revisions:
                active = revision["properties"]["active"]
                self.runner.route(
                    revision["properties"]["fqdn"], revision["name"] if active else None
                )

    def _weights(self, config: dict[str, Any], revisions: list[dict[str, Any]]) -> dict[str, int]:
        if not revisions:
            return {}
        latest = revisions[-1]
        if config["activeRevisionsMode"] == "Single":
            running = [
                r
                for r in revisions
                if r["properties"]["runningState"] == "Running" and r["properties"]["active"]
            ]
            serving = running[-1] if running else latest
            for revision in revisions:
                revision["properties"]["active"] = revision is serving or (
                    revision is latest and latest["properties"]["provisioningState"] != "Failed"
                )
            return {serving["name"]: 100}
        traffic = (config.get("ingress") or {}).get("traffic") or [
            {"latestRevision": True, "weight": 100}
        ]
        weights: dict[str, int] = {}
        for entry in traffic:
            name = entry.get("revisionName") or latest["name"]
            weights[name] = weights.get(name, 0) + int(entry.get("weight", 0))
        return {k: v for k, v in weights.items() if v}

    def _view(
        self,
        rid: str,
        name: str,
        body: dict[str, Any],
        environment: dict[str, Any],
        identities: dict[str, dict[str, Any]],
        existing: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The resource as GET returns it (ContainerApps_Get.json, 2025-07-01 examples): secret
        values stripped, read-only fields added (``runningStatus``, ``latest*``, ``fqdn``,
        ``outboundIpAddresses``, ``ephemeralStorage``, identity principal ids), the platform's
        defaults filled in (``scale.cooldownPeriod`` 300 and ``pollingInterval`` 30, "Defaults to
        300/30 seconds if not set", CommonDefinitions.json Scale), and the environment named
        only by the deprecated ``managedEnvironmentId``, as that example answers."""
        props = json.loads(json.dumps(body["properties"]))
        env_id = environment["id"]
        props.pop("managedEnvironmentId", None)
        props.pop("environmentId", None)
        config = props["configuration"]
        config["secrets"] = [{"name": s["name"]} for s in config.get("secrets") or []]
        config.setdefault("maxInactiveRevisions", 100)
        config.setdefault("registries", [])
        domain = environment["properties"]["defaultDomain"]
        if config.get("ingress") is not None:
            ingress = config["ingress"]
            ingress.setdefault("transport", "auto")
            ingress.setdefault("allowInsecure", False)
            ingress.setdefault("traffic", [{"weight": 100, "latestRevision": True}])
            ingress["fqdn"] = (
                f"{name}.{domain}" if ingress.get("external") else f"{name}.internal.{domain}"
            )
        props["template"] = normalized_template(props["template"])
        for container in props["template"]["containers"]:
            res = container["resources"]
            res["ephemeralStorage"] = f"{float(res.get('cpu', 0.5)) * 4:g}Gi"
        props.update(
            {
                "provisioningState": "Succeeded",
                "managedEnvironmentId": env_id,
                "runningStatus": "Running",
                "workloadProfileName": body["properties"].get("workloadProfileName"),
                "outboundIpAddresses": ["20.1.2.3"],
                "customDomainVerificationId": "FAKE" + "0" * 60,
                "eventStreamEndpoint": f"{self.arm.base_url}{rid}/eventstream",
            }
        )
        resource: dict[str, Any] = {
            "id": rid,
            "name": name,
            "type": "Microsoft.App/containerApps",
            "location": body["location"],
            "tags": body.get("tags") or {},
            "systemData": (existing or {}).get("systemData")
            or {"createdAt": resources.now(), "createdBy": "fake-arm-user"},
            "properties": props,
        }
        if body.get("identity"):
            identity = json.loads(json.dumps(body["identity"]))
            for uid, details in (identity.get("userAssignedIdentities") or {}).items():
                held = identities[uid.lower()]
                (details if isinstance(details, dict) else {}).update(
                    principalId=held["principalId"], clientId=held["clientId"]
                )
                identity["userAssignedIdentities"][uid] = {
                    "principalId": held["principalId"],
                    "clientId": held["clientId"],
                }
            resource["identity"] = identity
        return resource

    # -- revisions sub-resources ---------------------------------------------------------

    def subresource(self, request: Request, rid: str, rest: str) -> Response:
        key = rid.lower()
        parts = [p for p in rest.split("/") if p]
        with self.arm.lock:
            app = self.arm.resources.get(key)
            if app is None:
                name = rid.rsplit("/", 1)[1]
                raise resources.not_found("microsoft.app/containerapps", name, rid.split("/")[4])
            self.refresh(key)
            revisions = self.revisions.get(key, [])
            action = parts[0].lower()
            if action == "listsecrets" and request.method == "POST":
                secrets = self.requests[key]["properties"]["configuration"].get("secrets") or []
                return Response(200, {"value": secrets})
            if action == "getauthtoken" and request.method == "POST":
                return Response(200, self._auth_token(key, app))
            if action != "revisions":
                raise ArmError(404, "InvalidResourceType", f"{rest} is not served by the fake.")
            if len(parts) == 1 and request.method == "GET":
                return Response(200, {"value": list(reversed(revisions)), "nextLink": None})
            revision = next((r for r in revisions if r["name"] == parts[1]), None)
            if revision is None:
                raise ArmError(
                    404,
                    "ContainerAppRevisionNotFound",
                    f"Revision '{parts[1]}' of container app '{app['name']}' not found.",
                )
            if len(parts) == 2 and request.method == "GET":
                return Response(200, revision)
            if len(parts) == 3 and parts[2].lower() == "replicas" and request.method == "GET":
                return Response(200, {"value": self._replicas(revision)})
            if len(parts) == 3 and request.method == "POST":
                return self._revision_action(key, app, revision, parts[2].lower())
        raise ArmError(405, "MethodNotAllowed", f"{request.method} {rest} is not supported.")

    def _auth_token(self, key: str, app: dict[str, Any]) -> dict[str, Any]:
        token = self.log_tokens.setdefault(key, secrets_module.token_urlsafe(24))
        return {
            "id": f"{app['id']}/getAuthtoken",
            "name": "current",
            "type": "Microsoft.App/containerApps/getAuthtoken",
            "location": app["location"],
            "properties": {"token": token, "expires": resources.now()},
        }

    @staticmethod
    def _replicas(revision: dict[str, Any]) -> list[dict[str, Any]]:
        props = revision["properties"]
        if not props["active"] or props["provisioningState"] == "Failed":
            return []
        containers = [
            {
                "name": c["name"],
                "ready": props["runningState"] == "Running",
                "runningState": props["runningState"],
            }
            for c in props["template"]["containers"]
        ]
        return [
            {
                "id": f"{revision['id']}/replicas/{revision['name']}-0",
                "name": f"{revision['name']}-0",
                "type": "Microsoft.App/containerApps/revisions/replicas",
                "properties": {"createdTime": props["createdTime"], "containers": containers},
            }
        ]

    def log_stream(self, request: Request, match: dict[str, str]) -> Response:
        """``…/containerApps/<app>/revisions/<rev>/replicas/<replica>/containers/<c>/logstream``
        on the event stream host: the revision's console log, bearer = ``getAuthtoken``."""
        rid = resources.resource_id(
            match["sub"], match["rg"], "microsoft.app/containerapps", match["app"]
        )
        key = rid.lower()
        expected = self.log_tokens.get(key)
        if not expected or request.headers.get("authorization") != f"Bearer {expected}":
            raise ArmError(401, "Unauthorized", "The log stream token is missing or invalid.")
        revision = next((r for r in self.revisions.get(key, []) if r["name"] == match["rev"]), None)
        if revision is None:
            raise ArmError(404, "ContainerAppRevisionNotFound", "No such revision.")
        tail = int(request.query.get("tailLines", "100"))
        lines = self.runner.logs(match["rev"], tail) if self.runner is not None else []
        return Response(200, "\n".join(lines) + ("\n" if lines else ""))

    def _revision_action(
        self, key: str, app: dict[str, Any], revision: dict[str, Any], action: str
    ) -> Response:
        props = revision["properties"]
        request = self.requests[key]
        if action == "deactivate":
            if props["trafficWeight"] > 0:
                raise ArmError(
                    400,
                    "ContainerAppRevisionHasTraffic",
                    f"Revision '{revision['name']}' receives traffic and cannot be deactivated.",
                )
            props.update(active=False, replicas=0, runningState="Stopped", healthState="None")
            if self.runner is not None:
                self.runner.stop(revision["name"])
        elif action in ("activate", "restart"):
            # a restart pulls again (microsoft/azure-container-apps#960); activating a revision
            # that never provisioned is refused
            if action == "activate" and props["provisioningState"] == "Failed":
                raise ArmError(
                    400,
                    "ContainerAppRevisionProvisioningFailed",
                    f"Revision '{revision['name']}' failed to provision and cannot be activated.",
                )
            if self.runner is not None:
                self.runner.stop(revision["name"])
            props.update(
                active=True,
                runningState="Processing",
                provisioningState="Provisioning",
                provisioningError=None,
                healthState="None",
            )
            props["lastActiveTime"] = resources.now()
            secrets = self._secrets(request["properties"]["configuration"].get("secrets") or [])
            identities = self._identities(request.get("identity"))
            self._launch(revision, request, secrets, identities)
        else:
            raise ArmError(404, "InvalidResourceType", f"Unknown revision action '{action}'.")
        self.refresh(key)
        return Response(200, None)
