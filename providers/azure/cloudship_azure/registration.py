"""Preflight: the subscription has registered the resource providers cloudship uses.

A subscription must register a resource provider namespace before it can create that
namespace's resources; until then every write answers 409 ``MissingSubscriptionRegistration``
(learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-register-resource-provider).
Found at deploy time, that error comes after the build and push, with half the resources made.
So before the first resource is created, each namespace's ``registrationState`` is read
(``GET /subscriptions/{id}/providers/{namespace}``, Providers_Get in the Microsoft.Resources
spec); one that is not ``Registered`` is registered (``POST …/register``, what ``az provider
register`` does) and waited for — registration "can take a few minutes"
(learn.microsoft.com/azure/azure-resource-manager/management/resource-providers-and-types) —
or, with ``register_providers=False`` or without the right to register, refused with the
command that fixes it.
"""

from __future__ import annotations

import time

from cloudship.errors import AuthError, ConfigError
from cloudship.errors import ShipTimeoutError as CloudshipTimeout
from cloudship.events import EventSink, Notice, ignore
from cloudship_azure.clients import AzureClients
from cloudship_azure.errors import arm_errors

#: what the target creates: registries, environments and apps, the pull identity
#: (Microsoft.Authorization and Microsoft.Resources are registered in every subscription)
NAMESPACES = ("Microsoft.ContainerRegistry", "Microsoft.App", "Microsoft.ManagedIdentity")


def _fix(namespaces: list[str]) -> str:
    commands = " && ".join(f"az provider register -n {n} --wait" for n in namespaces)
    return f"register them once per subscription: {commands}"


def missing(clients: AzureClients, namespaces: tuple[str, ...] = NAMESPACES) -> list[str]:
    """The namespaces the subscription has not registered (``[]`` is remembered).

    Read before any other call, because the SDK's own answer to a 409
    MissingSubscriptionRegistration (azure-mgmt-core's ARMAutoResourceProviderRegistrationPolicy,
    in every client's pipeline) registers the namespace and then polls every 10 s with no
    limit, which no deadline of a ship would bound."""
    if clients.providers_registered:
        return []
    providers = clients.resources.providers
    found: list[str] = []
    for namespace in namespaces:
        with arm_errors(f"reading the registration of {namespace}"):
            state = str(providers.get(namespace).registration_state or "")
        if state != "Registered":
            found.append(namespace)
    if not found and namespaces == NAMESPACES:
        clients.providers_registered = True
    return found


def ensure_registered(
    clients: AzureClients,
    *,
    register: bool,
    wait: float,
    on_event: EventSink = ignore,
    namespaces: tuple[str, ...] = NAMESPACES,
) -> None:
    """Return once every namespace is ``Registered``; register the missing ones (``register``)
    and wait up to ``wait`` seconds, else raise ``ConfigError``/``AuthError``/
    ``ShipTimeoutError`` with the command that fixes it. Nothing is created before this."""
    from azure.core.exceptions import HttpResponseError

    unregistered = missing(clients, namespaces)
    if not unregistered:
        return
    if not register:
        raise ConfigError(
            f"the subscription has not registered {', '.join(unregistered)}, which the azure "
            "target needs",
            fix=_fix(unregistered) + " (or let cloudship do it: register_providers=True)",
        )
    providers = clients.resources.providers
    deadline = time.monotonic() + wait
    for namespace in unregistered:
        on_event(Notice(message=f"registering resource provider {namespace} (takes minutes)"))
        with arm_errors(f"registering resource provider {namespace}"):
            try:
                providers.register(namespace)
            except HttpResponseError as exc:
                if exc.status_code == 403:
                    raise AuthError(
                        f"the signed-in principal may not register {namespace} "
                        f"({namespace}/register/action)",
                        fix="ask a subscription Owner or Contributor to "
                        + _fix([namespace]).replace("register them", "register it", 1),
                    ) from exc
                raise
    pending = list(unregistered)
    interval = clients.settings.poll_interval
    while pending:
        with arm_errors("reading provider registrations"):
            pending = [n for n in pending if providers.get(n).registration_state != "Registered"]
        if not pending:
            clients.providers_registered = namespaces == NAMESPACES
            return
        if time.monotonic() + interval > deadline:
            raise CloudshipTimeout(
                f"{', '.join(pending)} still registering after {wait:g}s",
                fix="Azure goes on registering: ship again in a few minutes, or " + _fix(pending),
            )
        time.sleep(interval)
