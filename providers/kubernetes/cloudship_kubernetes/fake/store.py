"""The fake API server's object store: resource versions, generations, conflicts, selectors.

Behaviour modelled, from the API concepts page
(https://kubernetes.io/docs/reference/using-api/api-concepts/):

- every write bumps one cluster-wide ``resourceVersion``; a PUT carrying a stale one fails
  409 Conflict ("the object has been modified"), the optimistic concurrency clients retry;
- ``metadata.generation`` starts at 1 and grows on every change of ``spec`` (never of status);
- PUT and POST on the main resource ignore ``status`` (it has its own subresource);
- a duplicate name is 409 AlreadyExists, a missing object 404 NotFound, a missing namespace
  404 NotFound naming the namespace;
- list and watch filter with label selectors (``a=b``, ``a!=b``, ``a``, ``!a``, ``a in (x,y)``,
  https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors)
  and field selectors on dotted paths;
- deleting an owner leaves its dependents to the garbage collector (background propagation,
  https://kubernetes.io/docs/concepts/architecture/garbage-collection/).
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloudship_kubernetes.fake.apply import Owners

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    #: True when the main resource ignores ``status`` writes (status is a subresource)
    has_status: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


KINDS = (
    Kind("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",)),
    Kind("", "v1", "pods", "Pod", short_names=("po",)),
    Kind("", "v1", "services", "Service", short_names=("svc",)),
    Kind("", "v1", "secrets", "Secret", has_status=False),
    Kind("", "v1", "events", "Event", short_names=("ev",), has_status=False),
    Kind("apps", "v1", "deployments", "Deployment", short_names=("deploy",)),
    Kind("apps", "v1", "replicasets", "ReplicaSet", short_names=("rs",)),
    Kind(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        short_names=("hpa",),
    ),
    Kind("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",)),
)
BY_PATH = {(k.group, k.version, k.plural): k for k in KINDS}


class ApiError(Exception):
    """An error the API server answers with a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _resource_name(kind: Kind) -> str:
    return f"{kind.plural}.{kind.group}" if kind.group else kind.plural


def not_found(kind: Kind, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{_resource_name(kind)} "{name}" not found',
        {"name": name, "group": kind.group, "kind": kind.plural},
    )


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_REQUIREMENT = re.compile(
    r"^\s*(!?)([A-Za-z0-9./_-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9._-]*)|\s+(in|notin)\s*\(([^)]*)\))?\s*$"
)


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current)
    return parts


Labels = dict[str, str]


def _requirement(
    negate: str, key: str, op: str | None, value: str, set_op: str | None, values: str
) -> Callable[[Labels], bool]:
    if op in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if op == "!=":
        return lambda labels: labels.get(key) != value
    if set_op:
        wanted = {v.strip() for v in values.split(",") if v.strip()}
        return lambda labels: (labels.get(key) in wanted) == (set_op == "in")
    if negate:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def label_matcher(selector: str) -> Callable[[Labels], bool]:
    """A predicate for a label selector string; ``ApiError`` 400 for a malformed one."""
    tests: list[Callable[[Labels], bool]] = []
    for part in _split_selector(selector or ""):
        match = _REQUIREMENT.match(part)
        if not match:
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part!r}")
        negate, key, op, value, set_op, values = match.groups()
        tests.append(_requirement(negate, key, op, value or "", set_op, values or ""))
    return lambda labels: all(test(labels) for test in tests)


def _path(obj: Obj, dotted: str) -> Any:
    value: Any = obj
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _field_test(key: str, wanted: str, negate: bool) -> Callable[[Obj], bool]:
    def test(obj: Obj) -> bool:
        value = _path(obj, key)
        return (str(value if value is not None else "") == wanted) != negate

    return test


def field_matcher(selector: str) -> Callable[[Obj], bool]:
    tests: list[Callable[[Obj], bool]] = []
    for part in (p for p in (selector or "").split(",") if p.strip()):
        negate = "!=" in part
        key, _, value = part.replace("!=", "=").replace("==", "=").partition("=")
        tests.append(_field_test(key.strip(), value.strip(), negate))
    return lambda obj: all(test(obj) for test in tests)


@dataclass
class WatchEvent:
    resource_version: int
    type: str
    kind: Kind
    obj: Obj


class Store:
    """Thread-safe objects by (kind, namespace, name). Callers get deep copies."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.changed = threading.Condition(self._lock)
        self._objects: dict[tuple[str, str, str], Obj] = {}
        #: each object's field managers (``apply.Owners``), for managedFields and apply
        self._owners: dict[tuple[str, str, str], Owners] = {}
        self._kinds: dict[str, Kind] = {k.plural: k for k in KINDS}
        self._version = 0
        self.events: list[WatchEvent] = []
        #: called with (kind, object) before each create/replace is stored: validation
        self.admit: Callable[[Kind, Obj, Obj | None], None] = lambda kind, obj, old: None
        for namespace in ("default", "kube-system", "kube-public"):
            self.create(self._kinds["namespaces"], "", {"metadata": {"name": namespace}})

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def _bump(self, kind: Kind, obj: Obj, event: str) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self.events.append(WatchEvent(self._version, event, kind, copy.deepcopy(obj)))
        if len(self.events) > 5000:
            del self.events[:1000]
        self.changed.notify_all()

    def _key(self, kind: Kind, namespace: str, name: str) -> tuple[str, str, str]:
        return (kind.plural, namespace if kind.namespaced else "", name)

    def _check_namespace(self, kind: Kind, namespace: str) -> None:
        if kind.namespaced and ("namespaces", "", namespace) not in self._objects:
            raise not_found(self._kinds["namespaces"], namespace)

    def get(self, kind: Kind, namespace: str, name: str) -> Obj:
        with self._lock:
            found = self._objects.get(self._key(kind, namespace, name))
            if found is None:
                raise not_found(kind, name)
            return copy.deepcopy(found)

    def find(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        try:
            return self.get(kind, namespace, name)
        except ApiError:
            return None

    def list(
        self, kind: Kind, namespace: str | None, labels: str = "", fields: str = ""
    ) -> list[Obj]:
        by_labels, by_fields = label_matcher(labels), field_matcher(fields)
        with self._lock:
            found = [
                copy.deepcopy(obj)
                for (plural, ns, _), obj in self._objects.items()
                if plural == kind.plural
                and (namespace is None or not kind.namespaced or ns == namespace)
                and by_labels(obj["metadata"].get("labels") or {})
                and by_fields(obj)
            ]
        return sorted(
            found, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
        )

    def create(self, kind: Kind, namespace: str, obj: Obj, *, manager: str | None = None) -> Obj:
        """POST. ``manager`` (a client's ``fieldManager``) takes the fields it set; the
        controllers' own writes pass none."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.pop("managedFields", None)  # the server keeps them
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(
                422,
                "Invalid",
                f"{kind.kind} is invalid: metadata.name: Required value: "
                "name or generateName is required",
            )
        if kind.namespaced:
            if meta.get("namespace") not in (None, namespace):
                raise ApiError(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request",
                )
            meta["namespace"] = namespace
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        for key in (
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ):
            meta.pop(key, None)
        if kind.has_status and kind.kind != "Namespace":
            obj.pop("status", None)
        with self._lock:
            self._check_namespace(kind, namespace)
            self.admit(kind, obj, None)
            slot = self._key(kind, namespace, name)
            if slot in self._objects:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{_resource_name(kind)} "{name}" already exists',
                    {"name": name, "kind": kind.plural},
                )
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now()
            if "spec" in obj:
                meta["generation"] = 1
            owners = self._owners[slot] = Owners()
            if manager is not None:
                owners.updated(manager, None, obj)
                meta["managedFields"] = owners.managed_fields(kind.api_version)
            self._objects[slot] = obj
            self._bump(kind, obj, "ADDED")
            return copy.deepcopy(obj)

    def replace(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        obj: Obj,
        *,
        status: bool = False,
        manager: str | None = None,
    ) -> Obj:
        """PUT: the whole object (``status=False``) or only its status (the subresource);
        ``manager`` takes the fields it changed."""
        obj = copy.deepcopy(obj)
        obj.setdefault("metadata", {}).pop("managedFields", None)
        with self._lock:
            old = self._objects.get(self._key(kind, namespace, name))
            if old is None:
                raise not_found(kind, name)
            meta = obj.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiError(
                    400, "BadRequest", "the name of the object does not match the name on the URL"
                )
            sent = meta.get("resourceVersion")
            if sent and sent != old["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {_resource_name(kind)} "{name}": the object '
                    "has been modified; please apply your changes to the latest version and "
                    "try again",
                    {"name": name, "group": kind.group, "kind": kind.plural},
                )
            if status:
                new = copy.deepcopy(old)
                new["status"] = obj.get("status", {})
            else:
                new = obj
                new["apiVersion"], new["kind"] = kind.api_version, kind.kind
                for key in ("uid", "creationTimestamp", "namespace", "deletionTimestamp"):
                    if key in old["metadata"]:
                        new["metadata"][key] = old["metadata"][key]
                    else:
                        new["metadata"].pop(key, None)
                new["metadata"]["name"] = name
                if kind.has_status:
                    new["status"] = copy.deepcopy(old.get("status", {}))
                self.admit(kind, new, old)
                if "spec" in new:
                    generation = old["metadata"].get("generation", 1)
                    new["metadata"]["generation"] = generation + (new["spec"] != old.get("spec"))
                owners = self._owners.setdefault(self._key(kind, namespace, name), Owners())
                if manager is not None:
                    owners.updated(manager, old, new)
                fields = owners.managed_fields(kind.api_version)
                if fields:
                    new["metadata"]["managedFields"] = fields
            if new == {**old, "metadata": {**old["metadata"], **new["metadata"]}} and new == old:
                return copy.deepcopy(old)  # a no-op write keeps the resourceVersion
            self._objects[self._key(kind, namespace, name)] = new
            self._bump(kind, new, "MODIFIED")
            return copy.deepcopy(new)

    def apply(
        self, kind: Kind, namespace: str, name: str, config: Obj, manager: str, *, force: bool
    ) -> tuple[Obj, bool]:
        """Server-side apply of ``config`` by ``manager`` (``apply``): (object, created)."""
        config = copy.deepcopy(config)
        meta = config.setdefault("metadata", {})
        meta.pop("managedFields", None)
        if meta.get("name", name) != name:
            raise ApiError(
                400, "BadRequest", "the name of the object does not match the name on the URL"
            )
        meta["name"] = name
        with self._lock:
            slot = self._key(kind, namespace, name)
            live = self._objects.get(slot)
            owners = self._owners.get(slot) or Owners()
            if live is not None:
                found = owners.conflicts(manager, live, config)
                if found and not force:
                    listed = "; ".join(
                        f'conflict with "{m}" using {kind.api_version}: {f}' for f, m in found
                    )
                    raise ApiError(
                        409,
                        "Conflict",
                        f"Apply failed with {len(found)} conflict"
                        f"{'s' if len(found) > 1 else ''}: {listed}",
                        {
                            "causes": [
                                {
                                    "reason": "FieldManagerConflict",
                                    "message": f'conflict with "{m}" using {kind.api_version}',
                                    "field": f,
                                }
                                for f, m in found
                            ]
                        },
                    )
            trial = copy.deepcopy(owners)
            result = trial.applied(manager, live, config, force=force)
            if live is None:
                stored = self.create(kind, namespace, result)
            else:
                result["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
                stored = self.replace(kind, namespace, name, result)
            self._owners[slot] = trial
            kept = self._objects[slot]
            kept["metadata"]["managedFields"] = trial.managed_fields(kind.api_version)
            return {**stored, "metadata": copy.deepcopy(kept["metadata"])}, live is None

    def update(
        self, kind: Kind, namespace: str, name: str, change: Callable[[Obj], None]
    ) -> Obj | None:
        """Controllers' read-modify-write under the lock (they never conflict with themselves)."""
        with self._lock:
            current = self.find(kind, namespace, name)
            if current is None:
                return None
            before = copy.deepcopy(current)
            change(current)
            if current == before:
                return current
            self._objects[self._key(kind, namespace, name)] = current
            self._bump(kind, current, "MODIFIED")
            return copy.deepcopy(current)

    def delete(self, kind: Kind, namespace: str, name: str) -> Obj:
        with self._lock:
            key = self._key(kind, namespace, name)
            obj = self._objects.pop(key, None)
            self._owners.pop(key, None)
            if obj is None:
                raise not_found(kind, name)
            self._bump(kind, obj, "DELETED")
            return copy.deepcopy(obj)

    def kind(self, plural: str) -> Kind:
        return self._kinds[plural]
