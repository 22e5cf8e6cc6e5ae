import sys
from pathlib import Path

import pytest

from cloudship import targets
from cloudship.config import ConfigFile
from cloudship.errors import ConfigError, ProviderNotInstalledError
from cloudship.targets import Target, load_provider, resolve


def test_unknown_target_lists_known_ones() -> None:
    with pytest.raises(ConfigError) as info:
        resolve("azrue", ConfigFile())
    assert "unknown target 'azrue'" in str(info.value)
    assert "aks, aws, azure, dockerhub, eks, kubernetes, local" in str(info.value)


def test_known_names_are_sorted_and_listed() -> None:
    assert list(targets.KNOWN_TARGETS) == sorted(targets.KNOWN_TARGETS)
    assert {"aws", "azure", "dockerhub", "local"} <= set(targets.available())


def test_local_provider_loads_without_io() -> None:
    target = resolve("local", ConfigFile(), {"registry": "127.0.0.1:1"})
    assert target.name == "local"
    assert target.registry.address == "127.0.0.1:1"


def _fake_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    (tmp_path / "cloudship_fake_provider.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        targets.KNOWN_TARGETS,
        "fake",
        targets._Known("cloudship_fake_provider:provider", ("fake_cloud_sdk",), "fake"),
    )
    sys.modules.pop("cloudship_fake_provider", None)


def test_missing_sdk_gives_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_module(tmp_path, monkeypatch, "import fake_cloud_sdk.sub\n")
    with pytest.raises(ProviderNotInstalledError) as info:
        load_provider("fake")
    assert "pip install 'cloudship[fake]'" in str(info.value)


def test_lazily_imported_sdk_is_checked_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that imports its SDK only when it deploys (as azure does) still gives the
    install hint when the target is resolved, i.e. before ship() builds anything."""
    _fake_module(tmp_path, monkeypatch, "provider = object()\n")
    with pytest.raises(ProviderNotInstalledError) as info:
        load_provider("fake")
    assert "fake_cloud_sdk" in str(info.value)
    assert "pip install 'cloudship[fake]'" in str(info.value)


def test_bug_inside_provider_is_not_masked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_module(tmp_path, monkeypatch, "import fake_cloud_sdk_typo_inside_provider\n")
    with pytest.raises(ModuleNotFoundError, match="typo_inside_provider"):
        load_provider("fake")


def test_provider_not_yet_part_of_this_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        targets.KNOWN_TARGETS, "later", targets._Known("cloudship_later:provider", (), "later")
    )
    with pytest.raises(ProviderNotInstalledError, match="not included"):
        load_provider("later")


def test_target_objects_pass_through() -> None:
    built = resolve("local", ConfigFile(), {})
    custom = Target(registry=built.registry, runtime=built.runtime, name="mine")
    assert resolve(custom, ConfigFile()) is custom
    with pytest.raises(ConfigError, match="target must be a name"):
        resolve("", ConfigFile())


def test_route_settings_splits_by_owner_and_names_unknown_keys() -> None:
    owners = {"hub": {"token", "namespace"}, "run": {"host_port", "namespace"}}
    routed = targets.route_settings("t", {"token": "x", "host_port": 1, "namespace": "n"}, owners)
    assert routed == {
        "hub": {"token": "x", "namespace": "n"},
        "run": {"host_port": 1, "namespace": "n"},
    }
    with pytest.raises(ConfigError, match="target 't' has no setting 'hots_port'"):
        targets.route_settings("t", {"hots_port": 1}, owners)


def test_kubernetes_provider_loads_without_io(tmp_path: Path) -> None:
    target = resolve(
        "kubernetes", ConfigFile(), {"registry": "127.0.0.1:1", "kubeconfig": tmp_path / "none"}
    )
    assert target.name == "kubernetes" and target.runtime.kind == "kubernetes"
    assert target.registry.address == "127.0.0.1:1"
