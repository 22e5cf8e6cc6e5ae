"""pytest fixtures for the Azure target: the ARM fake, a static credential, an ACR-style registry.

Registered as a pytest plugin (entry point ``pytest11``), so every user of cloudship gets them;
the Azure SDKs are imported only inside the fixtures that need them.

- ``cloudship_azure_credential``: a ``StaticTokenCredential`` whose token the fakes accept
  (session).
- ``cloudship_acr_token_registry``: a ``TokenRegistry`` that behaves like ACR: ``/oauth2/exchange``
  takes the credential's token, the refresh token logs ``docker push`` in as the null GUID
  (session; needs the Docker engine).
- ``cloudship_fake_arm``: a ``FakeArmServer`` over HTTPS whose registry ``ACR_NAME`` reports
  the token registry as its login server, and which runs revisions on the local engine behind
  a gateway (one per test, so state never leaks between tests).
- ``cloudship_azure_target``: an ``AzureTargetFactory``: ``.target(**settings)`` builds an ``azure``
  Target wired to those fakes; ``.name("web")`` gives a unique service name.

Outside pytest (a script, a notebook, ``examples/ship_azure.py --fake``), ``fake_azure()``
starts the same three — token registry, ARM fake, revision runner — and yields the factory::

    with fake_azure() as azure:
        ship("app", "azure", name="web", port=8000, **azure.settings())

Without the engine (unit tests of your own code), use ``FakeArmServer`` directly.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken

    from cloudship.engine import Engine
    from cloudship.targets import Target
    from cloudship.testing.token_registry import TokenRegistry
    from cloudship_azure.fake import FakeArmServer
    from cloudship_azure.fake.runner import LocalEngineRunner

#: the registry name whose login server ``cloudship_fake_arm`` maps to
#: ``cloudship_acr_token_registry``
ACR_NAME = "cloudshiptest"
PULLER = _PULLER = "fake-arm-puller"


class StaticTokenCredential:
    """A ``TokenCredential`` that always returns one bearer token (never a real one).

    Its repr hides the token, like every cloudship credential."""

    def __init__(self, token: str, lifetime: float = 3600.0) -> None:
        self._token = token
        self._lifetime = lifetime

    def __repr__(self) -> str:
        return "StaticTokenCredential(token=**********)"

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time() + self._lifetime))

    def close(self) -> None:
        """Nothing to release."""


@pytest.fixture(scope="session")
def cloudship_azure_credential() -> StaticTokenCredential:
    return StaticTokenCredential(f"fake-aad-{secrets.token_urlsafe(16)}")


@pytest.fixture(scope="session")
def cloudship_acr_puller_password() -> str:
    """The password of the service account the emulated platform pulls images with."""
    return secrets.token_urlsafe(16)


@pytest.fixture(scope="session")
def cloudship_acr_token_registry(
    cloudship_engine: Engine,
    cloudship_azure_credential: StaticTokenCredential,
    cloudship_acr_puller_password: str,
) -> Iterator[TokenRegistry]:
    with _token_registry(cloudship_azure_credential, cloudship_acr_puller_password) as registry:
        yield registry


def _token_registry(credential: StaticTokenCredential, puller_password: str) -> TokenRegistry:
    from cloudship.testing.token_registry import TokenRegistry

    token = credential.get_token("https://management.core.windows.net/.default").token
    return TokenRegistry(
        users={_PULLER: puller_password},
        # ACR checks scope per role, as the Hub does per token: the signed-in principal (the
        # AcrPush role cloudship needs) may push and pull; the pull identity (AcrPull) only
        # pulls (learn.microsoft.com/azure/container-registry/container-registry-roles).
        grants={"aad-principal": [("*", {"pull", "push"})], _PULLER: [("*", {"pull"})]},
        aad_tokens={token},
        realm_path="/oauth2/token",
        issuer="Azure Container Registry",
    )


def _arm_server(
    credential: StaticTokenCredential, registry: TokenRegistry, puller_password: str
) -> FakeArmServer:
    """An ARM fake whose ``ACR_NAME`` registry is ``registry``, running revisions locally."""
    from cloudship_azure.fake import FakeArmServer
    from cloudship_azure.fake.runner import LocalEngineRunner

    token = credential.get_token("https://management.azure.com/.default").token
    login = {"username": _PULLER, "password": puller_password}

    def pull_auth(server: str) -> dict[str, str] | None:
        if server == registry.address:
            return {**login, "serveraddress": server}
        return None

    runner = LocalEngineRunner(pull_auth)
    return FakeArmServer(tokens={token}, login_servers={ACR_NAME: registry.address}, runner=runner)


@pytest.fixture
def cloudship_fake_arm(
    cloudship_azure_credential: StaticTokenCredential,
    cloudship_acr_token_registry: TokenRegistry,
    cloudship_acr_puller_password: str,
) -> Iterator[FakeArmServer]:
    with _arm_server(
        cloudship_azure_credential, cloudship_acr_token_registry, cloudship_acr_puller_password
    ) as server:
        yield server


class AzureTargetFactory:
    """Builds ``azure`` targets against a fake ARM and names services uniquely."""

    def __init__(
        self, server: FakeArmServer, runner: LocalEngineRunner, credential: StaticTokenCredential
    ) -> None:
        self.server = server
        self.runner = runner
        self.credential = credential

    @property
    def subscription(self) -> str:
        return next(iter(self.server.arm.subscriptions))

    def name(self, base: str = "svc") -> str:
        return f"{base}-{uuid.uuid4().hex[:8]}"

    def settings(self, **settings: Any) -> dict[str, Any]:
        """The keyword settings ``ship(..., target="azure", **settings)`` needs for the fake."""
        return {
            "subscription": self.subscription,
            "registry": ACR_NAME,
            "resource_group": "cloudship-test",
            "arm_endpoint": self.server.url,
            "ca_bundle": self.server.ca_path,
            "probe_url": self.runner.gateway_url + "/{fqdn}{path}",
            "poll_interval": 0.05,
            "credential": self.credential,
            **settings,
        }

    def target(self, **settings: Any) -> Target:
        from cloudship.config import ConfigFile
        from cloudship_azure import provider

        return provider.target(ConfigFile(), self.settings(**settings))


@pytest.fixture
def cloudship_azure_target(
    cloudship_fake_arm: FakeArmServer, cloudship_azure_credential: StaticTokenCredential
) -> AzureTargetFactory:
    from cloudship_azure.fake.runner import LocalEngineRunner

    assert isinstance(cloudship_fake_arm.runner, LocalEngineRunner), (
        "cloudship_fake_arm runs revisions locally"
    )
    return AzureTargetFactory(
        cloudship_fake_arm, cloudship_fake_arm.runner, cloudship_azure_credential
    )


@contextmanager
def fake_azure() -> Iterator[AzureTargetFactory]:
    """Azure on this machine, for scripts: an ACR-style token registry, the ARM fake (as
    unkind as Azure: propagation delays, failed operations, lock conflicts, name rules) and
    revisions run on the local Docker engine. Nothing leaves the machine; the credential is a
    static test token that never calls a login host."""
    from cloudship_azure.fake.runner import LocalEngineRunner

    credential = StaticTokenCredential(f"fake-aad-{secrets.token_urlsafe(16)}")
    password = secrets.token_urlsafe(16)
    with (
        _token_registry(credential, password) as registry,
        _arm_server(credential, registry, password) as server,
    ):
        assert isinstance(server.runner, LocalEngineRunner)
        yield AzureTargetFactory(server, server.runner, credential)
