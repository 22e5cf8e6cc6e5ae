"""examples/ship_azure.py, run as a user runs it (a separate process), against the fake Azure
of ``cloudship_azure.testing.fake_azure()``: first deploy of the real example app, through the
propagation delay of its fresh AcrPull grant."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
def test_example_ships_to_the_fake_azure() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ship_azure.py"), "--fake"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "shipped: monitor r1", done.stdout
    assert lines[1].startswith("  image  127.0.0.1:") and "@sha256:" in lines[1]
    assert lines[2].startswith("  url    https://monitor.cloudship-env-")
    assert lines[3].split()[:2] == ["serving", "r1"]
    assert "AcrPull role is not in effect yet" in done.stderr  # the fake was as slow as Azure
