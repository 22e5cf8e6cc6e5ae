"""What `cloudship dev` prints per pass (the loop itself runs in tests/integration)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import cloudship
from cloudship import cli
from cloudship.dev import DevIteration
from cloudship.errors import BuildError
from cloudship.testing.memory import memory_target
from tests.conftest import write_app


def test_a_good_and_a_failed_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target, engine = memory_target()
    shipped = cloudship.ship(write_app(tmp_path / "web"), target, name="web", engine=engine)
    cli._print_iteration(DevIteration(2, ("www/index.html",), shipped, None, 1.234, shipped.url))
    failed = BuildError("the build failed at step 2/4", log_tail=["exit code 1"])
    cli._print_iteration(DevIteration(3, ("Dockerfile",), None, failed, 0.5, shipped.url))
    out, err = capsys.readouterr()
    good, bad, keeps = out.splitlines()
    assert good.startswith("#2 www/index.html: ")
    assert re.search(r"\d+/\d+ steps from cache, \d+ layers? \([\d,]+ bytes\) pushed;", good), good
    assert f"serving r1 at {shipped.url} in 1.23s" in good
    assert bad == "#3 Dockerfile: failed (BuildError)"
    assert keeps == f"  the last good version keeps serving at {shipped.url}; save again to retry"
    assert "the build failed at step 2/4" in err and "exit code 1" in err


def test_layers_are_counted_in_words() -> None:
    from cloudship.cli_report import count

    assert count(1, "layer") == "1 layer" and count(3, "layer") == "3 layers"
