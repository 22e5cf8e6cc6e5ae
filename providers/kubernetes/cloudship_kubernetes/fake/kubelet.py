"""The fake's one node: runs each pod as a container on the local Docker engine.

What it does follows the kubelet as documented in
https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/ and
https://kubernetes.io/docs/concepts/containers/images/:

- the pod is scheduled (PodScheduled), its image pulled by the reference in the spec (a
  digest) with the credentials of its ``imagePullSecrets`` (``kubernetes.io/dockerconfigjson``,
  matched by registry host); a failed pull is ``ErrImagePull``, then ``ImagePullBackOff`` while
  the kubelet waits (10 s, doubling to 5 min) before pulling again;
- an env ``secretKeyRef`` to a missing secret or key is ``CreateContainerConfigError``;
- a container that exits is restarted after a back-off (10 s, doubling to 5 min) during which
  it waits as ``CrashLoopBackOff``, with ``lastState.terminated`` and ``restartCount``;
- the readiness probe (HTTP GET on the pod IP) sets the Ready and ContainersReady conditions
  after ``successThreshold`` successes and clears them after ``failureThreshold`` misses;
- a pod marked for deletion has its container stopped (``terminationGracePeriodSeconds``) and
  is then removed;
- the events it records are the kubelet's: Scheduled, Pulling, Pulled, Failed, BackOff,
  Created, Started, Unhealthy, Killing.

Every container carries the label ``org.cloudship.fake-kubernetes.cluster=<id>`` and is
removed with the cluster.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cloudship_kubernetes.fake.store import ApiError, Obj, Store, now

if TYPE_CHECKING:
    from docker import DockerClient

CLUSTER_LABEL = "org.cloudship.fake-kubernetes.cluster"
POD_LABEL = "org.cloudship.fake-kubernetes.pod"
NODE = "cloudship-fake-node"
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0


def _memory(text: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3, "k": 1000, "M": 1000**2, "G": 1000**3}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * factor)
    return int(text)


def _cpu(text: str) -> float:
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


class PodWorker:
    """One pod's life on the node, on its own thread."""

    def __init__(self, kubelet: Kubelet, pod: Obj) -> None:
        self.kubelet, self.namespace, self.name = (
            kubelet,
            pod["metadata"]["namespace"],
            pod["metadata"]["name"],
        )
        self.uid = pod["metadata"]["uid"]
        self.container_id: str | None = None
        self.thread = threading.Thread(target=self.run, daemon=True, name=f"pod-{self.name}")

    # -- helpers -----------------------------------------------------------------------------

    @property
    def pods(self) -> Any:
        return self.kubelet.store.kind("pods")

    def pod(self) -> Obj | None:
        return self.kubelet.store.find(self.pods, self.namespace, self.name)

    def deleting(self) -> bool:
        pod = self.pod()
        return (
            pod is None
            or bool(pod["metadata"].get("deletionTimestamp"))
            or self.kubelet.stopping.is_set()
        )

    def status(self, **changes: Any) -> None:
        def change(obj: Obj) -> None:
            status = obj.setdefault("status", {})
            status.update(changes)

        self.kubelet.store.update(self.pods, self.namespace, self.name, change)

    def container_status(
        self,
        container: Obj,
        state: Obj,
        *,
        ready: bool = False,
        restarts: int = 0,
        last: Obj | None = None,
        image_id: str = "",
    ) -> None:
        entry: Obj = {
            "name": container["name"],
            "image": container["image"],
            "imageID": image_id,
            "ready": ready,
            "restartCount": restarts,
            "started": "running" in state,
            "state": state,
            "lastState": last or {},
        }
        if self.container_id:
            entry["containerID"] = f"docker://{self.container_id}"
        ready_text = "True" if ready else "False"
        stamp = now()
        conditions = [
            {"type": "PodReadyToStartContainers", "status": "True", "lastTransitionTime": stamp},
            {"type": "Initialized", "status": "True", "lastTransitionTime": stamp},
            {"type": "Ready", "status": ready_text, "lastTransitionTime": stamp},
            {"type": "ContainersReady", "status": ready_text, "lastTransitionTime": stamp},
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
        ]
        if not ready:
            for cond in conditions[2:4]:
                cond["reason"] = "ContainersNotReady"
                cond["message"] = f"containers with unready status: [{container['name']}]"

        def change(obj: Obj) -> None:
            status = obj.setdefault("status", {})
            old = {c["type"]: c for c in status.get("conditions") or []}
            for cond in conditions:  # keep transition times of conditions that did not flip
                before = old.get(cond["type"])
                if before and before.get("status") == cond["status"]:
                    cond["lastTransitionTime"] = before["lastTransitionTime"]
            status["conditions"] = conditions
            status["containerStatuses"] = [entry]
            status["phase"] = "Running" if "running" in state or last else "Pending"

        self.kubelet.store.update(self.pods, self.namespace, self.name, change)

    def unready(self) -> None:
        """A terminating pod stops being Ready at once, so Services and ``kubectl logs``
        move on (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination)."""

        def change(obj: Obj) -> None:
            for cond in (obj.get("status") or {}).get("conditions") or []:
                if cond.get("type") in ("Ready", "ContainersReady") and cond["status"] == "True":
                    cond.update(status="False", lastTransitionTime=now())
            for container in (obj.get("status") or {}).get("containerStatuses") or []:
                container["ready"] = False

        with contextlib.suppress(ApiError):
            self.kubelet.store.update(self.pods, self.namespace, self.name, change)

    def event(self, kind: str, reason: str, message: str) -> None:
        pod = self.pod()
        if pod is not None:
            self.kubelet.record(pod, kind, reason, message, "kubelet")

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the pod is deleted first; True when it was."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.deleting():
                return True
            time.sleep(min(0.1, max(end - time.monotonic(), 0)))
        return self.deleting()

    # -- the pod's life ----------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except ApiError:
            pass  # the pod was removed under us
        finally:
            self.terminate()

    def _run(self) -> None:
        pod = self.pod()
        if pod is None:
            return
        container = pod["spec"]["containers"][0]

        def schedule(obj: Obj) -> None:
            obj["spec"]["nodeName"] = NODE
            obj.setdefault("status", {}).update(
                {
                    "phase": "Pending",
                    "hostIP": "127.0.0.1",
                    "startTime": now(),
                    "qosClass": "Burstable" if container.get("resources") else "BestEffort",
                    "conditions": [
                        {"type": "PodScheduled", "status": "True", "lastTransitionTime": now()}
                    ],
                }
            )

        self.kubelet.store.update(self.pods, self.namespace, self.name, schedule)
        self.event(
            "Normal", "Scheduled", f"Successfully assigned {self.namespace}/{self.name} to {NODE}"
        )
        image_id = self.pull(pod, container)
        if image_id is None:
            return
        env = self.environment(pod, container)
        if env is None:
            return
        restarts, backoff = 0, BACKOFF_START
        last: Obj | None = None
        started = self.start(pod, container, env)
        if started is None:
            return
        while not self.deleting():
            exited = self.watch_running(container, restarts, last, image_id)
            if exited is None:
                return
            restarts += 1
            last = {"terminated": exited}
            pod_id = f"{self.name}_{self.namespace}({self.uid})"
            name = container["name"]
            message = f"back-off {int(backoff)}s restarting failed container={name} pod={pod_id}"
            self.container_status(
                container,
                {"waiting": {"reason": "CrashLoopBackOff", "message": message}},
                restarts=restarts,
                last=last,
                image_id=image_id,
            )
            self.event(
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {name} in pod {pod_id}",
            )
            if self.sleep(backoff):
                return
            backoff = min(backoff * 2, BACKOFF_MAX)
            with contextlib.suppress(Exception):
                self.kubelet.client.api.start(self.container_id)
            self.event("Normal", "Started", f"Started container {container['name']}")

    def pull(self, pod: Obj, container: Obj) -> str | None:
        from docker.errors import DockerException

        image = container["image"]
        backoff = BACKOFF_START
        while not self.deleting():
            self.event("Normal", "Pulling", f'Pulling image "{image}"')
            began = time.monotonic()
            try:
                repository, _, digest = image.partition("@")
                if not digest:
                    repository, _, tag = (
                        image.rpartition(":")
                        if ":" in image.rsplit("/", 1)[-1]
                        else (image, "", "latest")
                    )
                    digest = tag or "latest"
                self.kubelet.client.api.pull(
                    repository, digest, auth_config=self.kubelet.pull_auth(pod, image)
                )
                found = self.kubelet.client.images.get(image)
                self.kubelet.pulled.add(image)
                self.event(
                    "Normal",
                    "Pulled",
                    f'Successfully pulled image "{image}" in {time.monotonic() - began:.3f}s',
                )
                return str(found.id)
            except DockerException as exc:
                why = str(getattr(exc, "explanation", None) or exc).splitlines()[0]
                message = f'Failed to pull image "{image}": {why}'
                self.event("Warning", "Failed", message)
                self.event("Warning", "Failed", "Error: ErrImagePull")
                self.container_status(
                    container, {"waiting": {"reason": "ErrImagePull", "message": message}}
                )
                if self.sleep(1.0):
                    return None
                self.container_status(
                    container,
                    {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": f'Back-off pulling image "{image}"',
                        }
                    },
                )
                self.event("Normal", "BackOff", f'Back-off pulling image "{image}"')
                if self.sleep(backoff):
                    return None
                backoff = min(backoff * 2, BACKOFF_MAX)
        return None

    def environment(self, pod: Obj, container: Obj) -> dict[str, str] | None:
        while not self.deleting():
            env: dict[str, str] = {}
            problem = None
            for item in container.get("env") or []:
                if "value" in item:
                    env[item["name"]] = item["value"]
                    continue
                ref = (item.get("valueFrom") or {}).get("secretKeyRef") or {}
                secret = self.kubelet.store.find(
                    self.kubelet.store.kind("secrets"), self.namespace, ref.get("name", "")
                )
                if secret is None:
                    problem = f'secret "{ref.get("name")}" not found'
                elif ref.get("key") not in (secret.get("data") or {}):
                    problem = (
                        f"couldn't find key {ref.get('key')} in Secret "
                        f"{self.namespace}/{ref.get('name')}"
                    )
                else:
                    env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
            if problem is None:
                return env
            self.container_status(
                container, {"waiting": {"reason": "CreateContainerConfigError", "message": problem}}
            )
            self.event("Warning", "Failed", f"Error: {problem}")
            if self.sleep(2.0):
                return None
        return None

    def start(self, pod: Obj, container: Obj, env: dict[str, str]) -> str | None:
        from docker.errors import DockerException

        limits = (container.get("resources") or {}).get("limits") or {}
        options: dict[str, Any] = {}
        if "memory" in limits:
            options["mem_limit"] = _memory(limits["memory"])
        if "cpu" in limits:
            options["nano_cpus"] = int(_cpu(limits["cpu"]) * 1e9)
        try:
            created = self.kubelet.client.containers.run(
                container["image"],
                command=(
                    container.get("args") and [*container.get("command", []), *container["args"]]
                )
                or container.get("command"),
                detach=True,
                environment=env,
                labels={
                    CLUSTER_LABEL: self.kubelet.cluster_id,
                    POD_LABEL: f"{self.namespace}/{self.name}",
                },
                **options,
            )
        except DockerException as exc:
            why = str(getattr(exc, "explanation", None) or exc).splitlines()[0]
            self.container_status(
                container, {"waiting": {"reason": "CreateContainerError", "message": why}}
            )
            self.event("Warning", "Failed", f"Error: {why}")
            return None
        self.container_id = created.id
        self.event("Normal", "Created", f"Created container: {container['name']}")
        self.event("Normal", "Started", f"Started container {container['name']}")
        created.reload()
        networks: list[dict[str, Any]] = list(created.attrs["NetworkSettings"]["Networks"].values())
        address = str(networks[0].get("IPAddress", "")) if networks else ""
        self.status(podIP=address, podIPs=[{"ip": address}] if address else [])
        return str(created.id)

    def watch_running(
        self, container: Obj, restarts: int, last: Obj | None, image_id: str
    ) -> Obj | None:
        """Probe until the container exits (its terminated state) or the pod is deleted (None)."""
        from docker.errors import NotFound

        probe = container.get("readinessProbe")
        period = (probe or {}).get("periodSeconds", 10)
        failures_allowed = (probe or {}).get("failureThreshold", 3)
        needed = (probe or {}).get("successThreshold", 1)
        delay = (probe or {}).get("initialDelaySeconds", 0)
        ready, successes, misses = probe is None, 0, 0
        started_at = now()
        self.container_status(
            container,
            {"running": {"startedAt": started_at}},
            ready=ready,
            restarts=restarts,
            last=last,
            image_id=image_id,
        )
        first = time.monotonic() + delay
        while not self.deleting():
            try:
                state = self.kubelet.client.api.inspect_container(self.container_id)["State"]
            except NotFound:
                return {
                    "exitCode": 137,
                    "reason": "ContainerCannotRun",
                    "startedAt": started_at,
                    "finishedAt": now(),
                }
            if not state.get("Running"):
                code = int(state.get("ExitCode", 0))
                return {
                    "exitCode": code,
                    "reason": "Completed"
                    if code == 0
                    else ("OOMKilled" if state.get("OOMKilled") else "Error"),
                    "startedAt": started_at,
                    "finishedAt": now(),
                    "containerID": f"docker://{self.container_id}",
                }
            if probe is not None and time.monotonic() >= first:
                ok, why = self.probe(probe, container)
                was = ready
                if ok:
                    successes, misses = successes + 1, 0
                    ready = ready or successes >= needed
                else:
                    successes, misses = 0, misses + 1
                    if misses >= failures_allowed:
                        ready = False
                    self.event("Warning", "Unhealthy", f"Readiness probe failed: {why}")
                if ready != was:
                    self.container_status(
                        container,
                        {"running": {"startedAt": started_at}},
                        ready=ready,
                        restarts=restarts,
                        last=last,
                        image_id=image_id,
                    )
            if self.sleep(min(period, 1.0) if not ready else period):
                return None
        return None

    def probe(self, probe: Obj, container: Obj) -> tuple[bool, str]:
        pod = self.pod() or {}
        address = (pod.get("status") or {}).get("podIP")
        check = probe.get("httpGet")
        if not address or check is None:
            return (check is None), "no pod IP yet"
        port = check.get("port")
        if isinstance(port, str):
            port = next(
                (p["containerPort"] for p in container.get("ports") or [] if p.get("name") == port),
                0,
            )
        url = f"http://{address}:{port}{check.get('path', '/')}"
        try:
            with urllib.request.urlopen(url, timeout=probe.get("timeoutSeconds", 1)) as answer:
                return (
                    200 <= answer.status < 400,
                    f"HTTP probe failed with statuscode: {answer.status}",
                )
        except urllib.error.HTTPError as exc:
            return False, f"HTTP probe failed with statuscode: {exc.code}"
        except OSError as exc:
            return False, f'Get "{url}": {exc}'

    def terminate(self) -> None:
        from docker.errors import DockerException

        pod = self.pod()
        grace = int(((pod or {}).get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        if pod is not None and pod["metadata"].get("deletionTimestamp"):
            self.unready()
        if self.container_id:
            if pod is not None:
                self.event(
                    "Normal",
                    "Killing",
                    f"Stopping container {pod['spec']['containers'][0]['name']}",
                )
            with contextlib.suppress(DockerException):
                # A cluster shutting down (the test is over) kills at once.
                wait = 0 if self.kubelet.stopping.is_set() else min(grace, 10)
                self.kubelet.client.api.stop(self.container_id, timeout=wait)
            with contextlib.suppress(DockerException):
                self.kubelet.client.api.remove_container(self.container_id, force=True)
        if pod is not None and (
            pod["metadata"].get("deletionTimestamp") or self.kubelet.stopping.is_set()
        ):
            with contextlib.suppress(ApiError):
                self.kubelet.store.delete(self.pods, self.namespace, self.name)
        self.kubelet.done(self.uid)


class Kubelet:
    """Starts a ``PodWorker`` for each new pod; keeps container logs readable."""

    def __init__(
        self,
        store: Store,
        record: Any,
        cluster_id: str,
        client: DockerClient | None = None,
        node_credentials: Callable[[str], dict[str, str] | None] | None = None,
    ) -> None:
        self.store, self.record, self.cluster_id = store, record, cluster_id
        self._client = client
        self.node_credentials = node_credentials or (lambda host: None)
        self.stopping = threading.Event()
        self.workers: dict[str, PodWorker] = {}
        self.pulled: set[str] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fake-k8s-kubelet")

    @property
    def client(self) -> DockerClient:
        """The engine, connected on the first pod (a cluster that runs none needs none)."""
        if self._client is None:
            import docker

            self._client = docker.from_env()
        return self._client

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        pods = self.store.kind("pods")
        while not self.stopping.wait(0.1):
            for pod in self.store.list(pods, None):
                uid = pod["metadata"]["uid"]
                with self._lock:
                    if uid in self.workers:
                        continue
                    if pod["metadata"].get("deletionTimestamp"):
                        with contextlib.suppress(ApiError):
                            self.store.delete(
                                pods, pod["metadata"]["namespace"], pod["metadata"]["name"]
                            )
                        continue
                    worker = self.workers[uid] = PodWorker(self, pod)
                worker.thread.start()

    def done(self, uid: str) -> None:
        with self._lock:
            self.workers.pop(uid, None)

    def pull_auth(self, pod: Obj, image: str) -> dict[str, str] | None:
        host = image.split("/", 1)[0]
        for ref in pod["spec"].get("imagePullSecrets") or []:
            secret = self.store.find(
                self.store.kind("secrets"), pod["metadata"]["namespace"], ref.get("name", "")
            )
            if secret is None or secret.get("type") != "kubernetes.io/dockerconfigjson":
                continue
            config = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
            entry = (config.get("auths") or {}).get(host)
            if entry:
                return {
                    "username": entry["username"],
                    "password": entry["password"],
                    "serveraddress": host,
                }
        # No pull secret for the host: the node's own credentials, as a kubelet credential
        # provider gives them (AKS: the kubelet identity's ACR token; EKS: the node role's)
        # https://kubernetes.io/docs/tasks/administer-cluster/kubelet-credential-provider/
        return self.node_credentials(host)

    def logs(self, namespace: str, name: str, tail: int | None) -> str:
        pod = self.store.get(self.store.kind("pods"), namespace, name)
        with self._lock:
            worker = self.workers.get(pod["metadata"]["uid"])
        if worker is None or worker.container_id is None:
            container = pod["spec"]["containers"][0]["name"]
            raise ApiError(
                400,
                "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: ContainerCreating',
            )
        raw = self.client.api.logs(worker.container_id, tail=tail if tail is not None else "all")
        return bytes(raw).decode(errors="replace")

    def stop(self) -> None:
        from docker.errors import DockerException

        self.stopping.set()
        self._thread.join(timeout=5)
        with self._lock:
            workers = list(self.workers.values())
        if self._client is None:
            return
        # Containers first (force: no grace period for a cluster that is going away), so the
        # workers waiting on a graceful stop return at once.
        for container in self.client.containers.list(
            all=True, filters={"label": f"{CLUSTER_LABEL}={self.cluster_id}"}
        ):
            with contextlib.suppress(DockerException):
                container.remove(force=True)
        for worker in workers:
            worker.thread.join(timeout=15)
        for image in self.pulled:
            with contextlib.suppress(DockerException):
                self.client.images.remove(image)
