"""The one place where azure-core and azure-identity errors become cloudship errors.

Every ARM call in this package runs inside ``arm_errors(what)``. Messages carry ARM's error
code and message (never request headers or tokens) and say what to do; the original is chained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from cloudship.errors import AuthError, CloudshipError, ConfigError, DeployError

if TYPE_CHECKING:
    from azure.core.exceptions import HttpResponseError

#: roles the signed-in principal needs, for error hints and docs/azure.md
RBAC_HINT = (
    "the signed-in principal needs Contributor (or the resource provider roles) on the resource "
    "group and User Access Administrator or Role Based Access Control Administrator on the "
    "registry, to grant the pull identity AcrPull"
)


def arm_code(exc: HttpResponseError) -> str:
    """ARM's error code (``ResourceNotFound``, ``AuthorizationFailed`` …), or ''."""
    error = getattr(exc, "error", None)
    return str(getattr(error, "code", None) or "")


def _arm_message(exc: HttpResponseError) -> str:
    error = getattr(exc, "error", None)
    message = getattr(error, "message", None) or getattr(exc, "reason", None) or ""
    return str(message).strip()


@contextmanager
def arm_errors(what: str) -> Iterator[None]:
    """Translate SDK errors raised while doing ``what`` (e.g. "creating registry x")."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
    )

    try:
        yield
    except CloudshipError:
        raise
    except ClientAuthenticationError as exc:
        if exc.status_code is not None:  # ARM answered 401: the token was not accepted
            raise AuthError(
                f"{what}: ARM answered {exc.status_code} {arm_code(exc)}: {_arm_message(exc)}",
                fix="sign in to the tenant that holds the subscription (az login --tenant ...)",
            ) from exc
        raise AuthError(
            f"{what}: no Azure credentials could be obtained "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'})",
            fix="sign in (az login), or set AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, "
            "or pass credential=<a TokenCredential>",
        ) from exc
    except ServiceRequestError as exc:
        raise DeployError(
            f"{what}: Azure Resource Manager is not reachable ({type(exc).__name__})",
            fix="check the network, or arm_endpoint and ca_bundle when using a fake ARM",
        ) from exc
    except HttpResponseError as exc:
        code = arm_code(exc)
        detail = f"{what}: ARM answered {exc.status_code} {code}: {_arm_message(exc)}"
        if exc.status_code in (401, 403) or code in (
            "AuthorizationFailed",
            "LinkedAuthorizationFailed",
        ):
            raise AuthError(detail, fix=RBAC_HINT) from exc
        if code in ("SubscriptionNotFound", "InvalidSubscriptionId"):
            raise ConfigError(
                detail, fix="check the subscription setting (az account list)"
            ) from exc
        if code == "MissingSubscriptionRegistration":
            raise ConfigError(
                detail,
                fix="register the resource provider: az provider register -n Microsoft.App "
                "(and Microsoft.ContainerRegistry)",
            ) from exc
        raise DeployError(detail) from exc
