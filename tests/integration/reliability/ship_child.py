"""A ship in its own process, for the signal tests: ``python ship_child.py APP NAME REGISTRY
PHASE`` ships APP as NAME to a local target on REGISTRY, prints every runtime phase, and when
PHASE comes, prints ``AT PHASE`` and blocks (reading stdin) so the test can signal it there."""

from __future__ import annotations

import sys

from cloudship import ship
from cloudship.events import DeployPhase, Event


def main() -> None:
    app, name, registry, stop_at = sys.argv[1:5]

    def on_event(event: Event) -> None:
        if isinstance(event, DeployPhase):
            print("PHASE", event.phase, flush=True)
            if event.phase == stop_at:
                print("AT", event.phase, flush=True)
                sys.stdin.read()

    shipment = ship(app, "local", name=name, registry=registry, embedded=False, on_event=on_event)
    print("SHIPPED", shipment.revision, flush=True)


if __name__ == "__main__":
    main()
