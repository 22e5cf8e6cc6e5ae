"""The one place where lightkube and HTTP errors become cloudship errors.

Every API call in this package runs inside ``api_errors(what)``. Messages carry the API
server's ``Status`` reason and message (never headers or tokens) and say what to do; the
original is chained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from cloudship.errors import AuthError, CloudshipError, ConfigError, DeployError


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of a lightkube ``ApiError``; None for anything else."""
    status = getattr(exc, "status", None)
    code = getattr(status, "code", None)
    return int(code) if isinstance(code, int) else None


def is_not_found(exc: BaseException) -> bool:
    return status_code(exc) == 404


@contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Translate client errors raised while doing ``what`` (e.g. "reading deployment web")."""
    import httpx2
    from lightkube.core.exceptions import ApiError
    from lightkube.core.exceptions import ConfigError as KubeConfigError

    try:
        yield
    except CloudshipError:
        raise
    except ApiError as exc:
        status = exc.status
        detail = f"{what}: the API server answered {status.code} {status.reason}: {status.message}"
        if status.code == 401:
            raise AuthError(
                detail, fix="refresh the kubeconfig's credentials (the token may have expired)"
            ) from exc
        if status.code == 403:
            raise AuthError(
                detail,
                fix="the kubeconfig's user needs RBAC rights on deployments, replicasets, pods, "
                "pods/log, services, secrets, events and horizontalpodautoscalers in the namespace",
            ) from exc
        if status.code == 422 or status.reason == "Invalid":
            raise ConfigError(detail) from exc
        if status.code == 404 and "namespaces" in (status.message or ""):
            raise ConfigError(detail, fix="create it: kubectl create namespace NAME") from exc
        raise DeployError(detail) from exc
    except KubeConfigError as exc:
        raise ConfigError(
            f"{what}: the kubeconfig cannot be used: {exc}",
            fix="check kubeconfig=, context= (kubectl config get-contexts) or KUBECONFIG",
        ) from exc
    except httpx2.HTTPError as exc:
        raise DeployError(
            f"{what}: the API server is not reachable ({type(exc).__name__}: {exc})",
            fix="check the kubeconfig's server address and that the cluster is running",
        ) from exc
