"""ship()'s orchestration on the in-memory doubles: preflight, plan/ship parity, fan-out."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudship import Target, plan, ship
from cloudship.errors import ConfigError, HealthCheckFailed, MultiTargetError
from cloudship.runtime import ServiceSpec
from cloudship.testing.memory import MemoryEngine, MemoryRegistry, MemoryRuntime, memory_target


def app(folder: Path, answer: str = "v1", *, exits: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cmd = 'CMD ["false"]' if exits else 'CMD ["serve"]'
    label = f'LABEL org.cloudship.test.answer="{answer}"'
    (folder / "Dockerfile").write_text(f"FROM scratch\n{label}\nCOPY . /app\nEXPOSE 8000\n{cmd}\n")
    (folder / "body.txt").write_text(answer)
    return folder


@pytest.fixture(autouse=True)
def _no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no cloudship.toml of this repository is read
    monkeypatch.delenv("CLOUDSHIP_TARGET", raising=False)


def test_ship_builds_pushes_and_deploys_then_nothing_moves(tmp_path: Path) -> None:
    target, engine = memory_target()
    first = ship(app(tmp_path / "web"), target, engine=engine)
    assert (first.revision, first.changed, first.push and first.push.skipped) == ("r1", True, False)
    runtime = target.runtime
    assert isinstance(runtime, MemoryRuntime)
    assert runtime.serving("web") == "v1"
    again = ship(tmp_path / "web", target, engine=engine)
    assert (again.revision, again.changed) == ("r1", False)
    assert again.push is not None and again.push.skipped
    assert again.digest == first.digest


def test_a_failed_gate_keeps_the_previous_revision(tmp_path: Path) -> None:
    target, engine = memory_target()
    ship(app(tmp_path / "web"), target, engine=engine)
    with pytest.raises(HealthCheckFailed) as failed:
        ship(app(tmp_path / "web", "v2", exits=True), target, engine=engine)
    assert failed.value.rolled_back_to == "r1"
    runtime = target.runtime
    assert isinstance(runtime, MemoryRuntime) and runtime.serving("web") == "v1"


def _local_registry_remote_runtime() -> tuple[Target, MemoryEngine]:
    registry = MemoryRegistry(address="127.0.0.1:5999")
    runtime = MemoryRuntime(registry, remote=True)
    return Target(registry=registry, runtime=runtime, name="mixed"), MemoryEngine(registry)


@pytest.mark.parametrize("entry", [ship, plan])
def test_plan_refuses_what_ship_refuses_before_any_call(tmp_path: Path, entry: object) -> None:
    target, engine = _local_registry_remote_runtime()
    with pytest.raises(ConfigError, match="only this machine can reach"):
        entry(app(tmp_path / "web"), target, engine=engine)  # type: ignore[operator]
    assert engine.built == []  # refused before the build
    assert target.registry.created == [] and target.runtime.created == []  # type: ignore[attr-defined]


@pytest.mark.parametrize("entry", [ship, plan])
def test_a_pinned_loopback_source_is_refused_by_a_remote_runtime(
    tmp_path: Path, entry: object
) -> None:
    target, engine = memory_target()
    pinned = "127.0.0.1:5000/web@sha256:" + "a" * 64
    with pytest.raises(ConfigError, match="only this machine can reach"):
        entry(pinned, target, port=8000, engine=engine)  # type: ignore[operator]
    assert target.runtime.calls == [("validate", "web")]  # type: ignore[attr-defined]


@pytest.mark.parametrize("entry", [ship, plan])
def test_runtime_rules_refuse_before_the_build(tmp_path: Path, entry: object) -> None:
    target, engine = memory_target()

    def only_small(spec: ServiceSpec) -> None:
        if spec.cpu and spec.cpu > 2:
            raise ConfigError("cpu too large for this runtime", fix="cpu=2 at most")

    runtime = target.runtime
    assert isinstance(runtime, MemoryRuntime)
    runtime.validator = only_small
    with pytest.raises(ConfigError, match="cpu too large"):
        entry(app(tmp_path / "web"), target, cpu=4, engine=engine)  # type: ignore[operator]
    assert engine.built == []


def test_plan_agrees_with_the_ship_that_follows(tmp_path: Path) -> None:
    target, engine = memory_target()
    source = app(tmp_path / "web")
    before = plan(source, target, engine=engine)
    assert before.changed and any(a.startswith("push ") for a in before.actions)
    assert target.registry.created == []  # type: ignore[attr-defined]
    ship(source, target, engine=engine)
    after = plan(source, target, engine=engine)
    assert not after.changed and any("push: nothing" in a for a in after.actions)
    assert plan(source, target, engine=engine, force=True).changed


def test_several_targets_build_once_and_report_each_failure(tmp_path: Path) -> None:
    good, engine = memory_target("good")
    bad_registry = MemoryRegistry(address="other.memory.test")
    bad_runtime = MemoryRuntime()  # pulls from no registry: its deploy fails
    bad = Target(registry=bad_registry, runtime=bad_runtime, name="bad")
    engine.attach(bad_registry)
    with pytest.raises(MultiTargetError) as failed:
        ship(app(tmp_path / "web"), [good, bad], engine=engine)
    assert list(failed.value.shipped) == ["good"] and list(failed.value.failed) == ["bad"]
    assert "manifest unknown" in str(failed.value.failed["bad"])
    assert len(engine.built) == 1


def test_several_targets_are_all_checked_before_anything_is_pushed(tmp_path: Path) -> None:
    good, engine = memory_target("good")
    mixed, _ = _local_registry_remote_runtime()
    with pytest.raises(ConfigError):
        ship(app(tmp_path / "web"), [good, mixed], engine=engine)
    assert engine.pushed == [] and good.registry.created == []  # type: ignore[attr-defined]


def test_plan_takes_several_targets(tmp_path: Path) -> None:
    one, engine = memory_target("one")
    two = Target(registry=one.registry, runtime=MemoryRuntime(one.registry), name="two")  # type: ignore[arg-type]
    plans = plan(app(tmp_path / "web"), [one, two], engine=engine)
    assert [p.target for p in plans] == ["one", "two"]


def test_rollback_through_the_api_uses_the_core_rule(tmp_path: Path) -> None:
    from cloudship import rollback, status

    target, engine = memory_target()
    ship(app(tmp_path / "web"), target, engine=engine)
    with pytest.raises(HealthCheckFailed):
        ship(app(tmp_path / "web", "bad", exits=True), target, engine=engine)
    ship(app(tmp_path / "web", "v3"), target, engine=engine)
    back = rollback("web", target)
    assert back.revision == "r1"  # r2 failed its gate: never a rollback target
    assert [(r.id, r.state) for r in status("web", target).revisions] == [
        ("r3", "standby"),
        ("r2", "failed"),
        ("r1", "serving"),
    ]
