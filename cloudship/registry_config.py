"""The configuration file of a distribution registry (the ``registry:2`` image and Debian's
``docker-registry`` binary read the same ``config.yml``).

It lives in the core because two parts run such a registry: the local provider's embedded
registry and ``cloudship.testing``'s throw-away registries; neither imports the other.
"""

from __future__ import annotations


def registry_config(
    storage: str, address: str, *, secret: str | None = None, auth: str = ""
) -> str:
    """A distribution registry's ``config.yml``: filesystem storage with deletes, one address,
    optionally an HTTP secret and an ``auth:`` section (``cloudship.testing`` uses both)."""
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {storage}",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: {address}",
        *([f"  secret: {secret}"] if secret else []),
    ]
    return "\n".join(lines) + "\n" + auth
