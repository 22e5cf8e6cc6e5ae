"""The ARM fake's request handling: routing, auth, api-versions, async operations, state.

Pure logic, no sockets: ``FakeArm.handle(request) -> Response``; ``server.py`` serves it over
HTTPS. State is a dict of resources keyed by lower-cased resource id, guarded by one lock.

Shapes follow real ARM (see the package docstring for what they were compared with):

- errors: ``{"error": {"code": ..., "message": ...}}``; 404 ``ResourceNotFound`` /
  ``ResourceGroupNotFound`` / ``SubscriptionNotFound``; 400 ``InvalidRequestContent``-style
  codes for bad bodies; 400 ``NoRegisteredProviderFound`` for an unknown api-version;
  401 ``InvalidAuthenticationToken`` for a bearer token the fake was not told to accept.
- long-running PUT/PATCH/DELETE: ``201``/``202`` with ``Azure-AsyncOperation`` (and
  ``Location`` on 202); the operation answers ``InProgress`` on the first poll(s) and
  ``Succeeded`` after, and only then does the resource's ``provisioningState`` turn terminal.
- a container app PUT that creates a revision is not done until that revision runs: it ends
  ``Failed`` with ``ContainerAppOperationError`` "Failed to provision revision for container app
  '<app>'. Error details: …" when the revision fails (the body Azure answers, quoted in
  microsoft/azure-container-apps#1061), and with "… Error details: Operation expired." when the
  revision is still provisioning after ``operation_timeout`` (microsoft/azure-container-apps#646:
  an image that cannot be pulled keeps the deployment running until it times out). Failed
  operation bodies follow learn.microsoft.com/azure/azure-resource-manager/management/
  async-operations (``status: Failed`` + ``error{code, message}``).
- role assignments take ``role_propagation`` seconds to take effect ("it can take up to 10
  minutes for changes to take effect", learn.microsoft.com/azure/role-based-access-control/
  troubleshooting#symptom---role-assignment-changes-are-not-being-detected): a pull with an
  identity granted AcrPull a moment ago is refused, as in microsoft/azure-container-apps#646.
- a resource with an operation in progress refuses changes: 409 ``ContainerAppLockConflict``
  "Cannot modify container App '<app>' because another modification is in progress. Please
  retry the operation." (microsoft/azure-container-apps#175) and 409
  ``ManagedEnvironmentOperationInProgress`` "Cannot modify Container Apps environment <env>
  because another operation is in progress." (microsoft/azure-container-apps#701).
- a new environment provisions for ``environment_provisioning`` seconds (Azure: minutes, and
  sometimes far longer, microsoft/azure-container-apps#433); an app PUT into an environment
  that is not ``Succeeded`` is 400 ``ManagedEnvironmentNotProvisioned`` "The environment '<id>'
  has not been provisioned successfully." (microsoft/azure-container-apps#1778, #868).
- optimistic concurrency: every tracked resource has an ETag (a response header on GET, PUT
  and PATCH) that changes on each write; a PUT/PATCH/DELETE whose ``If-Match`` names another
  ETag, a PUT with ``If-Match`` of a resource that does not exist, and a PUT with
  ``If-None-Match: *`` of one that does are refused with 412 ``PreconditionFailed`` and change
  nothing — the table in "ETags for Resources", Azure/azure-resource-manager-rpc
  v1.0/Addendum.md (commit 4fdacf348d15c1cf120c1e308445161cccdec685). The Microsoft.App
  2025-07-01 spec documents neither an ``If-Match`` parameter nor an ``etag`` property for
  ContainerApps_CreateOrUpdate/Update (Azure/azure-rest-api-specs specification/app/
  resource-manager/Microsoft.App/ContainerApps/stable/2025-07-01/ContainerApps.json, commit
  b2f7419737799f321a271e9327d0b18417eed538), and the RPC says RPs *may* honour ETags: so
  ``etags=False`` plays an RP that ignores them (the adapter must stay safe then too). The
  412 code and message were not compared with a recording (none public found).
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudship_azure.fake import resources
from cloudship_azure.fake.containerapps import AppBook, RevisionRunner
from cloudship_azure.fake.messages import Request, Response
from cloudship_azure.fake.resources import ArmError

#: api-versions each provider namespace accepts (the pinned SDKs' defaults, plus the ones
#: the REST examples and recordings we compared with were taken at)
API_VERSIONS: dict[str, frozenset[str]] = {
    # 2016-02-01: what azure-mgmt-core's auto-registration policy asks providers with
    "microsoft.resources": frozenset(
        {"2025-04-01", "2024-11-01", "2022-09-01", "2021-04-01", "2016-02-01"}
    ),
    "microsoft.containerregistry": frozenset({"2025-11-01", "2025-04-01", "2023-07-01"}),
    "microsoft.app": frozenset({"2025-07-01", "2025-01-01", "2024-03-01"}),
    "microsoft.managedidentity": frozenset({"2024-11-30", "2023-01-31"}),
    "microsoft.authorization": frozenset({"2022-04-01"}),
}

_LRO_TYPES = {
    "microsoft.containerregistry/registries",
    "microsoft.app/managedenvironments",
    "microsoft.app/containerapps",
}

_RG = re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)$", re.I)
_RESOURCE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"(?P<ns>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+)(?P<rest>/.*)?$",
    re.I,
)
_RESOURCE_LIST = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"(?P<ns>[^/]+)/(?P<type>[^/]+)$",
    re.I,
)
_ROLE = re.compile(
    r"^(?P<scope>/.+?)/providers/microsoft\.authorization/roleassignments(?:/(?P<name>[^/]+))?$",
    re.I,
)
_LOG_STREAM = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/containerapps/(?P<app>[^/]+)"
    r"/revisions/(?P<rev>[^/]+)/replicas/[^/]+/containers/[^/]+/logstream$",
    re.I,
)
_SUBSCRIPTION_ACR = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.containerregistry/"
    r"(?P<what>registries|checknameavailability)$",
    re.I,
)
_PROVIDER = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/(?P<ns>[^/]+)(?P<register>/register)?$", re.I
)
_OPERATION = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/providers/(?P<ns>[^/]+)/locations/[^/]+/"
    r"operationstatuses/(?P<id>[^/]+)$",
    re.I,
)


#: How long Azure takes, in seconds, for the waits a first deploy meets. The fake plays each
#: one ``time_scale`` times as long (FakeArm), so a test keeps Azure's proportions between
#: them and can scale its own deadlines the same way (docs/testing.md, "Azure-sized waits").
AZURE_DURATIONS: dict[str, float] = {
    # "it can take up to 10 minutes for changes to take effect" (learn.microsoft.com/azure/
    # role-based-access-control/troubleshooting); 1-5 minutes in practice for AcrPull on
    # Container Apps (microsoft/azure-container-apps#646, #836)
    "role_propagation": 300.0,
    # a managed environment provisions for minutes, sometimes far longer
    # (microsoft/azure-container-apps#433); 5 minutes is a typical first creation
    "environment_provisioning": 300.0,
    # "registration can take a few minutes" (learn.microsoft.com/azure/azure-resource-manager/
    # management/resource-providers-and-types)
    "provider_registration": 120.0,
}
#: the default ``time_scale``: Azure's 5-minute role propagation becomes 1 s
DEFAULT_TIME_SCALE = 1 / 300

#: an operation's end: ``("Succeeded", None)`` or ``("Failed", {"code", "message"})``
Outcome = tuple[str, dict[str, str] | None]


@dataclass
class _Operation:
    id: str
    namespace: str
    polls_left: int
    on_done: Callable[[str], None]
    #: None while the work goes on (e.g. a revision still provisioning); default: success
    outcome: Callable[[], Outcome | None] | None = None
    expires: float = float("inf")
    expired: dict[str, str] | None = None
    #: the work takes at least this long, polled or not (an environment: minutes in Azure)
    ready_at: float = 0.0
    status: str = "InProgress"
    error: dict[str, str] | None = None

    def settle(self, *, unpolled: bool = False) -> None:
        """Move to a terminal status once the polls are used up (or, ``unpolled``, once its
        time has passed: Azure's operations go on whether anyone polls) and the work is done."""
        if self.status != "InProgress" or time.monotonic() < self.ready_at:
            return
        if self.polls_left > 0 and not unpolled:
            return
        result = self.outcome() if self.outcome is not None else ("Succeeded", None)
        if result is None and time.monotonic() >= self.expires:
            result = ("Failed", self.expired or {"code": "OperationExpired", "message": ""})
        if result is not None:
            self.status, self.error = result
            self.on_done(self.status)


class FakeArm:
    """Stateful Azure Resource Manager for the resource types cloudship uses.

    ``tokens``: bearer tokens accepted (from any ``TokenCredential`` the test uses).
    ``login_servers``: registry name → login server to report instead of
    ``<name>.azurecr.io`` (so an "ACR" can be a local token registry).
    ``runner``: optional; runs each active revision's image so it can really answer.
    ``polls``: how many status polls an async operation answers ``InProgress``.
    ``time_scale``: the fake's waits are ``AZURE_DURATIONS`` times this (default 1/300: a
    5-minute wait is 1 s); ``role_propagation``, ``environment_provisioning`` and
    ``provider_registration`` set one wait in seconds instead.
    ``role_propagation``: seconds before a new role assignment takes effect (Azure: minutes).
    ``operation_timeout``: seconds a container app operation waits for its new revision to
    provision before it fails with "Operation expired" (Azure's own is several minutes).
    ``environment_provisioning``: seconds a new managed environment takes to provision.
    ``provider_registration``: seconds a ``POST …/providers/<ns>/register`` takes to finish.
    ``etags``: refuse writes whose ``If-Match``/``If-None-Match`` does not hold (412).
    """

    def __init__(
        self,
        *,
        subscription: str = "00000000-0000-0000-0000-000000000001",
        tenant: str = "00000000-0000-0000-0000-0000000000aa",
        tokens: set[str] | frozenset[str] = frozenset({"fake-arm-token"}),
        login_servers: dict[str, str] | None = None,
        runner: RevisionRunner | None = None,
        polls: int = 1,
        poll_ms: int = 20,
        base_url: str = "https://127.0.0.1",
        time_scale: float = DEFAULT_TIME_SCALE,
        role_propagation: float | None = None,
        operation_timeout: float = 600.0,
        environment_provisioning: float | None = None,
        provider_registration: float | None = None,
        etags: bool = True,
    ) -> None:
        self.subscriptions = {subscription}
        self.tenant = tenant
        self.tokens = set(tokens)
        self.login_servers = dict(login_servers or {})
        self.polls = polls
        self.poll_ms = poll_ms
        self.base_url = base_url
        self.time_scale = time_scale

        def scaled(given: float | None, wait: str) -> float:
            return given if given is not None else AZURE_DURATIONS[wait] * time_scale

        self.role_propagation = scaled(role_propagation, "role_propagation")
        self.operation_timeout = operation_timeout
        self.environment_provisioning = scaled(environment_provisioning, "environment_provisioning")
        #: honour If-Match / If-None-Match (False: an RP that ignores them, see the docstring)
        self.etags = etags
        #: lower-cased resource id → its current ETag (a quoted string, new on every write)
        self.etag_of: dict[str, str] = {}
        #: provider namespaces (lower-cased) the subscription has not registered
        self.unregistered_providers: set[str] = set()
        #: seconds a provider registration takes once asked for (Azure: minutes)
        self.provider_registration = scaled(provider_registration, "provider_registration")
        #: lower-cased namespace → time.monotonic() its registration completes
        self.registering: dict[str, float] = {}
        #: the caller may not register providers (no ``<namespace>/register/action``)
        self.deny_provider_registration = False
        #: the caller may not write role assignments (no User Access Administrator / Owner)
        self.deny_role_assignments = False
        #: registry names other tenants hold (ACR names are global)
        self.taken_registry_names: set[str] = set()
        #: lower-cased resource id → the operation changing it (409 while it runs)
        self._busy: dict[str, _Operation] = {}
        #: lower-cased role assignment id → time.monotonic() it was created
        self.role_times: dict[str, float] = {}
        self.lock = threading.RLock()
        #: lower-cased resource id → the resource as ARM returns it
        self.resources: dict[str, dict[str, Any]] = {}
        #: every request handled: (method, path, status)
        self.log: list[tuple[str, str, int]] = []
        #: the JSON body of every write: (method, path, body) — for tests that check what a
        #: client sends (secret values included: this stays in the test's memory)
        self.bodies: list[tuple[str, str, Any]] = []
        self.apps = AppBook(self, runner)
        self._operations: dict[str, _Operation] = {}
        #: provider namespace (lower-cased) → the handler of its resources, for fakes of other
        #: services built on this one (the AKS fake in ``cloudship_kubernetes.fake.aks``); it
        #: is called with the lock not held, after authentication and the subscription check
        self.extensions: dict[str, Callable[[Request, re.Match[str]], Response]] = {}

    def set_time_scale(self, scale: float) -> None:
        """Play every Azure-sized wait (``AZURE_DURATIONS``) ``scale`` times as long."""
        self.time_scale = scale
        self.role_propagation = AZURE_DURATIONS["role_propagation"] * scale
        self.environment_provisioning = AZURE_DURATIONS["environment_provisioning"] * scale
        self.provider_registration = AZURE_DURATIONS["provider_registration"] * scale

    # -- inspection helpers for tests ----------------------------------------------------

    def ids(self, kind: str | None = None) -> list[str]:
        """Resource ids held, optionally only of ``kind`` (e.g. ``Microsoft.App/containerApps``)."""
        with self.lock:
            found = [r["id"] for r in self.resources.values()]
        if kind is None:
            return sorted(found)
        return sorted(i for i in found if f"/providers/{kind.lower()}/" in i.lower())

    def get(self, resource_id: str) -> dict[str, Any] | None:
        with self.lock:
            found = self.resources.get(resource_id.lower())
            return json.loads(json.dumps(found)) if found is not None else None

    def close(self) -> None:
        self.apps.close()

    # -- request handling ----------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.method in ("PUT", "PATCH", "POST") and request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = None
            with self.lock:
                self.bodies.append((request.method, request.path, body))
        try:
            response = self._dispatch(request)
        except ArmError as exc:
            response = Response(exc.status, exc.body())
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        with self.lock:
            self.log.append((request.method, request.path, response.status))
        return response

    def _dispatch(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if (match := _LOG_STREAM.match(path)) and request.method == "GET":
            # the event stream host has its own bearer (from getAuthtoken), not an ARM token
            with self.lock:
                return self.apps.log_stream(request, match.groupdict())
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            raise ArmError(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid or was not issued for this fake ARM.",
            )
        if match := _PROVIDER.match(path):
            self._api_version(request, "microsoft.resources")
            self._subscription(match["sub"])
            return self._provider(request, match["sub"], match["ns"], bool(match["register"]))
        self._registered(path)
        if match := _OPERATION.match(path):
            self._api_version(request, match["ns"])
            return self._operation_status(match["id"])
        if match := _SUBSCRIPTION_ACR.match(path):
            self._api_version(request, "microsoft.containerregistry")
            self._subscription(match["sub"])
            return self._registries_of_subscription(request, match["what"].lower())
        if match := _ROLE.match(path):
            self._api_version(request, "microsoft.authorization")
            self._subscription(match["scope"].split("/")[2] if "/" in match["scope"] else "")
            return self._roles(request, match["scope"], match["name"])
        if match := _RG.match(path):
            self._api_version(request, "microsoft.resources")
            self._subscription(match["sub"])
            return self._resource_group(request, match["sub"], match["rg"])
        if (match := _RESOURCE_LIST.match(path)) and request.method == "GET":
            self._api_version(request, match["ns"])
            self._subscription(match["sub"])
            return self._list_in_group(match)
        if match := _RESOURCE.match(path):
            extension = self.extensions.get(match["ns"].lower())
            if extension is not None:  # it checks its own api-versions
                self._subscription(match["sub"])
                return extension(request, match)
            self._api_version(request, match["ns"])
            self._subscription(match["sub"])
            return self._resource(request, match)
        raise ArmError(
            404, "InvalidResourceType", f"The fake ARM does not serve {request.method} {path}."
        )

    def _registered(self, path: str) -> None:
        """A subscription must register a resource provider before using it; Azure answers
        409 MissingSubscriptionRegistration otherwise (learn.microsoft.com/azure/
        azure-resource-manager/troubleshooting/error-register-resource-provider)."""
        match = re.search(r"/providers/(Microsoft\.[A-Za-z]+)/", path + "/", re.I)
        if match and self.provider_state(match[1]) != "Registered":
            raise ArmError(
                409,
                "MissingSubscriptionRegistration",
                f"The subscription is not registered to use namespace '{match[1]}'. See "
                "https://aka.ms/rps-not-found for how to register subscriptions.",
            )

    def provider_state(self, namespace: str) -> str:
        """``Registered``, ``Registering`` (for ``provider_registration`` seconds after the
        register call) or ``NotRegistered``; the states of Providers_Get (resources.json)."""
        key = namespace.lower()
        with self.lock:
            if key not in self.unregistered_providers:
                return "Registered"
            done = self.registering.get(key)
            if done is None:
                return "NotRegistered"
            if time.monotonic() < done:
                return "Registering"
            self.unregistered_providers.discard(key)
            del self.registering[key]
            return "Registered"

    def _provider(self, request: Request, sub: str, namespace: str, register: bool) -> Response:
        """``GET /subscriptions/<id>/providers/<ns>`` (Providers_Get) and ``POST …/register``
        (Providers_Register): registration "can take a few minutes" and the namespace stays
        ``Registering`` meanwhile (learn.microsoft.com/azure/azure-resource-manager/management/
        resource-providers-and-types; troubleshooting/error-register-resource-provider)."""
        if register and request.method == "POST":
            if self.deny_provider_registration:
                # the 403 of a principal without the register action (same shape as roles)
                raise ArmError(
                    403,
                    "AuthorizationFailed",
                    "The client 'fake-arm-user' with object id "
                    "'00000000-0000-0000-0000-0000000000ff' does not have authorization to "
                    f"perform action '{namespace}/register/action' over scope "
                    f"'/subscriptions/{sub}' or the scope is invalid.",
                )
            with self.lock:
                if self.provider_state(namespace) == "NotRegistered":
                    self.registering[namespace.lower()] = (
                        time.monotonic() + self.provider_registration
                    )
        elif register or request.method != "GET":
            raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported here.")
        return Response(
            200,
            {
                "id": f"/subscriptions/{sub}/providers/{namespace}",
                "namespace": namespace,
                "registrationState": self.provider_state(namespace),
                "registrationPolicy": "RegistrationRequired",
                "resourceTypes": [],
            },
        )

    def _api_version(self, request: Request, namespace: str) -> None:
        version = request.query.get("api-version")
        if not version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if version not in API_VERSIONS.get(namespace.lower(), frozenset()):
            known = ", ".join(sorted(API_VERSIONS.get(namespace.lower(), frozenset())))
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for API version '{version}' of "
                f"namespace '{namespace}'. The supported api-versions are '{known}'.",
            )

    def _subscription(self, subscription: str) -> None:
        if subscription not in self.subscriptions:
            raise ArmError(
                404,
                "SubscriptionNotFound",
                f"The subscription '{subscription}' could not be found.",
            )

    # -- resource groups -----------------------------------------------------------------

    def _resource_group(self, request: Request, sub: str, rg: str) -> Response:
        rid = f"/subscriptions/{sub}/resourceGroups/{rg}"
        with self.lock:
            existing = self.resources.get(rid.lower())
            if request.method in ("GET", "HEAD"):
                if existing is None:
                    raise ArmError(
                        404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
                    )
                return Response(200 if request.method == "GET" else 204, existing)
            if request.method == "PUT":
                body = request.json() or {}
                resources.require(body, "location")
                group = {
                    "id": rid,
                    "name": rg,
                    "type": "Microsoft.Resources/resourceGroups",
                    "location": body["location"],
                    "tags": body.get("tags", {}),
                    "properties": {"provisioningState": "Succeeded"},
                }
                self.resources[rid.lower()] = group
                return Response(200 if existing else 201, group)
            if request.method == "DELETE":
                if existing is None:
                    return Response(204)
                for key in [k for k in self.resources if k.startswith(rid.lower() + "/")]:
                    self._forget(key)
                del self.resources[rid.lower()]
                return Response(200)
        raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported here.")

    def require_group(self, sub: str, rg: str) -> None:
        if f"/subscriptions/{sub}/resourcegroups/{rg}".lower() not in self.resources:
            raise ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
            )

    # -- tracked resources ---------------------------------------------------------------

    def _resource(self, request: Request, match: re.Match[str]) -> Response:
        kind = f"{match['ns']}/{match['type']}".lower()
        rest = match["rest"] or ""
        rid = resources.resource_id(match["sub"], match["rg"], kind, match["name"])
        if request.method in ("PUT", "PATCH", "DELETE") or (
            request.method == "POST" and "/revisions/" in rest.lower()
        ):
            self._refuse_if_busy(kind, rid, match["name"])
        if kind == "microsoft.app/containerapps" and rest:
            return self.apps.subresource(request, rid, rest)
        if rest:
            raise ArmError(404, "InvalidResourceType", f"{rest} is not served by the fake ARM.")
        builders = {
            "microsoft.containerregistry/registries": resources.registry,
            "microsoft.app/managedenvironments": resources.environment,
            "microsoft.managedidentity/userassignedidentities": resources.identity,
        }
        with self.lock:
            existing = self.resources.get(rid.lower())
            if request.method == "GET":
                if existing is None:
                    raise resources.not_found(kind, match["name"], match["rg"])
                op = self._busy.get(rid.lower())
                if op is not None:  # operations go on whether anyone polls them
                    op.settle(unpolled=True)
                self.apps.refresh(rid.lower())
                return Response(200, existing, self._etag_header(rid))
            self._preconditions(request, rid, existing)
            if request.method == "DELETE":
                return self._delete(rid, existing, match["ns"])
            if request.method not in ("PUT", "PATCH"):
                raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported.")
            self.require_group(match["sub"], match["rg"])
            body = request.json()
            if request.method == "PATCH":
                if existing is None:
                    raise resources.not_found(kind, match["name"], match["rg"])
                body = resources.merge(self._stored_request(rid, existing), body or {})
            if not isinstance(body, dict):
                raise ArmError(400, "InvalidRequestContent", "The request body must be an object.")
            new_revision: str | None = None
            if kind == "microsoft.app/containerapps":
                resource, new_revision = self.apps.put(rid, match["name"], body, existing)
            elif kind in builders:
                resource = builders[kind](self, rid, match["name"], body, existing)
            else:
                raise ArmError(
                    400,
                    "InvalidResourceType",
                    f"The resource type '{match['ns']}/{match['type']}' is not served by the fake.",
                )
            self.resources[rid.lower()] = resource
            self.etag_of[rid.lower()] = f'"{uuid.uuid4()}"'
            if kind not in _LRO_TYPES:
                return Response(200 if existing else 201, resource, self._etag_header(rid))
            response = self._long_running(
                request, kind, rid, match, resource, existing, new_revision
            )
            response.headers.update(self._etag_header(rid))
            return response

    def _etag_header(self, rid: str) -> dict[str, str]:
        etag = self.etag_of.get(rid.lower())
        return {"ETag": etag} if etag else {}

    def _preconditions(self, request: Request, rid: str, existing: dict[str, Any] | None) -> None:
        """412 ``PreconditionFailed`` when ``If-Match``/``If-None-Match`` does not hold (the
        table in azure-resource-manager-rpc v1.0/Addendum.md "ETags for Resources"); checked
        under the lock, so the check and the write are one step."""
        if not self.etags:
            return
        if_match = request.headers.get("if-match", "").strip()
        if_none_match = request.headers.get("if-none-match", "").strip()
        current = self.etag_of.get(rid.lower()) if existing is not None else None
        refused: str | None = None
        if if_match and request.method in ("PUT", "PATCH", "DELETE"):
            if existing is None:
                # PUT: 412; PATCH: 404 (raised by the PATCH path); DELETE: 204 (idempotent)
                refused = "If-Match" if request.method == "PUT" else None
            elif if_match != "*" and if_match not in {current, (current or "").strip('"')}:
                refused = "If-Match"
        if if_none_match == "*" and request.method == "PUT" and existing is not None:
            refused = "If-None-Match"
        if refused is not None:
            shown = if_match if refused == "If-Match" else if_none_match
            raise ArmError(
                412,
                "PreconditionFailed",
                f"The condition '{refused}: {shown}' of the request was not met: the resource "
                f"'{rid}' has changed (its ETag is now {current or 'none: it does not exist'}).",
            )

    def _list_in_group(self, match: re.Match[str]) -> Response:
        """``GET …/resourceGroups/<rg>/providers/<ns>/<type>`` (ContainerApps_ListByResourceGroup
        and the like): ``{"value": [...], "nextLink": null}``; 404 for a missing group."""
        kind = resources.type_name(f"{match['ns']}/{match['type']}")
        with self.lock:
            self.require_group(match["sub"], match["rg"])
            prefix = f"/subscriptions/{match['sub']}/resourcegroups/{match['rg']}/".lower()
            keys = [
                k
                for k, r in self.resources.items()
                if k.startswith(prefix) and r.get("type", "").lower() == kind.lower()
            ]
            for key in keys:
                self.apps.refresh(key)
            value = [json.loads(json.dumps(self.resources[k])) for k in sorted(keys)]
        return Response(200, {"value": value, "nextLink": None})

    def _long_running(
        self,
        request: Request,
        kind: str,
        rid: str,
        match: re.Match[str],
        resource: dict[str, Any],
        existing: dict[str, Any] | None,
        new_revision: str | None,
    ) -> Response:
        """Answer a PUT/PATCH of a long-running type: 201/200 (202 for PATCH) and an operation
        whose end sets the resource's ``provisioningState``."""
        final = resource["properties"]["provisioningState"]
        resource["properties"]["provisioningState"] = (
            "InProgress" if kind == "microsoft.app/containerapps" else "Creating"
        )
        if kind == "microsoft.app/managedenvironments":
            resource["properties"]["provisioningState"] = "InitializationInProgress"

        def settle(status: str) -> None:
            resource["properties"]["provisioningState"] = final if status == "Succeeded" else status

        outcome: Callable[[], Outcome | None] | None = None
        expired: dict[str, str] | None = None
        if kind == "microsoft.app/containerapps":
            outcome = functools.partial(self.apps.outcome, rid.lower(), new_revision)
            expired = self.apps.operation_error(match["name"], "Operation expired.")
        ready_at = 0.0
        if kind == "microsoft.app/managedenvironments" and existing is None:
            ready_at = time.monotonic() + self.environment_provisioning
        headers = self._start_operation(
            match["ns"], resource["location"], settle, outcome, expired, ready_at
        )
        self._busy[rid.lower()] = self._operations[headers["x-ms-operation-id"]]
        status = 202 if request.method == "PATCH" else (200 if existing else 201)
        if status == 202:
            headers["Location"] = headers["Azure-AsyncOperation"]
            return Response(202, None, headers)
        return Response(status, resource, headers)

    def _registries_of_subscription(self, request: Request, what: str) -> Response:
        """``GET …/registries`` (every registry of the subscription, whatever its resource
        group) and ``POST …/checkNameAvailability`` (registry names are global: the answer
        of RegistryCheckNameNotAvailable.json, specification/containerregistry/
        resource-manager/Microsoft.ContainerRegistry/Registry/stable/2025-11-01/examples)."""
        with self.lock:
            held = [
                r
                for r in self.resources.values()
                if r["type"] == "Microsoft.ContainerRegistry/registries"
            ]
            if what == "registries" and request.method == "GET":
                return Response(200, {"value": held})
            if what != "checknameavailability" or request.method != "POST":
                raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported.")
            name = str((request.json() or {}).get("name", ""))
            if not resources.REGISTRY_NAME.match(name):
                return Response(
                    200,
                    {
                        "nameAvailable": False,
                        "reason": "Invalid",
                        "message": "The specified resource name is invalid.",
                    },
                )
            if self.registry_name_taken(name):
                return Response(
                    200,
                    {
                        "nameAvailable": False,
                        "reason": "AlreadyExists",
                        "message": f"The registry {name} is already in use.",
                    },
                )
            return Response(200, {"nameAvailable": True})

    def registry_name_taken(self, name: str, except_id: str | None = None) -> bool:
        """Registry names are global across Azure: held here (any resource group), or by
        someone else (``taken_registry_names``)."""
        if name.lower() in self.taken_registry_names:
            return True
        return any(
            r["type"] == "Microsoft.ContainerRegistry/registries"
            and r["name"].lower() == name.lower()
            and r["id"].lower() != (except_id or "").lower()
            for r in self.resources.values()
        )

    def _refuse_if_busy(self, kind: str, rid: str, name: str) -> None:
        with self.lock:
            op = self._busy.get(rid.lower())
            if op is None:
                return
            op.settle(unpolled=True)
            if op.status != "InProgress":
                del self._busy[rid.lower()]
                return
        if kind == "microsoft.app/managedenvironments":
            raise ArmError(
                409,
                "ManagedEnvironmentOperationInProgress",
                f"Cannot modify Container Apps environment {name} because another operation "
                "is in progress.",
            )
        raise ArmError(
            409,
            "ContainerAppLockConflict",
            f"Cannot modify container App '{name}' because another modification is in "
            "progress. Please retry the operation.",
        )

    def hold(self, resource_id: str, seconds: float) -> None:
        """Let another client's operation hold ``resource_id`` for ``seconds`` (a portal edit,
        a concurrent deploy, platform maintenance): changes to it get the 409 Azure answers."""
        with self.lock:
            op = _Operation(str(uuid.uuid4()), "held", 0, lambda _: None)
            op.ready_at = time.monotonic() + seconds
            self._operations[op.id] = op
            self._busy[resource_id.lower()] = op

    def environment_ready(self, key: str) -> bool:
        """False while the environment's creation runs (see ``environment_provisioning``)."""
        with self.lock:
            op = self._busy.get(key)
            if op is not None:
                op.settle(unpolled=True)
            env = self.resources.get(key)
            return env is not None and env["properties"]["provisioningState"] == "Succeeded"

    def _stored_request(self, rid: str, existing: dict[str, Any]) -> dict[str, Any]:
        if rid.lower() in self.apps.requests:
            return self.apps.requests[rid.lower()]
        copied: dict[str, Any] = json.loads(json.dumps(existing))
        return copied

    def _delete(self, rid: str, existing: dict[str, Any] | None, namespace: str) -> Response:
        if existing is None:
            return Response(204)
        self._forget(rid.lower())
        if rid.lower().split("/providers/")[1].split("/")[1] not in {
            t.split("/")[1] for t in _LRO_TYPES
        }:
            return Response(200)
        headers = self._start_operation(namespace, existing.get("location", "x"), lambda _: None)
        headers["Location"] = headers["Azure-AsyncOperation"]
        return Response(202, None, headers)

    def _forget(self, key: str) -> None:
        self.resources.pop(key, None)
        self.etag_of.pop(key, None)
        self.apps.forget(key)

    # -- role assignments ----------------------------------------------------------------

    def _roles(self, request: Request, scope: str, name: str | None) -> Response:
        with self.lock:
            if name is None:
                if request.method != "GET":
                    raise ArmError(405, "MethodNotAllowed", "Only GET lists role assignments.")
                value = [
                    r
                    for r in self.resources.values()
                    if r["type"] == "Microsoft.Authorization/roleAssignments"
                    and r["properties"]["scope"].lower() == scope.lower()
                ]
                return Response(200, {"value": value})
            rid = f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
            existing = self.resources.get(rid.lower())
            if request.method == "GET":
                if existing is None:
                    raise ArmError(
                        404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found."
                    )
                return Response(200, existing)
            if request.method == "DELETE":
                self.resources.pop(rid.lower(), None)
                return Response(200 if existing else 204, existing)
            if request.method != "PUT":
                raise ArmError(405, "MethodNotAllowed", f"{request.method} is not supported.")
            if self.deny_role_assignments:
                # the 403 a principal without roleAssignments/write gets (learn.microsoft.com/
                # azure/role-based-access-control/troubleshooting: "does not have
                # authorization to perform action 'Microsoft.Authorization/roleAssignments/
                # write'")
                raise ArmError(
                    403,
                    "AuthorizationFailed",
                    "The client 'fake-arm-user' with object id "
                    "'00000000-0000-0000-0000-0000000000ff' does not have authorization to "
                    "perform action 'Microsoft.Authorization/roleAssignments/write' over scope "
                    f"'{scope}/providers/Microsoft.Authorization/roleAssignments/{name}' or the "
                    "scope is invalid. If access was recently granted, please refresh your "
                    "credentials.",
                )
            assignment = resources.role_assignment(self, rid, name, scope, request.json() or {})
            self.resources[rid.lower()] = assignment
            self.role_times[rid.lower()] = time.monotonic()
            return Response(201, assignment)

    # -- async operations ----------------------------------------------------------------

    def _start_operation(
        self,
        namespace: str,
        location: str,
        on_done: Callable[[str], None],
        outcome: Callable[[], Outcome | None] | None = None,
        expired: dict[str, str] | None = None,
        ready_at: float = 0.0,
    ) -> dict[str, str]:
        op = _Operation(
            str(uuid.uuid4()),
            namespace,
            self.polls,
            on_done,
            outcome,
            time.monotonic() + self.operation_timeout,
            expired,
            ready_at,
        )
        op.settle()
        self._operations[op.id] = op
        sub = next(iter(self.subscriptions))
        location_slug = location.replace(" ", "").lower()
        url = (
            f"{self.base_url}/subscriptions/{sub}/providers/{namespace}/locations/"
            f"{location_slug}/operationStatuses/{op.id}?api-version="
            f"{min(API_VERSIONS[namespace.lower()])}"
        )
        return {
            "Azure-AsyncOperation": url,
            "x-ms-retry-after-ms": str(self.poll_ms),
            "x-ms-operation-id": op.id,
        }

    def _operation_status(self, op_id: str) -> Response:
        with self.lock:
            op = self._operations.get(op_id)
            if op is None:
                raise ArmError(404, "OperationNotFound", f"Operation '{op_id}' not found.")
            if op.status == "InProgress":
                op.polls_left = max(0, op.polls_left - 1)
                body = {"id": op.id, "name": op.id, "status": "InProgress"}
                op.settle()  # this poll still answers InProgress, the next one the end
                return Response(200, body, {"x-ms-retry-after-ms": str(self.poll_ms)})
            now = datetime.now(UTC).isoformat()
            done: dict[str, Any] = {"id": op.id, "name": op.id, "status": op.status, "endTime": now}
            if op.error is not None:
                done["error"] = op.error
            return Response(200, done)
