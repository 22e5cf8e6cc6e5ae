"""Run the docs' Python blocks marked ``run`` and ``pytest`` (see tests/docs/blocks.py).

``run`` blocks run in a fresh interpreter whose working directory holds ``examples/`` (this
repository's) and ``path/to/app`` (a tiny busybox app), with the local target pointed at a
throw-away registry and a project of its own; every service left in that project is destroyed
afterwards. ``pytest`` blocks are written to an empty folder outside this repository and run by
pytest there, as in a user's project: only the fixtures of cloudship's pytest plugin exist.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cloudship_local.testing import LocalTargetFactory
from tests.conftest import write_app
from tests.docs.blocks import Block, blocks

REPO = Path(__file__).resolve().parents[2]
RUN = [b for b in blocks() if b.kind == "run"]
PYTEST = [b for b in blocks() if b.kind == "pytest"]
# the monitor app's image takes tens of seconds to build the first time
SLOW = ("examples/monitor-app",)


def marks(block: Block) -> list[pytest.MarkDecorator]:
    return [pytest.mark.slow] if any(s in block.code for s in SLOW) else []


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id, marks=marks(b)) for b in RUN])
def test_run_block(
    block: Block, tmp_path: Path, cloudship_local_target: LocalTargetFactory
) -> None:
    (tmp_path / "examples").symlink_to(REPO / "examples")
    write_app(tmp_path / "path" / "to" / "app")
    project = f"docs{uuid.uuid4().hex[:8]}"
    target = cloudship_local_target.target(project=project)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CLOUDSHIP_")},
        "CLOUDSHIP_LOCAL_REGISTRY": cloudship_local_target.registry.address,
        "CLOUDSHIP_LOCAL_EMBEDDED": "false",
        "CLOUDSHIP_LOCAL_PROJECT": project,
    }
    try:
        result = subprocess.run(
            [sys.executable, "-c", block.code],
            check=False,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        for service in target.runtime.services():
            target.runtime.destroy(service)
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("block", [pytest.param(b, id=b.id, marks=marks(b)) for b in PYTEST])
def test_pytest_block(block: Block, tmp_path: Path) -> None:
    project = tmp_path / "users-project"
    project.mkdir()
    (project / "test_from_docs.py").write_text(block.code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSHIP_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(project),
            "test_from_docs.py",
        ],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{block.id} failed:\n{result.stdout}\n{result.stderr}"
    assert " passed" in result.stdout and " skipped" not in result.stdout, result.stdout
