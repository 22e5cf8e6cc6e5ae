"""Azure Container Apps as a cloudship ``Runtime``: blue/green revisions, health-gated.

Apps run in ``Multiple`` revision mode so a new revision can be tried without taking traffic:

1. ``PUT`` the app with the new template (image pinned by digest, a fresh revision suffix)
   while ``ingress.traffic`` stays pinned to the serving revision;
2. wait until the new revision is provisioned and running, then probe it on its own FQDN;
3. healthy → ``PUT`` traffic 100 % to it and deactivate the others (kept for rollback);
   unhealthy → deactivate it: traffic never left the old revision.

The spec's fingerprint is stored in the app's ``cloudship-fingerprint`` tag when a revision is
promoted, so re-shipping the same digest and spec creates nothing (``changed=False``).

A revision fails the gate when the app PUT's operation fails (Azure's ``ContainerAppOperationError``
"Failed to provision revision …", or "Operation expired"), when it reaches a terminal running
state of the spec's enum (``Failed``, ``Degraded``, ``Stopped``: ContainerAppsRevisions.json,
2025-07-01), or when its probe fails; each ends the same way: ``HealthCheckFailed`` with the
revision's log tail, the revision deactivated and listed as ``failed`` (its number is kept in
the app's ``cloudship-failed`` tag, since Azure keeps no such mark), the previous one serving.
A pull refused with "unable to pull image using Managed identity" while the AcrPull grant may
still be propagating (up to 10 minutes, learn.microsoft.com/azure/role-based-access-control/
troubleshooting; microsoft/azure-container-apps#646) is retried by restarting the revision —
a restart pulls again (microsoft/azure-container-apps#960) — with exponential back-off, within
the deadline. The back-off is a few lines in the gate's polling loop rather than tenacity,
because each attempt is interleaved with reading the revision's state.
Secrets become Container Apps secrets referenced by ``secretRef``; the registry is pulled
with the user-assigned identity from ``identity.py``, never with a password.

One ship per app at a time (optimistic, no lock to leave behind): every ship writes its id in
the app's ``cloudship-ship`` tag, and every app write is conditional on what this ship read —
``If-None-Match: *`` to create, ``If-Match: <ETag>`` to change — so a write that would
overwrite another ship's answers 412 and becomes ``ConcurrentShipError`` naming the ship in the
tag ("ETags for Resources", Azure/azure-resource-manager-rpc v1.0/Addendum.md). The Microsoft.App
2025-07-01 spec documents no ETag for container apps, and the RPC lets a provider ignore
``If-Match``; so before moving traffic the ship also re-reads the app and refuses when its tag
names another ship. Where Azure does not honour ``If-Match``, that leaves only the moment
between the re-read and the traffic PUT unguarded (docs/azure.md, "Concurrent ships").
"""

from __future__ import annotations

import os
import re
import secrets as _random
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from cloudship.errors import (
    CloudshipError,
    ConcurrentShipError,
    ConfigError,
    DeployError,
    HealthCheckFailed,
    RevisionNotFoundError,
    ServiceNotFoundError,
)
from cloudship.errors import ShipTimeoutError as CloudshipTimeout
from cloudship.events import DeployPhase, EventSink, Notice, ignore
from cloudship.images import ImageRef
from cloudship.probe import wait_healthy
from cloudship.registry import RegistryAuth
from cloudship.revisions import choose_rollback, revision_id
from cloudship.runtime import (
    Deployment,
    Plan,
    Revision,
    Runtime,
    ServiceSpec,
    ServiceStatus,
    memory_bytes,
)
from cloudship_azure.acr import AcrRegistry
from cloudship_azure.clients import AzureClients
from cloudship_azure.errors import arm_code, arm_errors
from cloudship_azure.identity import PullIdentity, ensure_pull_identity
from cloudship_azure.logstream import read_log_tail
from cloudship_azure.registration import ensure_registered, missing
from cloudship_azure.retry import when_unlocked

if TYPE_CHECKING:
    from azure.mgmt.appcontainers.models import ContainerApp, ManagedEnvironment
    from azure.mgmt.appcontainers.models import Revision as ArmRevision

FINGERPRINT_TAG = "cloudship-fingerprint"
HEALTH_TAG = "cloudship-health-path"
#: RegistryAuth.fingerprint() of the password pull secret (foreign registries only): a rotated
#: token is a change, so the app's registry secret is rewritten (never the value itself)
PULL_TAG = "cloudship-pull-credentials"
#: numbers of the revisions that failed their gate, comma-separated (a tag value: 256 chars)
FAILED_TAG = "cloudship-failed"
#: the ship (or rollback) that last wrote the app: host, pid and a random part
SHIP_TAG = "cloudship-ship"
#: spec running states (ContainerAppsRevisions.json 2025-07-01) a new revision does not leave
TERMINAL_RUNNING_STATES = frozenset({"Failed", "Degraded", "Stopped"})
TERMINAL_PROVISIONING_STATES = frozenset({"Failed", "Deprovisioning", "Deprovisioned"})
#: Azure's words when a managed identity may not (yet) pull (azure-container-apps#836, #1061)
IDENTITY_PULL_REFUSED = "unable to pull image using managed identity"
CONTAINER = "app"
#: consumption-plan cpu → memory (Gi) pairs: the total of all containers must be one of these
#: (MicrosoftDocs/azure-docs articles/container-apps/containers.md; current docs go to 4 vCPU)
ALLOWED_SIZES: dict[float, float] = {q / 4: q / 2 for q in range(1, 17)}
_GI = 1024**3
#: typical Azure durations of a first deploy's waits, for the notice that a timeout is short:
#: an environment's creation ("minutes", microsoft/azure-container-apps#433) and an AcrPull
#: grant's propagation (1-5 minutes in microsoft/azure-container-apps#646)
ENVIRONMENT_CREATION = 300.0
PULL_GRANT_PROPAGATION = 300.0
#: how long a write without a deploy deadline (destroy, cleanup) waits out a lock conflict
LOCK_WAIT = 120.0
#: the serverless profile every workload-profiles environment has (workload-profiles-overview)
CONSUMPTION = "Consumption"
T = TypeVar("T")


def container_size(spec: ServiceSpec) -> tuple[float, str]:
    """``(cpu, "<n>Gi")`` for ``spec``: defaults 0.5 vCPU / 1Gi, one derived from the other
    when only one is given; ``ConfigError`` unless it is an allowed pair."""
    memory = memory_bytes(spec.memory) / _GI if spec.memory else None
    cpu = spec.cpu if spec.cpu is not None else (memory / 2 if memory is not None else 0.5)
    memory = memory if memory is not None else cpu * 2
    if ALLOWED_SIZES.get(round(cpu, 4)) != round(memory, 4):
        pairs = ", ".join(f"{c:g}/{m:g}Gi" for c, m in ALLOWED_SIZES.items())
        raise ConfigError(
            f"Container Apps cannot run cpu={cpu:g} with memory={memory:g}Gi",
            fix=f"use one of the allowed cpu/memory pairs: {pairs}",
        )
    return cpu, f"{memory:g}Gi"


#: Container Apps names (ARM's ContainerAppInvalidName text, quoted in dotnet/docs-aspire#1094
#: and microsoft/TWL300-AI-Apps-and-agents#90): lower-case letters, digits and '-', starting
#: with a letter, ending with a letter or digit, no '--', 2-32 characters
_APP_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


def check_app_name(name: str) -> None:
    """``ConfigError`` unless ``name`` is a valid Container Apps name (checked before any
    call: Azure would refuse it only after the image was built and pushed)."""
    if _APP_NAME.match(name) and "--" not in name:
        return
    shown = name if len(name) <= 64 else name[:61] + "..."
    if len(name) > 32 or len(name) < 2:
        why = f"has {len(name)} characters (2-32 allowed)"
    elif "--" in name:
        why = "contains '--' (Container Apps uses it to name revisions)"
    elif not name[:1].isalpha() or not name[:1].islower():
        why = "must start with a lower-case letter"
    else:
        why = "may hold only lower-case letters, digits and '-', ending with a letter or digit"
    raise ConfigError(
        f"{shown!r} is not a valid Container Apps name: it {why}",
        fix="pass name='my-app' (2-32 lower-case letters, digits and '-', starting with a "
        "letter, no '--')",
    )


def secret_name(variable: str) -> str:
    """Container Apps secret names are lower-case with '-': ``API_KEY`` → ``api-key``."""
    return variable.lower().replace("_", "-").strip("-")


def ship_id() -> str:
    """Who is shipping, for the app's ``cloudship-ship`` tag and ``ConcurrentShipError``:
    ``host:pid:random`` (the random part tells two ships of one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{_random.token_hex(3)}"


def _digest(image: str) -> str:
    return image.partition("@")[2]


_SUFFIX_NUMBER = re.compile(r"--r(\d+)(?:-[a-z0-9]+)?$")


class ContainerAppsRuntime(Runtime):
    kind: ClassVar[str] = "containerapps"
    platforms: ClassVar[frozenset[str]] = frozenset({"linux/amd64"})

    def __init__(self, clients: AzureClients, registry: AcrRegistry) -> None:
        self._clients = clients
        self._settings = clients.settings
        self._registry = registry
        self._identity: PullIdentity | None = None

    # -- validation (no I/O) -------------------------------------------------------------

    def _replicas(self, spec: ServiceSpec) -> tuple[int, int]:
        low = max(spec.replicas, self._settings.min_replicas)
        high = spec.max_replicas or self._settings.max_replicas
        return low, high

    def validate(self, spec: ServiceSpec) -> None:
        """Name, cpu/memory pair, replica range and secret names, before any call to Azure."""
        check_app_name(spec.name)
        if not spec.public and not self._settings.inside_environment:
            # internal ingress: <app>--<suffix>.internal.<domain> answers only inside the
            # environment (container-apps/ingress-overview), so the gate could never pass
            raise ConfigError(
                f"{spec.name} has internal ingress (public=False): its revisions answer only "
                "inside the Container Apps environment, so cloudship cannot health-probe them "
                "from here",
                fix="run cloudship on a machine in the environment's virtual network and set "
                "inside_environment=True (CLOUDSHIP_AZURE_INSIDE_ENVIRONMENT=1), or ship with "
                "public=True",
            )
        container_size(spec)
        low, high = self._replicas(spec)
        if low > high:
            raise ConfigError(
                f"min replicas ({low}) is above max replicas ({high})",
                fix="raise max_replicas or lower replicas/min_replicas",
            )
        names: dict[str, str] = {}
        for variable in spec.secrets:
            name = secret_name(variable)
            if not name or name in names:
                raise ConfigError(
                    f"secrets {names.get(name)!r} and {variable!r} map to the same Container "
                    f"Apps secret name {name!r}",
                    fix="rename one of them",
                )
            names[name] = variable
        both = sorted(set(spec.env) & set(spec.secrets))
        if both:
            raise ConfigError(
                f"{', '.join(both)} is both an env variable and a secret",
                fix="pass each name in env or in secrets, not both",
            )

    # -- reading -------------------------------------------------------------------------

    @property
    def _group(self) -> str:
        return self._settings.resource_group

    def _app(self, service: str) -> ContainerApp | None:
        return self._read(service)[0]

    def _no_apps_possible(self) -> bool:
        """Microsoft.App is not registered: no app can exist, and asking for one would set
        off the SDK's own unbounded registration (registration.py)."""
        return "Microsoft.App" in missing(self._clients)

    def _read(self, service: str) -> tuple[ContainerApp | None, str | None]:
        """The app and the ETag ARM answered with it (None when it sent none)."""
        from azure.core.exceptions import ResourceNotFoundError

        def with_etag(response: Any, model: Any, _headers: Any) -> tuple[Any, str | None]:
            return model, response.http_response.headers.get("ETag")

        with arm_errors(f"reading container app {service}"):
            try:
                # with ``cls`` the generated client returns what ``cls`` returns
                found = self._clients.apps.container_apps.get(self._group, service, cls=with_etag)
                return cast("tuple[ContainerApp, str | None]", found)
            except ResourceNotFoundError:
                return None, None

    @staticmethod
    def _condition(app: ContainerApp | None, etag: str | None) -> dict[str, str]:
        """The precondition of a write based on what was read: create only if still absent,
        change only if unchanged (when ARM gave an ETag)."""
        if app is None:
            return {"If-None-Match": "*"}
        return {"If-Match": etag} if etag else {}

    def _concurrent(self, service: str, mine: str, detail: str) -> ConcurrentShipError:
        """The error for a ship that lost the race: names the ship in the app's tag."""
        try:
            app = self._app(service)
        except CloudshipError:
            app = None
        tag = str((app.tags or {}).get(SHIP_TAG) or "") if app is not None else ""
        holder = f"ship {tag}" if tag and tag != mine else "another client of Azure"
        return ConcurrentShipError(
            f"container app {service} was changed by {holder} while this ship ran "
            f"({detail}); traffic was not switched",
            holder=holder,
            fix=f"let it finish, then ship again (cloudship status {service} --target azure "
            "shows what serves)",
        )

    def _still_ours(self, service: str, mine: str) -> dict[str, str]:
        """The precondition of this ship's next write when the app's ship tag still names
        ``mine``; ``ConcurrentShipError`` when another ship wrote it since."""
        app, etag = self._read(service)
        if app is None or (app.tags or {}).get(SHIP_TAG) != mine:
            raise self._concurrent(service, mine, "its ship tag names another ship")
        return self._condition(app, etag)

    def _revisions(self, service: str) -> list[ArmRevision]:
        with arm_errors(f"listing revisions of {service}"):
            found = list(
                self._clients.apps.container_apps_revisions.list_revisions(self._group, service)
            )
        return sorted(found, key=lambda r: str(r.created_time or ""), reverse=True)

    @staticmethod
    def _number(revision: ArmRevision, revisions: list[ArmRevision]) -> int:
        """``web--r3-1a2b`` → 3; revisions named before cloudship numbered them count by age."""
        match = _SUFFIX_NUMBER.search(str(revision.name))
        if match:
            return int(match[1])
        return len(revisions) - revisions.index(revision)

    def _id(self, revision: ArmRevision | None, revisions: list[ArmRevision]) -> str | None:
        return revision_id(self._number(revision, revisions)) if revision is not None else None

    @staticmethod
    def _serving(revisions: list[ArmRevision]) -> ArmRevision | None:
        weighted = [r for r in revisions if (r.traffic_weight or 0) > 0]
        return max(weighted, key=lambda r: r.traffic_weight or 0) if weighted else None

    @staticmethod
    def _image(revision: ArmRevision) -> str:
        template = revision.template
        containers = template.containers if template and template.containers else []
        return str(containers[0].image) if containers else ""

    @staticmethod
    def _url(app: ContainerApp) -> str | None:
        ingress = app.configuration.ingress if app.configuration else None
        return f"https://{ingress.fqdn}" if ingress and ingress.fqdn else None

    @staticmethod
    def _failed_numbers(app: ContainerApp | None) -> set[int]:
        text = str(((app.tags or {}) if app else {}).get(FAILED_TAG) or "")
        return {int(n) for n in text.split(",") if n.strip().isdigit()}

    def _state(self, revision: ArmRevision, number: int, failed: set[int]) -> str:
        if number in failed or revision.provisioning_state == "Failed":
            return "failed"
        if (revision.traffic_weight or 0) > 0:
            return "serving"
        if revision.running_state == "Failed":
            return "failed"
        return "standby" if revision.active else "stopped"

    # -- plan ----------------------------------------------------------------------------

    def plan(self, spec: ServiceSpec, image: ImageRef) -> Plan:
        self.validate(spec)
        unregistered = missing(self._clients)
        app = None if "Microsoft.App" in unregistered else self._app(spec.name)
        fingerprint = spec.fingerprint(str(image))
        serving = self._serving(self._revisions(spec.name)) if app else None
        current = _digest(self._image(serving)) if serving else None
        if app is not None and (app.tags or {}).get(FINGERPRINT_TAG) == fingerprint and serving:
            return Plan(
                service=spec.name,
                image=str(image),
                changed=False,
                current_digest=current,
                actions=[f"nothing: revision {serving.name} already runs it"],
            )
        actions = [f"register resource provider {n}" for n in unregistered]
        actions += [] if app else [f"create container app {spec.name} in {self._group}"]
        actions.append(f"new revision of {spec.name} with {image}, probed on its own FQDN")
        actions.append("move 100% traffic to it when healthy")
        return Plan(
            service=spec.name,
            image=str(image),
            changed=True,
            current_digest=current,
            actions=actions,
        )

    # -- deploy --------------------------------------------------------------------------

    def deploy(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        pull: RegistryAuth | None,
        *,
        timeout: float,
        on_event: EventSink = ignore,
        force: bool = False,
    ) -> Deployment:
        self.validate(spec)
        deadline = time.monotonic() + timeout
        ensure_registered(  # done once per target; the registry's prepare usually did it
            self._clients,
            register=self._settings.register_providers,
            wait=min(self._settings.provider_wait, timeout),
            on_event=on_event,
        )
        fingerprint = spec.fingerprint(str(image))
        app, etag = self._read(spec.name)
        revisions = self._revisions(spec.name) if app else []
        serving = self._serving(revisions)
        pull_tag = self._pull_tag(image, pull)
        if (
            app is not None
            and serving is not None
            and not force
            and (app.tags or {}).get(FINGERPRINT_TAG) == fingerprint
            and (app.tags or {}).get(PULL_TAG, "") == pull_tag
            and self._image(serving) == str(image)
        ):
            on_event(DeployPhase(phase="unchanged", detail=f"{serving.name} already serves it"))
            return self._deployment(app, serving, revisions, changed=False, previous=None)

        environment = self._ensure_environment(on_event, deadline)
        registries, identity = self._pull_config(image, pull, on_event)
        number = max((self._number(r, revisions) for r in revisions), default=0) + 1
        body = self._body(spec, image, str(environment.id), registries, identity, pull, number)
        if environment.workload_profiles:  # a consumption-only environment has none
            body["properties"]["workloadProfileName"] = CONSUMPTION
        previous_fingerprint = (app.tags or {}).get(FINGERPRINT_TAG, "") if app else ""
        failed = self._failed_numbers(app)
        mine = ship_id()
        body["tags"] = self._tags(previous_fingerprint, spec.health_path, failed)
        body["tags"][SHIP_TAG] = mine
        if pull_tag:
            body["tags"][PULL_TAG] = pull_tag
        if serving is not None:
            body["properties"]["configuration"]["ingress"]["traffic"] = [
                {"revisionName": serving.name, "weight": 100}
            ]
        on_event(DeployPhase(phase="start", detail=f"new revision of {spec.name}"))
        new_name = f"{spec.name}--{body['properties']['template']['revisionSuffix']}"
        operation_error = self._put_revision(
            spec.name, body, deadline, self._condition(app, etag), mine
        )
        fail = self._gate(
            spec.name, spec.health_path, new_name, deadline, on_event, operation_error
        )
        # another ship's write since ours (its promote may even have stopped our revision):
        # its work, not a failed revision of ours to clean up
        condition = self._still_ours(spec.name, mine)
        if fail is not None:
            log_tail = self._fail_revision(spec.name, new_name, number, failed, serving, on_event)
            raise HealthCheckFailed(
                f"revision {new_name} of {spec.name} did not become healthy: {fail}",
                log_tail=log_tail,
                rolled_back_to=self._id(serving, revisions),
                fix="check the app's logs (cloudship logs) and its port and health path",
            )
        body["tags"] = self._tags(fingerprint, spec.health_path, failed)
        body["tags"][SHIP_TAG] = mine
        if pull_tag:
            body["tags"][PULL_TAG] = pull_tag
        body["properties"]["configuration"]["ingress"]["traffic"] = [
            {"revisionName": new_name, "weight": 100}
        ]
        on_event(DeployPhase(phase="promote", detail=f"100% traffic to {new_name}"))
        promoted = self._put(spec.name, body, deadline, condition, mine)
        for revision in self._revisions(spec.name):
            if revision.name != new_name and revision.active:
                self._deactivate(spec.name, str(revision.name))
        revision = self._revision(spec.name, new_name)
        on_event(DeployPhase(phase="done", detail=f"{new_name} serves {self._url(promoted)}"))
        return self._deployment(
            promoted,
            revision,
            self._revisions(spec.name),
            changed=True,
            previous=self._id(serving, revisions),
        )

    def _unlocked(self, call: Callable[[], T], deadline: float | None = None) -> T:
        """``call()``, retried on 409 lock conflicts until ``deadline`` (or ``LOCK_WAIT``)."""
        return when_unlocked(
            call,
            deadline=deadline if deadline is not None else time.monotonic() + LOCK_WAIT,
            interval=self._settings.poll_interval,
        )

    @staticmethod
    def _tags(fingerprint: str, health_path: str, failed: set[int]) -> dict[str, str]:
        tags = {FINGERPRINT_TAG: fingerprint, HEALTH_TAG: health_path}
        if failed:
            # the newest ones that fit a 256-character tag value
            tags[FAILED_TAG] = ",".join(str(n) for n in sorted(failed)[-40:])
        return tags

    def _fail_revision(
        self,
        service: str,
        name: str,
        number: int,
        failed: set[int],
        serving: ArmRevision | None,
        on_event: EventSink,
    ) -> list[str]:
        """The cleanup of a revision that failed its gate: read its log tail (before it stops),
        mark it failed, deactivate it; returns the log tail. Nothing here may hide the
        HealthCheckFailed: a failing cleanup step is reported as a notice."""
        from azure.mgmt.appcontainers.models import ContainerApp

        log_tail = self._log_tail(service, name)
        try:
            app, etag = self._read(service)
            if app is None:
                raise DeployError(f"container app {service} is gone")
            tags = dict(app.tags or {})
            tags[FAILED_TAG] = self._tags("", "", failed | {number})[FAILED_TAG]
            update = ContainerApp(location=app.location, tags=tags)
            with arm_errors(f"marking revision {name} failed"):
                self._unlocked(
                    lambda: self._clients.apps.container_apps.begin_update(
                        self._group, service, update, headers=self._condition(app, etag)
                    )
                ).result()
        except CloudshipError as exc:
            on_event(Notice(message=f"could not mark {name} as failed: {exc}"))
        if serving is None:
            return log_tail  # it holds the app's only traffic entry; nothing else could serve
        try:
            self._deactivate(service, name)
        except CloudshipError as exc:
            on_event(Notice(message=f"could not deactivate {name}: {exc}"))
        on_event(DeployPhase(phase="rollback", detail=f"{serving.name} keeps serving"))
        return log_tail

    def _ensure_environment(self, on_event: EventSink, deadline: float) -> ManagedEnvironment:
        """The managed environment, created (workload profiles, Consumption profile) when
        missing, and provisioned: one still provisioning (ours from an earlier, interrupted
        ship, or anyone's) is waited for within the deadline, since an app PUT into it is
        refused with ManagedEnvironmentNotProvisioned (microsoft/azure-container-apps#1778)."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.mgmt.appcontainers.models import ManagedEnvironment

        name = self._settings.environment
        operations = self._clients.apps.managed_environments
        with arm_errors(f"reading managed environment {name}"):
            try:
                found = operations.get(self._group, name)
            except ResourceNotFoundError:
                found = None
        if found is not None:
            return self._provisioned(found, deadline, on_event)
        self._clients.ensure_resource_group()
        on_event(Notice(message=f"creating Container Apps environment {name}"))
        left = deadline - time.monotonic()
        if left < ENVIRONMENT_CREATION + PULL_GRANT_PROPAGATION:
            # said before the wait, so a ship that then times out has already said why
            on_event(
                Notice(
                    message=f"a new environment and a fresh pull grant take about "
                    f"{(ENVIRONMENT_CREATION + PULL_GRANT_PROPAGATION) / 60:g} minutes on Azure; "
                    f"this ship has {left:.0f}s left (a first deploy may need timeout=900)"
                )
            )
        # A workload-profiles environment with its Consumption profile, the kind Azure creates
        # by default now (learn.microsoft.com/azure/container-apps/workload-profiles-overview;
        # consumption-only environments are the older kind). No appLogsConfiguration: no Log
        # Analytics workspace is needed, and the log stream (what `logs` reads) works without
        # one (container-apps/log-options.md).
        body = {
            "location": self._settings.location,
            "tags": {"managed-by": "cloudship"},
            "properties": {
                "workloadProfiles": [{"name": CONSUMPTION, "workloadProfileType": CONSUMPTION}]
            },
        }
        with arm_errors(f"creating managed environment {name}"):
            envelope = ManagedEnvironment.from_dict(body)
            poller = self._unlocked(
                lambda: operations.begin_create_or_update(self._group, name, envelope), deadline
            )
            created: ManagedEnvironment = poller.result(
                timeout=max(1.0, deadline - time.monotonic())
            )
            if not poller.done():
                raise CloudshipTimeout(
                    f"Container Apps environment {name} was still provisioning at the deadline",
                    fix="ship again later with a longer timeout: environments take minutes",
                )
        return created

    def _provisioned(
        self, environment: ManagedEnvironment, deadline: float, on_event: EventSink
    ) -> ManagedEnvironment:
        name = str(environment.name)
        told = False
        while True:
            state = str(environment.provisioning_state or "Succeeded")
            if state == "Succeeded":
                return environment
            if state in ("Failed", "Canceled", "UpgradeFailed", "ScheduledForDelete"):
                raise DeployError(
                    f"Container Apps environment {name} is {state}",
                    fix="choose another environment (environment=...) or delete and re-create "
                    "this one",
                )
            if time.monotonic() >= deadline:
                raise CloudshipTimeout(
                    f"Container Apps environment {name} was still {state} at the deadline",
                    fix="ship again later with a longer timeout: environments take minutes",
                )
            if not told:
                on_event(Notice(message=f"waiting for environment {name} ({state})"))
                told = True
            time.sleep(self._settings.poll_interval)
            with arm_errors(f"reading managed environment {name}"):
                environment = self._clients.apps.managed_environments.get(self._group, name)

    def _pull_tag(self, image: ImageRef, pull: RegistryAuth | None) -> str:
        """The fingerprint of the password secret ``_pull_config`` would store, or ""."""
        if pull is None or str(image.registry).lower() == self._registry.address.lower():
            return ""
        return pull.fingerprint()

    def _pull_config(
        self, image: ImageRef, pull: RegistryAuth | None, on_event: EventSink
    ) -> tuple[list[dict[str, Any]], str | None]:
        """``configuration.registries`` and the identity to attach: the pull identity for this
        target's ACR; a password secret only for a foreign registry that needs one."""
        server = str(image.registry)
        if server.lower() == self._registry.address.lower():
            self._identity = ensure_pull_identity(
                self._clients,
                self._registry.resource_id,
                abac=self._registry.abac,
                on_event=on_event,
            )
            identity = self._identity.id
            return [{"server": server, "identity": identity}], identity
        if pull is not None:
            return [
                {
                    "server": server,
                    "username": pull.username,
                    "passwordSecretRef": "registry-password",
                }
            ], None
        return [], None

    def _body(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        environment_id: str,
        registries: list[dict[str, Any]],
        identity: str | None,
        pull: RegistryAuth | None,
        number: int,
    ) -> dict[str, Any]:
        cpu, memory = container_size(spec)
        low, high = self._replicas(spec)
        secrets = [
            {"name": secret_name(k), "value": v.get_secret_value()}
            for k, v in sorted(spec.secrets.items())
        ]
        if registries and "passwordSecretRef" in registries[0] and pull is not None:
            secrets.append({"name": "registry-password", "value": pull.password.get_secret_value()})
        env = [{"name": k, "value": v} for k, v in sorted(spec.env.items())]
        env += [{"name": k, "secretRef": secret_name(k)} for k in sorted(spec.secrets)]
        body: dict[str, Any] = {
            "location": self._settings.location,
            "properties": {
                "environmentId": environment_id,
                "configuration": {
                    "activeRevisionsMode": "Multiple",
                    "ingress": {
                        "external": spec.public,
                        "targetPort": spec.port,
                        "transport": "auto",
                        "traffic": [{"latestRevision": True, "weight": 100}],
                    },
                    "secrets": secrets,
                    "registries": registries,
                },
                "template": {
                    # r<N> is the core's revision id; the random tail keeps the name unique if an
                    # app is deleted and re-created while Azure still knows the old revision.
                    "revisionSuffix": f"r{number}-{_random.token_hex(2)}",
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": str(image),
                            "resources": {"cpu": cpu, "memory": memory},
                            "env": env,
                        }
                    ],
                    "scale": {"minReplicas": low, "maxReplicas": high},
                },
            },
        }
        if identity:
            body["identity"] = {"type": "UserAssigned", "userAssignedIdentities": {identity: {}}}
        return body

    def _put(
        self,
        service: str,
        body: dict[str, Any],
        deadline: float,
        condition: dict[str, str],
        mine: str,
    ) -> ContainerApp:
        """PUT the app if ``condition`` (``_condition``) still holds, else
        ``ConcurrentShipError``."""
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.appcontainers.models import ContainerApp

        with arm_errors(f"updating container app {service}"):
            envelope = ContainerApp.from_dict(body)
            try:
                poller = self._unlocked(
                    lambda: self._clients.apps.container_apps.begin_create_or_update(
                        self._group, service, envelope, headers=dict(condition)
                    ),
                    deadline,
                )
            except HttpResponseError as exc:
                if exc.status_code == 412:
                    raise self._concurrent(
                        service, mine, "ARM answered 412 PreconditionFailed"
                    ) from exc
                raise
            result: ContainerApp = poller.result(timeout=max(1.0, deadline - time.monotonic()))
            if not poller.done():
                raise CloudshipTimeout(f"container app {service} did not finish provisioning")
            return result

    def _put_revision(
        self,
        service: str,
        body: dict[str, Any],
        deadline: float,
        condition: dict[str, str],
        mine: str,
    ) -> str | None:
        """PUT a new revision; None when the operation succeeded, else why it did not (a failed
        or expired operation is a failed revision, not an error: the gate reads its state)."""
        from azure.core.exceptions import HttpResponseError

        try:
            self._put(service, body, deadline, condition, mine)
        except CloudshipTimeout:
            return "the revision did not finish provisioning before the deadline"
        except DeployError as exc:
            cause = exc.__cause__
            if isinstance(cause, HttpResponseError) and arm_code(cause) in (
                "ContainerAppOperationError",
                "OperationExpired",
            ):
                return str(getattr(cause.error, "message", "") or cause.message)
            raise
        return None

    def _revision(self, service: str, name: str) -> ArmRevision:
        from azure.core.exceptions import ResourceNotFoundError

        with arm_errors(f"reading revision {name}"):
            try:
                return self._clients.apps.container_apps_revisions.get_revision(
                    self._group, service, name
                )
            except ResourceNotFoundError as exc:
                raise RevisionNotFoundError(
                    f"service {service!r} has no revision {name!r}",
                    fix=f"list them with: cloudship status {service} --target azure",
                ) from exc

    def _deactivate(self, service: str, name: str) -> None:
        with arm_errors(f"deactivating revision {name}"):
            self._unlocked(
                lambda: self._clients.apps.container_apps_revisions.deactivate_revision(
                    self._group, service, name
                )
            )

    @staticmethod
    def _failure(revision: ArmRevision) -> str | None:
        """Why ``revision`` will not come up by itself, or None while it may.

        Terminal: provisioning ``Failed``/``Deprovisioning``/``Deprovisioned``, running
        ``Failed``/``Degraded``, and ``Stopped`` for an inactive revision; a state newer than
        the spec we read that says it failed (``…Failed``) counts too."""
        provisioning = str(revision.provisioning_state or "")
        running = str(revision.running_state or "")
        # "Stopped" right after an activation can be stale; stopped and inactive is final
        stopped = running == "Stopped" and revision.active is False
        if (
            provisioning in TERMINAL_PROVISIONING_STATES
            or (running in TERMINAL_RUNNING_STATES and running != "Stopped")
            or stopped
            or running.endswith("Failed")
        ):
            state = f"provisioning {provisioning}, running {running}"
            detail = f": {revision.provisioning_error}" if revision.provisioning_error else ""
            return f"revision is {state}{detail}"
        return None

    def _pull_may_recover(self, failure: str) -> bool:
        """A managed-identity pull refused while its AcrPull grant may still be propagating."""
        return (
            IDENTITY_PULL_REFUSED in failure.lower()
            and self._identity is not None
            and self._identity.propagating()
        )

    def _gate(
        self,
        service: str,
        health_path: str,
        name: str,
        deadline: float,
        on_event: EventSink,
        operation_error: str | None = None,
    ) -> str | None:
        """None when revision ``name`` is provisioned, running and answers ``health_path`` on
        its own FQDN; else why not."""
        interval = min(1.0, self._settings.poll_interval)
        backoff = self._settings.poll_interval
        on_event(DeployPhase(phase="provision", detail=name))
        while True:
            revision = self._revision(service, name)
            failed = self._failure(revision)
            if failed:
                failed = operation_error or failed
                wait = min(backoff, 30.0)
                if self._pull_may_recover(failed) and time.monotonic() + wait < deadline:
                    on_event(
                        Notice(
                            message="the pull identity's AcrPull role is not in effect yet "
                            f"(role assignments take minutes to propagate); pulling again "
                            f"in {wait:g}s"
                        )
                    )
                    time.sleep(wait)
                    backoff *= 2
                    operation_error = None
                    with arm_errors(f"restarting revision {name}"):
                        self._unlocked(
                            lambda: self._clients.apps.container_apps_revisions.restart_revision(
                                self._group, service, name
                            ),
                            deadline,
                        )
                    continue
                return failed
            if revision.provisioning_state == "Provisioned" and revision.running_state in (
                "Running",
                "RunningAtMaxScale",
            ):
                break
            if time.monotonic() >= deadline:
                state = f"still {revision.provisioning_state}/{revision.running_state} at timeout"
                return f"{operation_error} ({state})" if operation_error else state
            time.sleep(interval)
        url = self._settings.probe_url.format(fqdn=revision.fqdn, path=health_path)
        on_event(DeployPhase(phase="probe", detail=url))

        def check_alive() -> str | None:
            return self._failure(self._revision(service, name))

        result = wait_healthy(
            url, timeout=max(1.0, deadline - time.monotonic()), check_alive=check_alive
        )
        return None if result.healthy else result.reason

    def _deployment(
        self,
        app: ContainerApp,
        revision: ArmRevision,
        revisions: list[ArmRevision],
        *,
        changed: bool,
        previous: str | None,
    ) -> Deployment:
        image = self._image(revision)
        known = revisions if any(r.name == revision.name for r in revisions) else [revision]
        return Deployment(
            service=str(app.name),
            revision=revision_id(self._number(revision, known)),
            image=image,
            digest=_digest(image),
            url=self._url(app),
            changed=changed,
            previous=previous,
        )

    # -- status / rollback / logs / destroy ------------------------------------------------

    def status(self, service: str) -> ServiceStatus | None:
        app = None if self._no_apps_possible() else self._app(service)
        if app is None:
            return None
        found = self._revisions(service)
        failed = self._failed_numbers(app)
        revisions = [
            Revision(
                number=self._number(r, found),
                native_id=str(r.name),
                image=self._image(r),
                digest=_digest(self._image(r)),
                state=self._state(r, self._number(r, found), failed),  # type: ignore[arg-type]
                created=r.created_time,
                url=f"https://{r.fqdn}" if r.fqdn else None,
            )
            for r in found
        ]
        current = next((r for r in revisions if r.state == "serving"), None)
        return ServiceStatus(
            service=service, url=self._url(app), current=current, revisions=revisions
        )

    def rollback(
        self, service: str, to: str | None = None, *, timeout: float, on_event: EventSink = ignore
    ) -> Deployment:
        deadline = time.monotonic() + timeout
        app = self._app(service)
        if app is None:
            raise ServiceNotFoundError(
                f"service {service!r} is not deployed to Container Apps in {self._group}",
                fix="check the name and the resource_group setting",
            )
        revisions = self._revisions(service)
        serving = self._serving(revisions)
        listed = self.status(service)
        assert listed is not None, "the app exists"
        picked = choose_rollback(service, listed.revisions, to)
        chosen = next(r for r in revisions if r.name == picked.native_id)
        name = str(chosen.name)
        on_event(DeployPhase(phase="rollback", detail=name))
        if not chosen.active:
            with arm_errors(f"activating revision {name}"):
                self._unlocked(
                    lambda: self._clients.apps.container_apps_revisions.activate_revision(
                        self._group, service, name
                    ),
                    deadline,
                )
        fail = self._gate(service, self._health_path(app), name, deadline, on_event)
        if fail is not None:
            raise HealthCheckFailed(
                f"revision {name} did not become healthy again: {fail}",
                log_tail=self._log_tail(service, name),
                rolled_back_to=self._id(serving, revisions),
            )
        mine = ship_id()
        current, now_etag = self._read(service)
        if current is None or (current.tags or {}).get(SHIP_TAG) != (app.tags or {}).get(SHIP_TAG):
            raise self._concurrent(service, mine, "a ship wrote it during the rollback")
        body = self._current_body(service, current)
        body["tags"] = {
            **(current.tags or {}),
            FINGERPRINT_TAG: f"rollback-{name}",
            SHIP_TAG: mine,
        }
        body["properties"]["configuration"]["ingress"]["traffic"] = [
            {"revisionName": name, "weight": 100}
        ]
        updated = self._put(service, body, deadline, self._condition(current, now_etag), mine)
        if serving is not None and serving.name != name:
            self._deactivate(service, str(serving.name))
        return self._deployment(
            updated,
            self._revision(service, name),
            revisions,
            changed=serving is None or serving.name != name,
            previous=self._id(serving, revisions),
        )

    def _health_path(self, app: ContainerApp) -> str:
        return str((app.tags or {}).get(HEALTH_TAG) or "/")

    def _current_body(self, service: str, app: ContainerApp) -> dict[str, Any]:
        """The app as a PUT body with its secret values (``listSecrets``), so a traffic-only
        update keeps the template (no new revision) and the secrets."""
        body: dict[str, Any] = dict(app.serialize(keep_readonly=False))
        with arm_errors(f"reading secrets of {service}"):
            values = self._clients.apps.container_apps.list_secrets(self._group, service)
        body["properties"]["configuration"]["secrets"] = [
            {"name": s.name, "value": s.value} for s in values.value or []
        ]
        return body

    def _log_tail(self, service: str, revision: str, tail: int = 50) -> list[str]:
        """Best effort: in a failure path no error of the log fetch (an AuthError from the
        token call included) may replace the failure being reported."""
        try:
            return self.logs_of(service, revision, tail)
        except CloudshipError:
            return []

    def logs(self, service: str, tail: int = 100) -> list[str]:
        status = self.status(service)
        if status is None or status.current is None:
            raise ServiceNotFoundError(f"service {service!r} has no serving revision")
        return self.logs_of(service, str(status.current.native_id), tail)

    def logs_of(self, service: str, revision: str, tail: int = 100) -> list[str]:
        """Last ``tail`` lines of ``revision`` from the Container Apps log stream."""
        return read_log_tail(self._clients, service, revision, CONTAINER, tail)

    def services(self) -> list[str]:
        """Container apps in the resource group that carry cloudship's fingerprint tag (every
        app cloudship creates has it from its first PUT on); apps made by other tools are
        not listed."""
        from azure.core.exceptions import ResourceNotFoundError

        if self._no_apps_possible():
            return []
        with arm_errors(f"listing container apps in {self._group}"):
            try:
                found = list(self._clients.apps.container_apps.list_by_resource_group(self._group))
            except ResourceNotFoundError:  # no resource group yet: nothing shipped here
                return []
        return sorted(str(a.name) for a in found if FINGERPRINT_TAG in (a.tags or {}))

    def destroy(self, service: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with arm_errors(f"deleting container app {service}"):
            try:
                self._unlocked(
                    lambda: self._clients.apps.container_apps.begin_delete(self._group, service)
                ).result()
            except ResourceNotFoundError:
                return


__all__ = [
    "ALLOWED_SIZES",
    "ContainerAppsRuntime",
    "check_app_name",
    "container_size",
    "secret_name",
]
