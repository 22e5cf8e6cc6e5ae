"""Where a service answers: its load balancer's DNS name, or a running task's public IP."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloudship.errors import DeployError
from cloudship_aws.errors import aws_errors
from cloudship_aws.session import AwsClients
from cloudship_aws.settings import AwsSettings


class ServiceUrls:
    def __init__(self, settings: AwsSettings, clients: AwsClients) -> None:
        self._settings = settings
        self._clients = clients

    def url(self, name: str, td_arn: str, port: int, target_group: str | None) -> str | None:
        """Behind a load balancer (``target_group``): its DNS name, or ``domain``, with
        ``https`` when a certificate is configured and the ``path`` prefix; otherwise a
        running task's public IP."""
        if target_group:
            return self._load_balancer_url(target_group)
        return self._task_url(name, td_arn, port)

    @staticmethod
    def target_group_of(service: Mapping[str, Any] | None) -> str | None:
        for entry in (service or {}).get("loadBalancers", []):
            if entry.get("targetGroupArn"):
                return str(entry["targetGroupArn"])
        return None

    def _load_balancer_url(self, target_group: str) -> str | None:
        settings = self._settings
        scheme = "https" if settings.certificate_arn else "http"
        prefix = (settings.path or "").rstrip("*").rstrip("/")
        if settings.domain:
            return f"{scheme}://{settings.domain}{prefix}"
        elbv2 = self._clients.elbv2
        with aws_errors("looking up the load balancer of the target group", DeployError):
            groups = elbv2.describe_target_groups(TargetGroupArns=[target_group])["TargetGroups"]
            balancers = groups[0].get("LoadBalancerArns", []) if groups else []
            if not balancers:
                return None
            found = elbv2.describe_load_balancers(LoadBalancerArns=balancers[:1])
        dns = found["LoadBalancers"][0].get("DNSName")
        return f"{scheme}://{dns}{prefix}" if dns else None

    def _task_url(self, name: str, td_arn: str, port: int) -> str | None:
        """``http://<public IP>:<port>`` of a running task of ``td_arn``: ECS never returns the
        IP itself, only the task's ENI (shared/CLOUD-FACTS.md §4.4)."""
        cluster = self._settings.cluster
        with aws_errors(f"finding a running task of {name!r}", DeployError):
            arns = self._clients.ecs.list_tasks(
                cluster=cluster, serviceName=name, desiredStatus="RUNNING"
            ).get("taskArns", [])
            if not arns:
                return None
            tasks = self._clients.ecs.describe_tasks(cluster=cluster, tasks=arns[:100])
            for task in tasks.get("tasks", []):
                if task.get("taskDefinitionArn") != td_arn:
                    continue
                for attachment in task.get("attachments", []):
                    if attachment.get("type") != "ElasticNetworkInterface":
                        continue
                    details = {d.get("name"): d.get("value") for d in attachment.get("details", [])}
                    eni = details.get("networkInterfaceId")
                    if not eni:
                        continue
                    interfaces = self._clients.ec2.describe_network_interfaces(
                        NetworkInterfaceIds=[eni]
                    )["NetworkInterfaces"]
                    ip = (
                        interfaces[0].get("Association", {}).get("PublicIp") if interfaces else None
                    )
                    if ip:
                        return f"http://{ip}:{port}"
        return None
