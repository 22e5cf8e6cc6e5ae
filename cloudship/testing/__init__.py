"""Test helpers users can reuse: a throw-away registry and pytest fixtures.

The fixtures are registered as a pytest plugin (entry point ``pytest11``) when cloudship is
installed: ``cloudship_engine``, ``registry_server``, ``auth_registry_factory``,
``local_target`` and ``docker_config_guard``. See ``cloudship.testing.plugin``.
"""

from cloudship.testing.registry import ThrowawayRegistry, free_port, htpasswd_line

__all__ = ["ThrowawayRegistry", "free_port", "htpasswd_line"]
