"""Test helpers users can reuse: a throw-away registry and pytest fixtures.

The fixtures are registered as pytest plugins (entry points ``pytest11``) when cloudship is
installed:

- ``cloudship.testing.plugin``: ``cloudship_engine``, ``cloudship_registry``,
  ``cloudship_auth_registry``, ``cloudship_local_target``, ``cloudship_docker_config_guard``;
- ``cloudship_aws.testing``: ``cloudship_moto``, ``cloudship_aws_env``,
  ``cloudship_ecr_registry`` (moto in server
  mode and a registry that accepts exactly the login moto's ECR token decodes to);
- ``cloudship_azure.testing``: ``cloudship_fake_arm``, ``cloudship_azure_credential``,
  ``cloudship_acr_token_registry``,
  ``cloudship_azure_target`` (the HTTPS ARM fake and an ACR-style token registry).

``cloudship.testing.token_registry`` has a real registry behind a token service (Docker Hub's
and ACR's token flows); ``cloudship_dockerhub.fake`` a Docker Hub API fake.
"""

from cloudship.testing.registry import ThrowawayRegistry, free_port, htpasswd_line

__all__ = ["ThrowawayRegistry", "free_port", "htpasswd_line"]
