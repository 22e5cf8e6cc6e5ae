"""A stateful fake of Azure Resource Manager for the resources the ``azure`` target uses.

Product code, not a test hack: users point their own deploy scripts at it through the
``cloudship_azure.testing`` fixtures. It serves, over HTTPS with a throw-away CA (the real
``azure-mgmt-*`` clients verify the certificate), resource groups,
``Microsoft.ContainerRegistry/registries``, ``Microsoft.App/managedEnvironments``,
``Microsoft.App/containerApps`` with their ``revisions``, user-assigned identities
(``Microsoft.ManagedIdentity``) and role assignments (``Microsoft.Authorization``).

Semantics kept from real ARM: ``PUT`` answers 201/200 with ``Azure-AsyncOperation`` and the
operation goes ``InProgress`` → ``Succeeded`` on polling; 404 ``ResourceNotFound`` in the ARM
error shape; 400s for missing required fields, invalid cpu/memory totals, traffic that does not
add up to 100, secret references that do not exist; api-versions checked per provider;
revisions ``<app>--<suffix>`` created on template changes only; requests name the environment
with ``environmentId`` and responses echo both ``environmentId`` and the deprecated
``managedEnvironmentId``; the public URL is ``configuration.ingress.fqdn`` and
``latestRevisionFqdn`` is per revision; a registry's login server is its lower-cased name.
It is deliberately stricter than Azure in one way: a container app body without
``configuration.activeRevisionsMode`` is refused, so a client that silently drops it
(azure-mgmt-appcontainers 5.0.0, Azure/azure-sdk-for-python#48043) fails loudly.

Response shapes were compared with:

- Azure/azure-sdk-for-python ``sdk/containerregistry/azure-mgmt-containerregistry/tests/
  recordings/test_mgmt_containerregistry.test_managed_registry.yaml`` (registry PUT → 200 body:
  ``sku{name,tier}``, ``properties.loginServer`` lower-cased, ``adminUserEnabled``,
  ``creationDate``, ``policies``) and ``…/test_cli_mgmt_containerregistry_registry.
  test_registries.yaml`` (409 ``AlreadyInUse`` error shape naming ``myregistry.azurecr.io``);
- the azure-mgmt-appcontainers recordings in that repo only cover ``list_by_subscription``
  (``{"value": []}``), so container apps were compared with the REST spec examples
  Azure/azure-rest-api-specs ``specification/app/resource-manager/Microsoft.App/stable/
  2024-03-01/examples/ContainerApps_CreateOrUpdate.json`` (request ``environmentId``,
  response ``managedEnvironmentId``, 201 ``provisioningState: InProgress``,
  ``latestRevisionFqdn``, ``latestReadyRevisionName``, ``configuration.ingress.fqdn``,
  ``transport: auto``, ``eventStreamEndpoint``) and, via shared/CLOUD-FACTS.md §2,
  ``Revisions_List.json`` and ``ManagedEnvironments_CreateOrUpdate.json``;
- the long-running-operation contract of azure-core's ``ARMPolling`` (the
  ``final-state-via: azure-async-operation`` the 4.0.0 client uses for container apps).

Not compared with a recording (no public one found; codes may differ from Azure's): the
400 codes for invalid cpu/memory totals, secret names and traffic, and ``RegistryNameInvalid``.
"""

from cloudship_azure.fake.arm import FakeArm
from cloudship_azure.fake.containerapps import ACR_PULL, REPOSITORY_READER, RevisionRunner
from cloudship_azure.fake.messages import Request, Response
from cloudship_azure.fake.resources import ArmError
from cloudship_azure.fake.server import FakeArmServer

__all__ = [
    "ACR_PULL",
    "REPOSITORY_READER",
    "ArmError",
    "FakeArm",
    "FakeArmServer",
    "Request",
    "Response",
    "RevisionRunner",
]
