"""Providers are plugins: registered or from entry points, composable in [targets.NAME]."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from cloudship import Provider, Target, register_target, ship
from cloudship.config import ConfigFile
from cloudship.errors import ConfigError
from cloudship.targets import KNOWN_TARGETS, available, load_provider, resolve
from cloudship.testing.memory import MemoryEngine, MemoryRegistry, MemoryRuntime


class _MemorySettings(BaseModel):
    address: str = "plugin.memory.test"


class MemoryProvider(Provider):
    """A third-party provider, as a plugin package would write it."""

    name: ClassVar[str] = "memcloud"
    settings_model: ClassVar[type[BaseModel]] = _MemorySettings
    registry_kinds: ClassVar[frozenset[str]] = frozenset({"memreg"})
    runtime_kinds: ClassVar[frozenset[str]] = frozenset({"memrun"})

    def __init__(self) -> None:
        self.registry_ = MemoryRegistry("plugin.memory.test")
        self.runtime_ = MemoryRuntime(self.registry_)

    def target(self, config: ConfigFile, overrides: dict[str, Any]) -> Target:
        return Target(registry=self.registry_, runtime=self.runtime_, name=self.name, paired=True)


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> MemoryProvider:
    from cloudship import targets

    provider = MemoryProvider()
    monkeypatch.setattr(targets, "_REGISTERED", {})
    register_target("memcloud", provider)
    return provider


def test_a_registered_provider_is_a_target(plugin: MemoryProvider) -> None:
    assert "memcloud" in available()
    assert load_provider("memcloud") is plugin
    assert resolve("memcloud", ConfigFile()).runtime is plugin.runtime_


def test_a_plugin_composes_by_name_or_kind_in_a_named_target(plugin: MemoryProvider) -> None:
    for registry, runtime in (("memcloud", "memcloud"), ("memreg", "memrun")):
        config = ConfigFile(targets={"mine": {"registry": registry, "runtime": runtime}})
        target = resolve("mine", config)
        assert target.registry is plugin.registry_ and target.runtime is plugin.runtime_


def test_a_plugin_registry_with_a_builtin_runtime(plugin: MemoryProvider) -> None:
    config = ConfigFile(targets={"mixed": {"registry": "memreg", "runtime": "local"}})
    target = resolve("mixed", config)
    assert target.registry is plugin.registry_ and target.runtime.kind == "docker"


def test_an_unknown_kind_lists_providers_and_kinds(plugin: MemoryProvider) -> None:
    config = ConfigFile(targets={"x": {"registry": "nosuch", "runtime": "local"}})
    with pytest.raises(ConfigError, match="registry = 'nosuch'") as info:
        resolve("x", config)
    assert "ecr" in str(info.value) and "memreg" in str(info.value)


def test_ship_to_a_plugin_target(plugin: MemoryProvider, tmp_path: Path) -> None:
    app = tmp_path / "web"
    app.mkdir()
    (app / "Dockerfile").write_text("FROM scratch\nEXPOSE 8000\n")
    shipment = ship(app, "memcloud", engine=MemoryEngine(plugin.registry_))
    assert shipment.target == "memcloud" and shipment.revision == "r1"


def test_register_target_refuses_what_is_not_a_provider() -> None:
    with pytest.raises(ConfigError, match="needs a cloudship Provider"):
        register_target("bad", object())  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(KNOWN_TARGETS))
def test_builtin_rows_declare_the_kinds_their_providers_declare(name: str) -> None:
    pytest.importorskip("boto3") if name == "aws" else None
    provider = load_provider(name)
    assert KNOWN_TARGETS[name].registry_kinds == provider.registry_kinds
    assert KNOWN_TARGETS[name].runtime_kinds == provider.runtime_kinds
