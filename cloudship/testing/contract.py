"""The contract every ``Registry`` and ``Runtime`` keeps, as test classes to subclass.

As fsspec's ``fsspec/tests/abstract`` suite, this ships in the package: cloudship's own
providers (local on the engine, aws on moto, azure on the ARM fake, dockerhub on the Hub fake,
the in-memory doubles) and third-party providers run the same tests by subclassing and
providing a few fixtures::

    from cloudship.testing.contract import RuntimeContract

    class TestMyRuntime(RuntimeContract):
        @pytest.fixture
        def cloudship_contract_runtime(self):
            return MyRuntime(...)

        @pytest.fixture
        def cloudship_contract_release(self, ...):
            def release(answer: str, *, healthy: bool = True) -> Release:
                ...  # push an image that answers `answer` (or exits at once) and pin it
            return release

What the contract asserts, on any runtime: a first deploy serves (``r1``); an unchanged
re-deploy changes nothing (``changed=False``, same revision, no new one); a change makes the
next revision; a failed deploy raises ``HealthCheckFailed`` and the previous revision keeps
serving; the default rollback is the newest earlier healthy revision and ``to="rN"`` names one;
status, logs and destroy work, destroy twice is no error, and an unknown service is
``ServiceNotFoundError`` (or ``None`` from ``status``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import pytest

from cloudship.errors import HealthCheckFailed, RevisionNotFoundError, ServiceNotFoundError
from cloudship.images import ImageRef
from cloudship.registry import Registry, RegistryAuth
from cloudship.runtime import Runtime, ServiceSpec


@dataclass(frozen=True)
class Release:
    """A digest-pinned image the runtime under test can pull, with the credentials to pull it."""

    image: ImageRef
    pull: RegistryAuth | None


class ReleaseFactory(Protocol):
    def __call__(self, answer: str, *, healthy: bool = True) -> Release: ...


class Case(NamedTuple):
    """What each contract test gets: the runtime, a spec for a fresh service, and images."""

    runtime: Runtime
    spec: ServiceSpec
    release: ReleaseFactory


class RuntimeContract:
    """Subclass and provide ``cloudship_contract_runtime`` and ``cloudship_contract_release``;
    override ``cloudship_contract_spec`` for a runtime that needs other settings, and
    ``answer_of`` to read what the service's URL answers (default: an HTTP GET of the URL)."""

    timeout: float = 60.0

    @pytest.fixture
    def cloudship_contract_runtime(self) -> Runtime:
        raise NotImplementedError("provide the runtime under test")

    @pytest.fixture
    def cloudship_contract_release(self) -> ReleaseFactory:
        raise NotImplementedError("provide a factory of pullable images")

    @pytest.fixture
    def cloudship_contract_service(self, cloudship_contract_runtime: Runtime) -> Iterator[str]:
        name = f"contract-{uuid.uuid4().hex[:8]}"
        yield name
        cloudship_contract_runtime.destroy(name)

    @pytest.fixture
    def cloudship_contract_spec(self, cloudship_contract_service: str) -> ServiceSpec:
        return ServiceSpec(name=cloudship_contract_service, port=8000, health_path="/")

    def answer_of(self, runtime: Runtime, service: str, url: str | None) -> str | None:
        """What ``service`` answers now; override for runtimes whose URL is not reachable
        from the test (the in-memory runtime, a fake cloud behind a proxy)."""
        import httpx

        assert url is not None, "a serving service has a URL"
        return httpx.get(url, timeout=10).text.strip()

    @pytest.fixture
    def cloudship_contract(
        self,
        cloudship_contract_runtime: Runtime,
        cloudship_contract_release: ReleaseFactory,
        cloudship_contract_spec: ServiceSpec,
    ) -> Case:
        return Case(cloudship_contract_runtime, cloudship_contract_spec, cloudship_contract_release)

    # -- helpers ---------------------------------------------------------------------------

    def _deploy(
        self, runtime: Runtime, spec: ServiceSpec, release: Release, *, force: bool = False
    ) -> tuple[str, str | None, bool, str | None]:
        done = runtime.deploy(spec, release.image, release.pull, timeout=self.timeout, force=force)
        assert done.image == str(release.image) and done.digest == release.image.digest
        return done.revision, done.url, done.changed, done.previous

    # -- the contract ----------------------------------------------------------------------

    def test_first_deploy_serves_r1(self, cloudship_contract: Case) -> None:
        runtime, spec, release = cloudship_contract
        revision, url, changed, previous = self._deploy(runtime, spec, release("v1"))
        assert (revision, changed, previous) == ("r1", True, None)
        assert self.answer_of(runtime, spec.name, url) == "v1"
        state = runtime.status(spec.name)
        assert state is not None and state.current is not None
        assert state.current.id == "r1" and state.current.state == "serving"
        assert state.url == url
        assert [r.id for r in state.revisions] == ["r1"]

    def test_unchanged_redeploy_changes_nothing(self, cloudship_contract: Case) -> None:
        runtime, spec, release = cloudship_contract
        v1 = release("v1")
        first = self._deploy(runtime, spec, v1)
        again = self._deploy(runtime, spec, v1)
        assert again[0] == first[0] and again[2] is False
        state = runtime.status(spec.name)
        assert state is not None and [r.id for r in state.revisions] == ["r1"]
        forced = self._deploy(runtime, spec, v1, force=True)
        assert forced[0] == "r2" and forced[2] is True

    def test_change_makes_the_next_revision(self, cloudship_contract: Case) -> None:
        runtime, spec, release = cloudship_contract
        self._deploy(runtime, spec, release("v1"))
        revision, url, changed, previous = self._deploy(runtime, spec, release("v2"))
        assert (revision, changed, previous) == ("r2", True, "r1")
        assert self.answer_of(runtime, spec.name, url) == "v2"
        state = runtime.status(spec.name)
        assert state is not None and state.current is not None and state.current.id == "r2"
        assert {r.id for r in state.revisions} == {"r1", "r2"}

    def test_failed_deploy_keeps_the_previous_revision_serving(
        self, cloudship_contract: Case
    ) -> None:
        runtime, spec, release = cloudship_contract
        _, url, _, _ = self._deploy(runtime, spec, release("v1"))
        with pytest.raises(HealthCheckFailed) as failed:
            self._deploy(runtime, spec, release("bad", healthy=False))
        assert failed.value.rolled_back_to == "r1"
        assert self.answer_of(runtime, spec.name, url) == "v1"
        state = runtime.status(spec.name)
        assert state is not None and state.current is not None and state.current.id == "r1"
        assert all(r.state != "serving" for r in state.revisions if r.id != "r1")

    def test_failed_first_deploy_has_nothing_to_roll_back_to(
        self, cloudship_contract: Case
    ) -> None:
        runtime, spec, release = cloudship_contract
        with pytest.raises(HealthCheckFailed) as failed:
            self._deploy(runtime, spec, release("bad", healthy=False))
        assert failed.value.rolled_back_to is None
        state = runtime.status(spec.name)
        assert state is None or state.current is None

    def test_rollback_default_and_to(self, cloudship_contract: Case) -> None:
        runtime, spec, release = cloudship_contract
        self._deploy(runtime, spec, release("v1"))
        self._deploy(runtime, spec, release("v2"))
        back = runtime.rollback(spec.name, timeout=self.timeout)
        assert (back.revision, back.previous, back.changed) == ("r1", "r2", True)
        assert self.answer_of(runtime, spec.name, back.url) == "v1"
        forward = runtime.rollback(spec.name, "r2", timeout=self.timeout)
        assert (forward.revision, forward.changed) == ("r2", True)
        assert self.answer_of(runtime, spec.name, forward.url) == "v2"
        same = runtime.rollback(spec.name, "r2", timeout=self.timeout)
        assert (same.revision, same.changed) == ("r2", False)
        with pytest.raises(RevisionNotFoundError, match="r1"):
            runtime.rollback(spec.name, "r99", timeout=self.timeout)

    def test_default_rollback_never_chooses_a_failed_revision(
        self, cloudship_contract: Case
    ) -> None:
        runtime, spec, release = cloudship_contract
        self._deploy(runtime, spec, release("v1"))
        with pytest.raises(HealthCheckFailed):
            self._deploy(runtime, spec, release("bad", healthy=False))
        revision, _, _, _ = self._deploy(runtime, spec, release("v3"))
        back = runtime.rollback(spec.name, timeout=self.timeout)
        assert back.previous == revision
        assert self.answer_of(runtime, spec.name, back.url) == "v1"
        state = runtime.status(spec.name)
        assert state is not None
        failed = [r.id for r in state.revisions if r.state == "failed"]
        for failed_id in failed:  # a runtime that keeps failed revisions refuses them by name
            with pytest.raises(RevisionNotFoundError, match="failed its health gate"):
                runtime.rollback(spec.name, failed_id, timeout=self.timeout)

    def test_logs_are_lines(self, cloudship_contract: Case) -> None:
        runtime, spec, release = cloudship_contract
        self._deploy(runtime, spec, release("v1"))
        lines = runtime.logs(spec.name, tail=5)
        assert isinstance(lines, list) and all(isinstance(line, str) for line in lines)
        assert len(lines) <= 5

    def test_destroy_twice_and_then_it_is_gone(self, cloudship_contract: Case) -> None:
        runtime, spec, release = cloudship_contract
        self._deploy(runtime, spec, release("v1"))
        runtime.destroy(spec.name)
        runtime.destroy(spec.name)
        assert runtime.status(spec.name) is None

    def test_unknown_service(self, cloudship_contract_runtime: Runtime) -> None:
        runtime, unknown = cloudship_contract_runtime, f"nosuch-{uuid.uuid4().hex[:8]}"
        assert runtime.status(unknown) is None
        with pytest.raises(ServiceNotFoundError):
            runtime.logs(unknown)
        with pytest.raises(ServiceNotFoundError):
            runtime.rollback(unknown, timeout=self.timeout)
        runtime.destroy(unknown)


class RegistryContract:
    """Subclass and provide ``cloudship_contract_registry`` and ``cloudship_contract_push``
    (a callable that pushes some image to a repository address under a tag and returns its
    digest)."""

    @pytest.fixture
    def cloudship_contract_registry(self) -> Registry:
        raise NotImplementedError("provide the registry under test")

    @pytest.fixture
    def cloudship_contract_push(self) -> Callable[[str, str], str]:
        raise NotImplementedError("provide push(repository_address, tag) -> digest")

    def test_repository_is_under_the_registry_address(
        self, cloudship_contract_registry: Registry
    ) -> None:
        registry = cloudship_contract_registry
        name = f"contract-{uuid.uuid4().hex[:8]}"
        address = registry.repository(name)
        ref = ImageRef.parse(address)
        assert ref.registry == registry.address and ref.path.endswith(name)
        assert registry.repository(name) == address  # stable, and creating twice is fine

    def test_credentials_never_show_the_secret(self, cloudship_contract_registry: Registry) -> None:
        auth = cloudship_contract_registry.credentials()
        if auth is None:
            return
        secret = auth.password.get_secret_value()
        assert secret and secret not in repr(auth) and secret not in str(auth)
        assert auth.server

    def test_manifest_digest_unknown_then_pushed(
        self,
        cloudship_contract_registry: Registry,
        cloudship_contract_push: Callable[[str, str], str],
    ) -> None:
        registry = cloudship_contract_registry
        address = registry.repository(f"contract-{uuid.uuid4().hex[:8]}")
        path = ImageRef.parse(address).path
        assert registry.manifest_digest(path, "v1") is None
        digest = cloudship_contract_push(address, "v1")
        assert digest.startswith("sha256:")
        assert registry.manifest_digest(path, "v1") == digest
        assert registry.manifest_digest(path, digest) == digest


__all__ = ["Case", "RegistryContract", "Release", "ReleaseFactory", "RuntimeContract"]
