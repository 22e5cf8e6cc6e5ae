"""``FakeCluster``: the fake API server over HTTPS with its controllers, node and network.

It answers what lightkube and kubectl ask (``kubectl get``, ``describe``, ``rollout status``
and ``logs`` are tested): discovery (``/version``, ``/api``, ``/apis`` and each group version's
resource list, https://kubernetes.io/docs/reference/using-api/#api-groups), ``/openapi/v3``
(``openapi``, so kubectl validates without ``--validate=false``), get / list / watch /
create / replace / delete on the resources in ``store.KINDS``, the ``status`` subresource,
``pods/log``, and ``Table`` output. Requests need the cluster's bearer token (401 otherwise),
over TLS signed by a throw-away CA the kubeconfig names (trustme)::

    with FakeCluster() as cluster:
        subprocess.run(["kubectl", "--kubeconfig", cluster.kubeconfig, "get", "pods"])
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cloudship.testing.registry import http_server_on, loopback_listener
from cloudship_kubernetes.fake import openapi
from cloudship_kubernetes.fake.controllers import Controllers
from cloudship_kubernetes.fake.kubelet import Kubelet
from cloudship_kubernetes.fake.network import Network
from cloudship_kubernetes.fake.store import BY_PATH, KINDS, ApiError, Kind, Obj, Store, now
from cloudship_kubernetes.fake.tables import table
from cloudship_kubernetes.fake.validation import field_validation, validate

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-cloudship-fake",
    "platform": "linux/amd64",
    "goVersion": "go1.23",
    "compiler": "gc",
    "buildDate": "2026-01-01T00:00:00Z",
    "gitCommit": "",
    "gitTreeState": "clean",
}
_VERBS = ["create", "delete", "get", "list", "update", "watch"]


def _kubeconfig(url: str, ca_path: str, token: str, namespace: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "cloudship-fake",
                    "cluster": {"server": url, "certificate-authority": ca_path},
                }
            ],
            "users": [{"name": "cloudship-fake", "user": {"token": token}}],
            "contexts": [
                {
                    "name": "cloudship-fake",
                    "context": {
                        "cluster": "cloudship-fake",
                        "user": "cloudship-fake",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "cloudship-fake",
        },
        indent=2,
    )


class FakeCluster:
    """A one-node cluster on the local Docker engine. ``kubeconfig`` is a file path."""

    def __init__(
        self,
        *,
        namespace: str = "default",
        docker_client: Any = None,
        authenticate: Callable[[str], bool] | None = None,
        node_credentials: Callable[[str], dict[str, str] | None] | None = None,
    ) -> None:
        """``authenticate(bearer_token)`` replaces the check of the cluster's own token (an
        EKS-style authenticator: ``cloudship_kubernetes.fake.eks``). ``node_credentials(host)``
        is what the node pulls with when a pod names no pull secret for the registry host
        (docker-py's ``auth_config``, or None: anonymous; the AKS fake's kubelet identity)."""
        import trustme

        self.cluster_id = secrets.token_hex(6)
        self.token = secrets.token_urlsafe(24)
        self.authenticate = authenticate or (
            lambda token: secrets.compare_digest(token, self.token)
        )
        self.store = Store()
        self.store.admit = self._admit
        self.network = Network(self.store)
        self.kubelet = Kubelet(
            self.store, self.record, self.cluster_id, docker_client, node_credentials
        )
        self.controllers = Controllers(self.store, self.record)
        #: the HPA controller: ``autoscaler.set_cpu_utilization(ns, deployment, percent)``
        #: plays metrics-server; ``autoscaler.sync_period`` is its 15 s resync
        self.autoscaler = self.controllers.autoscaler
        self._folder = Path(tempfile.mkdtemp(prefix="cloudship-fake-k8s-"))
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_path = str(self._folder / "ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        cert.configure_cert(self._context)
        self._server: ThreadingHTTPServer | None = None
        # bound now, so the URL is known before the cluster starts (and no one can take it)
        self._listener = loopback_listener()
        self.port = int(self._listener.getsockname()[1])
        self.url = f"https://127.0.0.1:{self.port}"
        self.kubeconfig = str(self._folder / "kubeconfig")
        self._namespace = namespace
        #: requests seen, as (method, path?query) — what tests check a client asked
        self.requests: list[tuple[str, str]] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> FakeCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        server = http_server_on(self._listener, self._handler())
        server.socket = self._context.wrap_socket(server.socket, server_side=True)
        self._server = server
        Path(self.kubeconfig).write_text(
            _kubeconfig(self.url, self.ca_path, self.token, self._namespace)
        )
        if self._namespace not in ("default", "kube-system", "kube-public"):
            self.store.create(
                self.store.kind("namespaces"), "", {"metadata": {"name": self._namespace}}
            )
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        self.network.start()
        self.kubelet.start()
        self.controllers.start()

    def stop(self) -> None:
        self.controllers.stop()
        self.kubelet.stop()
        self.network.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self._listener.close()  # also when it never served
        shutil.rmtree(self._folder, ignore_errors=True)

    # -- what the controllers share ------------------------------------------------------------

    def _admit(self, kind: Kind, obj: Obj, old: Obj | None) -> None:
        validate(kind, obj, old)  # decoding and validation first: a bad port type is a 400
        if kind.kind == "Service":
            self.network.admit(obj, old)
        if (
            kind.kind == "Deployment"
        ):  # defaults the API server applies (pkg/apis/apps/v1/defaults.go)
            spec = obj["spec"]
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
            spec["strategy"].setdefault("type", "RollingUpdate")
        if kind.kind == "Secret":
            obj.setdefault("type", "Opaque")

    def record(self, about: Obj, kind: str, reason: str, message: str, component: str) -> None:
        """An Event about ``about``, counted up when it repeats (as the event recorder does)."""
        events = self.store.kind("events")
        meta = about["metadata"]
        namespace = meta.get("namespace", "default")
        stamp = now()
        for event in self.store.list(events, namespace, fields=f"involvedObject.uid={meta['uid']}"):
            if event.get("reason") == reason and event.get("message") == message:

                def again(obj: Obj) -> None:
                    obj["count"] = obj.get("count", 1) + 1
                    obj["lastTimestamp"] = stamp

                self.store.update(events, namespace, event["metadata"]["name"], again)
                return
        with contextlib.suppress(ApiError):
            self.store.create(
                events,
                namespace,
                {
                    "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}"},
                    "involvedObject": {
                        "kind": about["kind"],
                        "namespace": namespace,
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "apiVersion": about["apiVersion"],
                        "resourceVersion": meta.get("resourceVersion", ""),
                    },
                    "reason": reason,
                    "message": message,
                    "type": kind,
                    "source": {"component": component},
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "count": 1,
                    "reportingComponent": component,
                },
            )

    # -- HTTP ----------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            # Headers and body go out in separate writes: without TCP_NODELAY each answer
            # waits ~40 ms on Nagle + delayed ACK.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: ``cluster.requests`` keeps what tests need."""

            def _serve(self) -> None:
                url = urlsplit(self.path)
                cluster.requests.append((self.command, self.path))
                self.warnings: list[str] = []  # per request: a kept-alive handler serves many
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    header = self.headers.get("Authorization") or ""
                    scheme, _, token = header.partition(" ")
                    if scheme != "Bearer" or not cluster.authenticate(token):
                        raise ApiError(401, "Unauthorized", "Unauthorized")
                    media = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                    if body and media and not media.endswith(("json", "apply-patch+yaml")):
                        # protobuf (what kubectl sends for built-in types it builds itself)
                        # is not served: the API server's answer to a type it cannot decode
                        raise ApiError(
                            415,
                            "UnsupportedMediaType",
                            f"the body of the request was in an unknown format - accepted "
                            f'media types include: application/json (got "{media}")',
                        )
                    query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                    with field_validation(query.get("fieldValidation")) as self.warnings:
                        cluster.route(self, self.command, url.path, query, body)
                except ApiError as exc:
                    self.reply(exc.code, exc.status())
                except (ValueError, KeyError, TypeError) as exc:
                    self.reply(
                        400,
                        ApiError(
                            400, "BadRequest", f"the request could not be decoded: {exc}"
                        ).status(),
                    )

            def reply(self, code: int, body: Obj | str) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(code)
                for warning in getattr(self, "warnings", None) or []:
                    # RFC 7234 warn-code 299, as the API server sends them
                    quoted = warning.replace("\\", "\\\\").replace('"', '\\"')
                    self.send_header("Warning", f'299 - "{quoted}"')
                self.send_header(
                    "Content-Type", "text/plain" if isinstance(body, str) else "application/json"
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_PATCH = do_POST = do_DELETE = _serve

        return Handler

    def route(self, http: Any, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            http.reply(200, VERSION)
            return
        if parts == ["openapi", "v3"]:
            http.reply(200, openapi.discovery())
            return
        if parts[:2] == ["openapi", "v3"]:
            document = openapi.documents().get("/".join(parts[2:]))
            if document is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            http.reply(200, json.loads(document))
            return
        if parts == ["api"]:
            http.reply(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
                    ],
                },
            )
            return
        if parts == ["apis"]:
            groups = sorted({(k.group, k.version) for k in KINDS if k.group})
            http.reply(
                200,
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [
                        {
                            "name": g,
                            "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                            "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v},
                        }
                        for g, v in groups
                    ],
                },
            )
            return
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        elif parts[:1] == ["apis"] and len(parts) == 2:
            versions = sorted({k.version for k in KINDS if k.group == parts[1]})
            if not versions:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            http.reply(
                200,
                {
                    "kind": "APIGroup",
                    "apiVersion": "v1",
                    "name": parts[1],
                    "versions": [
                        {"groupVersion": f"{parts[1]}/{v}", "version": v} for v in versions
                    ],
                    "preferredVersion": {
                        "groupVersion": f"{parts[1]}/{versions[0]}",
                        "version": versions[0],
                    },
                },
            )
            return
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            self._resource_list(http, group, version)
            return
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        kind = BY_PATH.get((group, version, rest[0]))
        if kind is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        self._resource(http, method, kind, namespace or "", name, sub, query, body)

    def _resource_list(self, http: Any, group: str, version: str) -> None:
        kinds = [k for k in KINDS if (k.group, k.version) == (group, version)]
        if not kinds:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        resources: list[Obj] = []
        for k in kinds:
            resources.append(
                {
                    "name": k.plural,
                    "singularName": k.singular,
                    "namespaced": k.namespaced,
                    "kind": k.kind,
                    "verbs": _VERBS,
                    "shortNames": list(k.short_names),
                }
            )
            if k.has_status:
                resources.append(
                    {
                        "name": f"{k.plural}/status",
                        "singularName": "",
                        "namespaced": k.namespaced,
                        "kind": k.kind,
                        "verbs": ["get", "update"],
                    }
                )
            if k.kind == "Pod":
                resources.append(
                    {
                        "name": "pods/log",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "Pod",
                        "verbs": ["get"],
                    }
                )
        http.reply(
            200,
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources,
            },
        )

    def _resource(
        self,
        http: Any,
        method: str,
        kind: Kind,
        namespace: str,
        name: str | None,
        sub: str | None,
        query: dict[str, str],
        body: bytes,
    ) -> None:
        store = self.store
        wants_table = "as=Table" in (http.headers.get("Accept") or "")
        if method == "GET" and name is None:
            if query.get("watch") in ("true", "1"):
                self._watch(http, kind, namespace if kind.namespaced and namespace else None, query)
                return
            items = store.list(
                kind,
                namespace if namespace else None,
                query.get("labelSelector", ""),
                query.get("fieldSelector", ""),
            )
            version = str(store.version)
            if wants_table:
                http.reply(200, table(kind, items, version))
                return
            http.reply(
                200,
                {
                    "kind": f"{kind.kind}List",
                    "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": version},
                    "items": items,
                },
            )
            return
        manager = self._manager(http, query)
        if method == "POST" and name is None:
            obj = json.loads(body)
            self._check_kind(kind, obj)
            http.reply(201, store.create(kind, namespace, obj, manager=manager))
            return
        if name is None:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if kind.kind == "Namespace":
            namespace = ""
        if sub == "log" and kind.kind == "Pod" and method == "GET":
            tail = int(query["tailLines"]) if "tailLines" in query else None
            http.reply(200, self.kubelet.logs(namespace, name, tail))
            return
        if sub not in (None, "status"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method == "GET":
            obj = store.get(kind, namespace, name)
            if wants_table:
                http.reply(200, table(kind, [obj], obj["metadata"]["resourceVersion"]))
                return
            http.reply(200, obj)
            return
        if method == "PUT":
            obj = json.loads(body)
            self._check_kind(kind, obj)
            http.reply(
                200,
                store.replace(kind, namespace, name, obj, status=sub == "status", manager=manager),
            )
            return
        media = (http.headers.get("Content-Type") or "").split(";")[0].strip()
        if method == "PATCH" and media == "application/apply-patch+yaml" and sub is None:
            self._apply(http, kind, namespace, name, query, body)
            return
        if method == "DELETE":
            if kind.kind == "Pod":
                obj = store.get(kind, namespace, name)
                self.controllers.delete_pod(obj)
                http.reply(200, store.get(kind, namespace, name))
                return
            obj = store.delete(kind, namespace, name)
            http.reply(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        "group": kind.group,
                        "kind": kind.plural,
                        "uid": obj["metadata"]["uid"],
                    },
                },
            )
            return
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format; {method} is not served here",
        )

    @staticmethod
    def _manager(http: Any, query: dict[str, str]) -> str:
        """The request's field manager: ``fieldManager``, else the client's User-Agent name
        (https://kubernetes.io/docs/reference/using-api/server-side-apply/#managers)."""
        agent = (http.headers.get("User-Agent") or "unknown").split("/")[0].split(" ")[0]
        return query.get("fieldManager") or agent or "unknown"

    def _apply(
        self, http: Any, kind: Kind, namespace: str, name: str, query: dict[str, str], body: bytes
    ) -> None:
        """Server-side apply (``fake.apply``): the field manager is required, ``force``
        takes conflicting fields over."""
        manager = query.get("fieldManager")
        if not manager:
            raise ApiError(
                422,
                "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch",
            )
        try:
            config = json.loads(body)
        except ValueError:
            import yaml

            config = yaml.safe_load(body)
        if not isinstance(config, dict):
            raise ApiError(400, "BadRequest", "the apply configuration must be an object")
        self._check_kind(kind, config)
        if not config.get("apiVersion") or not config.get("kind"):
            raise ApiError(400, "BadRequest", "apiVersion and kind must be set in an apply patch")
        stored, created = self.store.apply(
            kind, namespace, name, config, manager, force=query.get("force") == "true"
        )
        http.reply(201 if created else 200, stored)

    def _check_kind(self, kind: Kind, obj: Obj) -> None:
        if obj.get("kind") not in (None, kind.kind) or obj.get("apiVersion") not in (
            None,
            kind.api_version,
        ):
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj.get('apiVersion')}) does not match the "
                f"expected API version ({kind.api_version})",
            )

    def _watch(self, http: Any, kind: Kind, namespace: str | None, query: dict[str, str]) -> None:
        """A watch stream: one JSON event per chunk, from ``resourceVersion`` on, until
        ``timeoutSeconds`` (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes)."""
        from cloudship_kubernetes.fake.store import field_matcher, label_matcher

        since = int(query.get("resourceVersion") or 0) or self.store.version
        deadline = time.monotonic() + min(float(query.get("timeoutSeconds", 300)), 1800)
        labels, fields = (
            label_matcher(query.get("labelSelector", "")),
            field_matcher(query.get("fieldSelector", "")),
        )
        http.send_response(200)
        http.send_header("Content-Type", "application/json")
        http.send_header("Transfer-Encoding", "chunked")
        http.end_headers()
        try:
            while time.monotonic() < deadline and self._server is not None:
                with self.store.changed:
                    pending = [
                        e
                        for e in self.store.events
                        if e.resource_version > since and e.kind is kind
                    ]
                    if not pending:
                        self.store.changed.wait(timeout=0.5)
                        continue
                since = pending[-1].resource_version
                for event in pending:
                    obj = event.obj
                    if namespace and obj["metadata"].get("namespace") != namespace:
                        continue
                    if not (labels(obj["metadata"].get("labels") or {}) and fields(obj)):
                        continue
                    line = json.dumps({"type": event.type, "object": obj}).encode() + b"\n"
                    http.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                    http.wfile.flush()
            http.wfile.write(b"0\r\n\r\n")
        except OSError:
            return
