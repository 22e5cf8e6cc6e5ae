"""A thin dict-in, dict-out layer over lightkube, the only module that imports it.

Why lightkube and not the official ``kubernetes`` client: it imports in ~340 ms against
~615 ms (cloudship loads a provider on every ship), is a tenth of the size, is typed
(``py.typed``, models generated from the API's OpenAPI), reads kubeconfig files the way
kubectl does (contexts, exec plugins, CA files) and raises one ``ApiError`` carrying the API
server's ``Status``. kr8s was not chosen because it is still 0.x. lightkube is imported lazily,
so ``import cloudship`` never pays for it.

The runtime works on plain API dicts (``manifests``); this layer converts at the edge.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudship_kubernetes.errors import api_errors, is_not_found
from cloudship_kubernetes.settings import DEFAULT_NAMESPACE

if TYPE_CHECKING:
    from lightkube import Client

Obj = dict[str, Any]


def _resource(api_version: str, kind: str) -> Any:
    from lightkube.resources import apps_v1, autoscaling_v2, core_v1, networking_v1

    module = {
        "apps/v1": apps_v1,
        "v1": core_v1,
        "autoscaling/v2": autoscaling_v2,
        "networking.k8s.io/v1": networking_v1,
    }[api_version]
    return getattr(module, kind)


def _plain(model: Any) -> Obj:
    return dict(model.to_dict())


class KubeApi:
    """The namespace-bound calls the runtime makes. Built lazily: no I/O until first used."""

    def __init__(self, kubeconfig: Path | None, context: str | None, namespace: str | None) -> None:
        self._kubeconfig, self._context, self._wanted_namespace = kubeconfig, context, namespace
        self._client: Client | None = None
        self._namespace: str | None = None
        self._server: str | None = None

    def _connect(self) -> Client:
        if self._client is None:
            from lightkube import Client, KubeConfig

            with api_errors("reading the kubeconfig"):
                config = (
                    KubeConfig.from_file(self._kubeconfig)
                    if self._kubeconfig
                    else KubeConfig.from_env()
                )
                single = config.get(context_name=self._context)
                if single is None:
                    from lightkube.core.exceptions import ConfigError

                    raise ConfigError("the kubeconfig has no current context")
                self._server = str(single.cluster.server)
                self._namespace = self._wanted_namespace or single.namespace or DEFAULT_NAMESPACE
                self._client = Client(
                    config=single, namespace=self._namespace, field_manager="cloudship"
                )
        return self._client

    @property
    def namespace(self) -> str:
        self._connect()
        assert self._namespace is not None
        return self._namespace

    @property
    def server(self) -> str:
        """The API server's URL, from the kubeconfig (no request)."""
        self._connect()
        assert self._server is not None
        return self._server

    def get(self, api_version: str, kind: str, name: str) -> Obj | None:
        client = self._connect()
        from lightkube.core.exceptions import ApiError

        with api_errors(f"reading {kind.lower()} {name}"):
            try:
                found = client.get(_resource(api_version, kind), name)
            except ApiError as exc:
                if is_not_found(exc):
                    return None
                raise
        return _plain(found)

    def select(
        self, api_version: str, kind: str, labels: str, fields: Obj | None = None
    ) -> list[Obj]:
        client = self._connect()
        selector: dict[str, Any] = dict(part.split("=", 1) for part in labels.split(",") if part)
        with api_errors(f"listing {kind.lower()}s"):
            return [
                _plain(item)
                for item in client.list(
                    _resource(api_version, kind), labels=selector, fields=fields
                )
            ]

    def create(self, obj: Obj) -> Obj:
        from lightkube import codecs

        client = self._connect()
        with api_errors(f"creating {obj['kind'].lower()} {obj['metadata']['name']}"):
            return _plain(client.create(codecs.from_dict(obj)))

    def apply(self, obj: Obj) -> Obj:
        """Server-side apply as field manager ``cloudship``, forcing: cloudship owns the
        fields it writes, and leaves the ones others set alone
        (https://kubernetes.io/docs/reference/using-api/server-side-apply/)."""
        from lightkube import codecs

        client = self._connect()
        with api_errors(f"applying {obj['kind'].lower()} {obj['metadata']['name']}"):
            return _plain(client.apply(codecs.from_dict(obj), force=True))

    def replace(self, obj: Obj) -> Obj:
        from lightkube import codecs

        client = self._connect()
        with api_errors(f"replacing {obj['kind'].lower()} {obj['metadata']['name']}"):
            return _plain(client.replace(codecs.from_dict(obj)))

    def delete(self, api_version: str, kind: str, name: str) -> None:
        from lightkube.core.exceptions import ApiError

        client = self._connect()
        with api_errors(f"deleting {kind.lower()} {name}"):
            try:
                client.delete(_resource(api_version, kind), name)
            except ApiError as exc:
                if not is_not_found(exc):
                    raise

    def logs(self, pod: str, tail: int) -> list[str]:
        client = self._connect()
        with api_errors(f"reading the logs of pod {pod}"):
            lines: Iterator[str] = client.log(pod, tail_lines=tail, newlines=False)
            return list(lines)
