"""Ship the monitor app to the local target and show that it answers.

.venv/bin/python examples/ship_local.py
"""

from __future__ import annotations

from pathlib import Path

import httpx

from cloudship import ship
from cloudship.cli import Reporter, err


def main() -> None:
    app = Path(__file__).parent / "monitor-app"
    result = ship(app, target="local", on_event=Reporter(err))
    assert result.url is not None
    health = httpx.get(result.url + "/health", timeout=5).json()
    print(f"{'shipped' if result.changed else 'unchanged'}: {result.name} {result.revision}")
    print(f"  image  {result.image}")
    print(f"  url    {result.url}")
    print(f"  health {health}")
    print(f"  timings {result.timings}")


if __name__ == "__main__":
    main()
