"""The core imports no provider: the arrows go core → providers → test kit, never back."""

from __future__ import annotations

import ast
from pathlib import Path

import cloudship

CORE = Path(cloudship.__file__).parent


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_no_core_module_imports_a_provider() -> None:
    offenders = {
        str(path.relative_to(CORE)): sorted(m for m in _imports(path) if m.startswith("cloudship_"))
        for path in CORE.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_would_see_one(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from cloudship_aws.ecs import FargateRuntime\nimport cloudship_local\n")
    assert _imports(probe) == {"cloudship_aws.ecs", "cloudship_local"}
