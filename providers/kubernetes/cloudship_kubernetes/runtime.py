"""Kubernetes Runtime: a Deployment rolled out by the cluster, health-gated, with rollback.

A ship applies a Secret for pulling (from the registry's in-memory credentials, rewritten on
every ship because tokens such as ECR's expire), a Secret for ``spec.secrets``, a Deployment
(digest-pinned image, RollingUpdate with maxUnavailable 0, a readiness probe on
``health_path``), a Service (LoadBalancer when public) and an HPA when ``max_replicas`` asks
for one. The pod template's ``cloudship.dev/revision`` label numbers revisions (``r<N>``, the
core's rule in ``cloudship.revisions``): the template then differs per revision, so each has
its own ReplicaSet (its ``native_id``), and a rollback, which copies an old ReplicaSet's
template back into the Deployment, makes the controller scale that very ReplicaSet up again
(https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#rolling-back-a-deployment).

Objects are written with server-side apply as field manager ``cloudship`` (``_put``), so
fields other managers own are left alone; rollbacks and the failed-revision annotation are
read-modify-replace.

A rollout is judged as ``kubectl rollout status`` judges it (``rollout``), failing fast on pods
that cannot start. A failed revision's ReplicaSet is annotated ``cloudship.dev/failed`` and the
previous template is restored: with maxUnavailable 0 the old pods never stopped serving.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import ClassVar, Literal

from cloudship.errors import ConfigError, DeployError, HealthCheckFailed
from cloudship.events import DeployPhase, EventSink, ignore
from cloudship.images import ImageRef, is_loopback_host
from cloudship.registry import RegistryAuth
from cloudship.revisions import choose_rollback, is_unchanged, revision_id, service_not_found
from cloudship.runtime import Deployment, Plan, Revision, Runtime, ServiceSpec, ServiceStatus
from cloudship_kubernetes import manifests as m
from cloudship_kubernetes.client import KubeApi, Obj
from cloudship_kubernetes.errors import status_code
from cloudship_kubernetes.rollout import pod_failure, rollout_state
from cloudship_kubernetes.settings import KubernetesSettings

APPS, CORE, HPA, NETWORKING = "apps/v1", "v1", "autoscaling/v2", "networking.k8s.io/v1"
_CONFLICT_RETRIES = 8


def _number(template: Obj) -> int | None:
    text = (template.get("metadata") or {}).get("labels", {}).get(m.REVISION)
    return int(text) if text and text.isdigit() and int(text) > 0 else None


def _covers(live: object, wanted: object) -> bool:
    """True when ``live`` holds everything ``wanted`` says: the server's defaults (a
    Service port's ``nodePort``, a probe's ``successThreshold``) are no difference."""
    if isinstance(wanted, dict):
        return isinstance(live, dict) and all(_covers(live.get(k), v) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (
            isinstance(live, list)
            and len(live) == len(wanted)
            and all(_covers(a, b) for a, b in zip(live, wanted, strict=True))
        )
    return live == wanted


def _created(obj: Obj) -> datetime | None:
    text = obj.get("metadata", {}).get("creationTimestamp")
    if isinstance(text, datetime):
        return text
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


class KubernetesRuntime(Runtime):
    kind: ClassVar[str] = "kubernetes"
    platforms: ClassVar[frozenset[str]] = frozenset({"linux/amd64", "linux/arm64"})

    def __init__(self, settings: KubernetesSettings, api: KubeApi | None = None) -> None:
        self.settings = settings
        self.api = api or KubeApi(settings.kubeconfig, settings.context, settings.namespace)

    # -- pull path -------------------------------------------------------------------------

    def check_pull_address(self, address: str) -> None:
        """A cluster on this machine (the test kit's fake, kind, minikube) pulls from loopback
        registries through the engine it runs on; a remote one cannot."""
        from urllib.parse import urlsplit

        host = urlsplit(self.api.server).hostname or ""
        if is_loopback_host(address) and is_loopback_host(host):
            return
        super().check_pull_address(address)

    # -- reading -----------------------------------------------------------------------------

    def _replicasets(self, service: str) -> list[Obj]:
        return self.api.select(APPS, "ReplicaSet", m.label_selector(service))

    def _revisions(
        self, deployment: Obj, replicasets: list[Obj], url: str | None
    ) -> list[Revision]:
        current = _number(deployment["spec"]["template"])
        active = deployment["spec"].get("replicas", 1) > 0
        by_number: dict[int, Revision] = {}
        for rs in replicasets:
            template = rs["spec"]["template"]
            number = _number(template)
            if number is None:
                continue
            failed = (rs["metadata"].get("annotations") or {}).get(m.FAILED) == "true"
            state: Literal["serving", "standby", "failed"] = (
                "failed" if failed else "serving" if number == current and active else "standby"
            )
            image = template["spec"]["containers"][0]["image"]
            by_number[number] = Revision(
                number=number,
                native_id=rs["metadata"]["name"],
                image=image,
                digest=(template["metadata"].get("annotations") or {}).get(m.DIGEST)
                or image.partition("@")[2],
                state=state,
                created=_created(rs),
                url=url if state == "serving" else None,
            )
        return sorted(by_number.values(), key=lambda r: -r.number)

    def _url(self, service: str, wait: float = 0.0) -> str | None:
        """The Service's address: the load balancer's once the cloud assigned one (waiting up
        to ``wait`` seconds), else the in-cluster DNS name."""
        if self.settings.host:  # what the user reaches it by; an ingress controller routes it
            return f"http://{self.settings.host}"
        deadline = time.monotonic() + wait
        port = self.settings.service_port
        suffix = "" if port == 80 else f":{port}"
        while True:
            found = self.api.get(CORE, "Service", service)
            if found is None:
                return None
            if found["spec"].get("type") != "LoadBalancer":
                return f"http://{service}.{self.api.namespace}.svc.cluster.local{suffix}"
            ingress = ((found.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
            if ingress:
                host = ingress[0].get("ip") or ingress[0].get("hostname")
                return f"http://{host}{suffix}"
            if time.monotonic() >= deadline:
                return None
            time.sleep(self.settings.poll_interval)

    def status(self, service: str) -> ServiceStatus | None:
        deployment = self.api.get(APPS, "Deployment", service)
        if deployment is None:
            return None
        url = self._url(service)
        revisions = self._revisions(deployment, self._replicasets(service), url)
        current = next((r for r in revisions if r.state == "serving"), None)
        return ServiceStatus(service=service, url=url, current=current, revisions=revisions)

    # -- writing -----------------------------------------------------------------------------

    def _update(self, api_version: str, kind: str, name: str, change: Callable[[Obj], None]) -> Obj:
        """Read, change, replace; again on 409 Conflict (the controllers write status too).
        https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-versions"""
        for _ in range(_CONFLICT_RETRIES):
            current = self.api.get(api_version, kind, name)
            if current is None:
                raise DeployError(f"{kind.lower()} {name} disappeared while cloudship updated it")
            change(current)
            try:
                return self.api.replace(current)
            except DeployError as exc:
                if status_code(exc.__cause__ or exc) != 409:
                    raise
        raise DeployError(f"{kind.lower()} {name} kept changing under cloudship; try again")

    def _put(self, wanted: Obj, live: Obj | None = None, *, read: bool = True) -> str:
        """Server-side apply ``wanted`` unless the live object already holds all of it;
        what was done. Fields others set stay theirs; a field cloudship set before and no
        longer writes is removed by the API server."""
        api_version, kind, name = wanted["apiVersion"], wanted["kind"], wanted["metadata"]["name"]
        if read:
            live = self.api.get(api_version, kind, name)
        if live is not None:
            fields = [key for key in wanted if key not in ("apiVersion", "kind")]
            if all(_covers(live.get(key), wanted[key]) for key in fields):
                return "unchanged"  # labels or fields others added are no difference
        self.api.apply(wanted)
        return "created" if live is None else "applied"

    def _apply_support(self, spec: ServiceSpec, pull: RegistryAuth | None) -> None:
        namespace = self.api.namespace
        if pull is not None:
            self._put(m.pull_secret(spec.name, namespace, pull))
        else:
            self.api.delete(CORE, "Secret", m.pull_secret_name(spec.name))
        if spec.secrets:
            self._put(m.env_secret(spec, namespace))
        else:
            self.api.delete(CORE, "Secret", m.env_secret_name(spec.name))

    def _apply_front(self, spec: ServiceSpec) -> None:
        namespace = self.api.namespace
        self._put(m.service(spec, namespace, self.settings.service_port))
        if m.wants_autoscaler(spec):
            self._put(m.autoscaler(spec, namespace))
        else:
            self.api.delete(HPA, "HorizontalPodAutoscaler", spec.name)
        if self.settings.host:
            self._put(
                m.ingress(
                    spec,
                    namespace,
                    self.settings.host,
                    self.settings.service_port,
                    self.settings.ingress_class,
                )
            )
        else:
            self.api.delete(NETWORKING, "Ingress", spec.name)

    def _progress_deadline(self, timeout: float) -> int:
        """``progressDeadlineSeconds``: inside the ship's timeout, so the controller's
        ProgressDeadlineExceeded (with its reason) arrives before cloudship's own timeout."""
        # The controller compares whole-second timestamps: leave it 3 s or a fifth of the time.
        return max(int(timeout - max(3.0, timeout * 0.2)), 1)

    def _apply_deployment(
        self, spec: ServiceSpec, image: ImageRef, pull: bool, number: int, timeout: float
    ) -> None:
        fingerprint = spec.fingerprint(str(image))
        template = m.pod_template(spec, image, number, fingerprint, pull=pull)
        wanted = m.deployment(
            spec,
            self.api.namespace,
            template,
            fingerprint=fingerprint,
            replicas=spec.replicas,
            progress_deadline=self._progress_deadline(timeout),
            keep_revisions=self.settings.keep_revisions,
        )
        live = self.api.get(APPS, "Deployment", spec.name)
        replicas = (live or {}).get("spec", {}).get("replicas")
        if live is not None and m.wants_autoscaler(spec) and replicas:
            # The HPA sets the replica count once it exists: applying the live one changes
            # nothing and takes it from no one.
            wanted["spec"]["replicas"] = replicas
        self._put(wanted, live, read=False)

    def _restore(self, service: str, revision: Revision, timeout: float) -> None:
        """Put ``revision``'s ReplicaSet template back into the Deployment."""
        rs = self.api.get(APPS, "ReplicaSet", revision.native_id or "")
        if rs is None:
            raise DeployError(f"the ReplicaSet of {revision.id} of {service!r} is gone")
        template = m.template_without_hash(rs["spec"]["template"])
        fingerprint = (template["metadata"].get("annotations") or {}).get(m.FINGERPRINT, "")
        deadline = self._progress_deadline(timeout)

        def change(obj: Obj) -> None:
            obj["spec"]["template"] = template
            obj["spec"]["progressDeadlineSeconds"] = deadline
            if not obj["spec"].get("replicas"):
                obj["spec"]["replicas"] = 1
            obj["metadata"].setdefault("annotations", {})[m.FINGERPRINT] = fingerprint

        self._update(APPS, "Deployment", service, change)

    def _mark_failed(self, service: str, number: int) -> None:
        for rs in self._replicasets(service):
            if _number(rs["spec"]["template"]) == number:

                def change(obj: Obj) -> None:
                    obj["metadata"].setdefault("annotations", {})[m.FAILED] = "true"

                self._update(APPS, "ReplicaSet", rs["metadata"]["name"], change)

    # -- the gate ----------------------------------------------------------------------------

    def _pods(self, service: str, number: int | None = None) -> list[Obj]:
        extra = {m.REVISION: str(number)} if number is not None else {}
        pods = self.api.select(CORE, "Pod", m.label_selector(service, **extra))
        return sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp")), reverse=True)

    def _wait(self, service: str, number: int, timeout: float, on_event: EventSink) -> str | None:
        """None once revision ``number`` rolled out; else why it cannot."""
        deadline = time.monotonic() + timeout
        said = ""
        waited_out = ""  # a pod failure that may still clear up (``_may_recover``)
        while True:
            deployment = self.api.get(APPS, "Deployment", service)
            if deployment is None:
                return "the deployment was deleted during the rollout"
            state = rollout_state(deployment)
            if state.done:
                return None
            if state.failed:  # with what kept the pods from starting, if it was waited out
                return f"{state.message}: {waited_out}" if waited_out else state.message
            if state.message != said:
                on_event(DeployPhase(phase="rollout", detail=state.message))
                said = state.message
            for pod in self._pods(service, number):
                reason = pod_failure(pod)
                if reason and not self._may_recover(pod, reason, on_event):
                    return reason
                waited_out = reason or waited_out
            if time.monotonic() >= deadline:
                return f"not rolled out within {timeout:.0f} s: {waited_out or state.message}"
            time.sleep(self.settings.poll_interval)

    def _may_recover(self, pod: Obj, reason: str, on_event: EventSink) -> bool:
        """True when ``pod``'s failure may still clear up without a new template (a runtime
        whose pull rights are propagating); the rollout then goes on waiting."""
        return False

    def _diagnose(self, service: str, number: int) -> tuple[list[str], list[str]]:
        """The log tail of the newest pod of revision ``number`` and its events."""
        pods = self._pods(service, number)
        if not pods:
            return [], []
        name = pods[0]["metadata"]["name"]
        try:
            lines = self.api.logs(name, 20)
        except DeployError:
            lines = []
        events = self.api.select(CORE, "Event", "", fields={"involvedObject.name": name})
        told = [f"{e.get('reason')}: {e.get('message')}" for e in events[-10:]]
        return lines, told

    # -- the Runtime interface ---------------------------------------------------------------

    def validate(self, spec: ServiceSpec) -> None:
        if spec.max_replicas is not None and spec.max_replicas < spec.replicas:
            raise ConfigError(
                f"max_replicas={spec.max_replicas} is below replicas={spec.replicas}",
                fix="raise max_replicas, or leave it out",
            )

    def plan(self, spec: ServiceSpec, image: ImageRef) -> Plan:
        self.validate(spec)
        fingerprint = spec.fingerprint(str(image))
        deployment = self.api.get(APPS, "Deployment", spec.name)
        revisions = (
            self._revisions(deployment, self._replicasets(spec.name), None) if deployment else []
        )
        serving = next((r for r in revisions if r.state == "serving"), None)
        serving_fp = (
            (deployment or {}).get("metadata", {}).get("annotations", {}).get(m.FINGERPRINT)
            if serving
            else None
        )
        current = serving.digest if serving else None
        if is_unchanged(serving_fp, fingerprint, force=False):
            assert serving is not None
            return Plan(
                service=spec.name,
                image=str(image),
                changed=False,
                current_digest=current,
                actions=[f"nothing to do: {serving.id} already runs this image and spec"],
            )
        number = max([r.number for r in revisions], default=0) + 1
        ns = self.api.namespace
        verb = "replace" if deployment else "create"
        kind = "LoadBalancer" if spec.public else "ClusterIP"
        actions = [
            f"apply secret {ns}/{m.pull_secret_name(spec.name)} (registry credentials)",
            f"{verb} deployment {ns}/{spec.name}: r{number}, image {image}, "
            f"{spec.replicas} replica(s), readiness probe GET {spec.health_path} on {spec.port}",
            f"apply service {ns}/{spec.name} ({kind}, port {self.settings.service_port} "
            f"-> {spec.port})",
        ]
        if spec.secrets:
            actions.insert(
                1, f"apply secret {ns}/{m.env_secret_name(spec.name)} ({len(spec.secrets)} keys)"
            )
        if m.wants_autoscaler(spec):
            actions.append(
                f"apply horizontalpodautoscaler {ns}/{spec.name} "
                f"({max(spec.replicas, 1)}-{spec.max_replicas} replicas)"
            )
        if self.settings.host:
            actions.append(
                f"apply ingress {ns}/{spec.name} (host {self.settings.host} -> service "
                f"{spec.name}:{self.settings.service_port})"
            )
        actions.append(
            f"wait for the rollout (as kubectl rollout status); on failure restore "
            f"{serving.id if serving else 'nothing'}"
        )
        return Plan(
            service=spec.name,
            image=str(image),
            changed=True,
            current_digest=current,
            actions=actions,
        )

    def deploy(
        self,
        spec: ServiceSpec,
        image: ImageRef,
        pull: RegistryAuth | None,
        *,
        timeout: float,
        on_event: EventSink = ignore,
        force: bool = False,
    ) -> Deployment:
        self.validate(spec)
        fingerprint = spec.fingerprint(str(image))
        deployment = self.api.get(APPS, "Deployment", spec.name)
        revisions = (
            self._revisions(deployment, self._replicasets(spec.name), None) if deployment else []
        )
        serving = next((r for r in revisions if r.state == "serving"), None)
        serving_fp = (
            (deployment or {}).get("metadata", {}).get("annotations", {}).get(m.FINGERPRINT)
            if serving
            else None
        )
        unchanged = serving is not None and is_unchanged(serving_fp, fingerprint, force=force)
        if deployment and serving and unchanged and rollout_state(deployment).done:
            # The pods stay; the pull secret is still rewritten when the registry's
            # credentials changed (ECR's expire in 12 h), so a pod restarted later can pull.
            # The objects in front converge too (a host set since), writing only what differs.
            self._apply_support(spec, pull)
            self._apply_front(spec)
            on_event(DeployPhase(phase="unchanged", detail=f"{serving.id} serves it"))
            return Deployment(
                service=spec.name,
                revision=serving.id,
                image=str(image),
                digest=image.digest or "",
                url=self._url(spec.name),
                changed=False,
                previous=None,
            )
        template_number = _number(deployment["spec"]["template"]) if deployment else None
        number = max([r.number for r in revisions] + [template_number or 0]) + 1
        on_event(DeployPhase(phase="apply", detail=f"{revision_id(number)} of {spec.name}"))
        self._apply_support(spec, pull)
        self._apply_deployment(spec, image, pull is not None, number, timeout)
        self._apply_front(spec)
        failure = self._wait(spec.name, number, timeout, on_event)
        if failure is not None:
            self._fail(spec.name, number, failure, serving, timeout, on_event)
        url = self._url(spec.name, wait=timeout)
        on_event(DeployPhase(phase="done", detail=f"{revision_id(number)} serves {spec.name}"))
        return Deployment(
            service=spec.name,
            revision=revision_id(number),
            image=str(image),
            digest=image.digest or "",
            url=url,
            changed=True,
            previous=serving.id if serving else None,
        )

    def _fail(
        self,
        service: str,
        number: int,
        failure: str,
        restore: Revision | None,
        timeout: float,
        on_event: EventSink,
    ) -> None:
        lines, events = self._diagnose(service, number)
        self._mark_failed(service, number)
        rolled_back: str | None = None
        if restore is not None:
            on_event(DeployPhase(phase="rollback", detail=f"restoring {restore.id}"))
            self._restore(service, restore, timeout)
            again = self._wait(service, restore.number, timeout, on_event)
            rolled_back = restore.id if again is None else None
        else:
            # Nothing to go back to: stop the pods that cannot start (the objects stay, so
            # `kubectl describe` still shows what happened).
            def stop(obj: Obj) -> None:
                obj["spec"]["replicas"] = 0

            self._update(APPS, "Deployment", service, stop)
        told = "".join(f"\n  event: {line}" for line in events)
        raise HealthCheckFailed(
            f"{revision_id(number)} of {service!r} did not roll out: {failure}{told}",
            log_tail=lines,
            rolled_back_to=rolled_back,
            fix="kubectl describe pods -l "
            + m.label_selector(service, **{m.REVISION: str(number)}),
        )

    def rollback(
        self, service: str, to: str | None = None, *, timeout: float, on_event: EventSink = ignore
    ) -> Deployment:
        deployment = self.api.get(APPS, "Deployment", service)
        if deployment is None:
            raise service_not_found(service, f"namespace {self.api.namespace!r}")
        revisions = self._revisions(deployment, self._replicasets(service), None)
        chosen = choose_rollback(service, revisions, to)
        serving = next((r for r in revisions if r.state == "serving"), None)
        if serving is not None and chosen.number == serving.number:
            return Deployment(
                service=service,
                revision=chosen.id,
                image=chosen.image,
                digest=chosen.digest,
                url=self._url(service),
                changed=False,
            )
        on_event(DeployPhase(phase="rollback", detail=f"restoring {chosen.id}"))
        self._restore(service, chosen, timeout)
        failure = self._wait(service, chosen.number, timeout, on_event)
        if failure is not None:
            self._fail(service, chosen.number, failure, serving, timeout, on_event)
        return Deployment(
            service=service,
            revision=chosen.id,
            image=chosen.image,
            digest=chosen.digest,
            url=self._url(service, wait=timeout),
            changed=True,
            previous=serving.id if serving else None,
        )

    def services(self) -> list[str]:
        """The services cloudship shipped to this namespace: its Deployments carrying the
        ``app.kubernetes.io/managed-by=cloudship`` label, by their ``app.kubernetes.io/name``."""
        found = self.api.select(APPS, "Deployment", f"{m.MANAGED_BY}={m.MANAGER}")
        return sorted(
            {
                (d["metadata"].get("labels") or {}).get(m.NAME) or d["metadata"]["name"]
                for d in found
            }
        )

    def logs(self, service: str, tail: int = 100) -> list[str]:
        deployment = self.api.get(APPS, "Deployment", service)
        if deployment is None:
            raise service_not_found(service, f"namespace {self.api.namespace!r}")
        number = _number(deployment["spec"]["template"])
        pods = self._pods(service, number) or self._pods(service)
        if not pods:
            return []
        return self.api.logs(pods[0]["metadata"]["name"], tail)[-tail:] if tail > 0 else []

    def destroy(self, service: str) -> None:
        for api_version, kind, name in (
            (NETWORKING, "Ingress", service),
            (HPA, "HorizontalPodAutoscaler", service),
            (CORE, "Service", service),
            (APPS, "Deployment", service),
            (CORE, "Secret", m.pull_secret_name(service)),
            (CORE, "Secret", m.env_secret_name(service)),
        ):
            self.api.delete(api_version, kind, name)


__all__ = ["KubernetesRuntime"]
