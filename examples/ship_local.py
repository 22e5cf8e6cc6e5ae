"""Ship the monitor app to the local target and show that it answers.

.venv/bin/python examples/ship_local.py [--name NAME]

The service is called ``monitor-app`` (the app's cloudship.toml); on an engine where a service
of that name already runs (yours from another checkout, or a colleague's), pass ``--name`` (or
set ``CLOUDSHIP_APP_NAME``) so this one gets a service of its own instead of replacing it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import httpx

from cloudship import ship
from cloudship.cli import err
from cloudship.cli_report import Reporter


def main() -> None:
    parser = argparse.ArgumentParser(description="ship examples/monitor-app to the local target")
    parser.add_argument("--name", help="service name (default: monitor-app)")
    args = parser.parse_args()
    app = Path(__file__).parent / "monitor-app"
    result = ship(app, target="local", name=args.name, on_event=Reporter(err.console))
    assert result.url is not None
    health = httpx.get(result.url + "/health", timeout=5).json()
    print(f"{'shipped' if result.changed else 'unchanged'}: {result.name} {result.revision}")
    print(f"  image  {result.image}")
    print(f"  url    {result.url}")
    print(f"  health {health}")
    print(f"  timings {result.timings}")


if __name__ == "__main__":
    main()
