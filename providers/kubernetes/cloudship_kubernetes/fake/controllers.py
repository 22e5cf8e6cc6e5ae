"""The Deployment and ReplicaSet controllers and the garbage collector, as the fake runs them.

Modelled on pkg/controller/deployment (sync.go, rolling.go, progress.go) and
pkg/controller/replicaset of kubernetes/kubernetes, and on
https://kubernetes.io/docs/concepts/workloads/controllers/deployment/:

- each distinct pod template gets its own ReplicaSet named ``<deployment>-<pod-template-hash>``,
  the hash also added to its selector and template labels; a template equal to an old
  ReplicaSet's (a rollback) scales that ReplicaSet up again, and the
  ``deployment.kubernetes.io/revision`` annotation moves to it as the newest revision;
- a rolling update never has more than ``replicas + maxSurge`` pods, nor fewer than
  ``replicas - maxUnavailable`` available ones: old ReplicaSets shrink only as new pods become
  available (unhealthy old pods are cleaned up first);
- status: observedGeneration, replicas, updatedReplicas, readyReplicas, availableReplicas,
  unavailableReplicas, and the Available and Progressing conditions with the reasons the
  controller uses (NewReplicaSetCreated, FoundNewReplicaSet, ReplicaSetUpdated,
  NewReplicaSetAvailable, ProgressDeadlineExceeded after ``progressDeadlineSeconds`` without
  progress: https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#failed-deployment);
- old ReplicaSets beyond ``revisionHistoryLimit`` (default 10) are deleted;
- the ReplicaSet controller creates and deletes pods to match ``replicas`` (not-ready pods
  first), counting Ready pods as available (minReadySeconds 0);
- dependents whose owner is gone are deleted (background cascading deletion);
- HorizontalPodAutoscalers are reconciled by ``autoscaler``.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import threading
from datetime import datetime
from typing import Any

from cloudship_kubernetes.fake.autoscaler import Autoscaler
from cloudship_kubernetes.fake.store import ApiError, Obj, Store, now

REVISION = "deployment.kubernetes.io/revision"
HASH = "pod-template-hash"


def template_hash(template: Obj) -> str:
    """A short stable hash of a pod template (Kubernetes uses FNV-32a, encoded safely)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.SafeEncodeString
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def _scaled(value: Any, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * replicas / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


def _ts(text: str | None) -> float:
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _status(obj: Obj) -> Obj:
    return dict(obj.get("status") or {})


def owned_by(obj: Obj, owner: Obj) -> bool:
    return any(
        ref.get("uid") == owner["metadata"]["uid"]
        for ref in obj["metadata"].get("ownerReferences") or []
    )


def _owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_ready(pod: Obj) -> bool:
    if pod["metadata"].get("deletionTimestamp"):
        return False
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or []
    )


class Controllers:
    """Runs every controller once per ``interval`` on a daemon thread."""

    def __init__(self, store: Store, record: Any, interval: float = 0.1) -> None:
        self.store, self.record, self.interval = store, record, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fake-k8s-controllers")
        self._k = {k: store.kind(k) for k in ("deployments", "replicasets", "pods", "events")}
        self.autoscaler = Autoscaler(store, record)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except ApiError:
                continue  # an object vanished mid-sync: the next tick sees the new state

    def tick(self) -> None:
        for deployment in self.store.list(self._k["deployments"], None):
            self.sync_deployment(deployment)
        for rs in self.store.list(self._k["replicasets"], None):
            self.sync_replicaset(rs)
        self.autoscaler.tick()
        self.collect_garbage()

    # -- Deployment ------------------------------------------------------------------------

    def _scale(self, deployment: Obj, rs: Obj, replicas: int) -> None:
        before = rs["spec"]["replicas"]
        if before == replicas:
            return
        meta = rs["metadata"]

        def change(obj: Obj) -> None:
            obj["spec"]["replicas"] = replicas
            obj["metadata"].setdefault("annotations", {})[
                "deployment.kubernetes.io/desired-replicas"
            ] = str(deployment["spec"].get("replicas", 1))

        self.store.update(self._k["replicasets"], meta["namespace"], meta["name"], change)
        rs["spec"]["replicas"] = replicas
        way = "up" if replicas > before else "down"
        self.record(
            deployment,
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {way} replica set {meta['name']} from {before} to {replicas}",
            "deployment-controller",
        )

    def sync_deployment(self, deployment: Obj) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        namespace, name = meta["namespace"], meta["name"]
        rs_kind = self._k["replicasets"]
        owned = [rs for rs in self.store.list(rs_kind, namespace) if owned_by(rs, deployment)]
        template = spec["template"]
        wanted_hash = template_hash(template)
        new = next((rs for rs in owned if rs["metadata"]["labels"].get(HASH) == wanted_hash), None)
        top = max(
            (int(rs["metadata"].get("annotations", {}).get(REVISION, "0")) for rs in owned),
            default=0,
        )
        replicas = spec.get("replicas", 1)
        created = False
        if new is None:
            labels = {**(template["metadata"].get("labels") or {}), HASH: wanted_hash}
            rs_template = json.loads(json.dumps(template))
            rs_template["metadata"]["labels"] = labels
            new = self.store.create(
                rs_kind,
                namespace,
                {
                    "metadata": {
                        "name": f"{name}-{wanted_hash}",
                        "labels": labels,
                        "annotations": {
                            REVISION: str(top + 1),
                            "deployment.kubernetes.io/desired-replicas": str(replicas),
                        },
                        "ownerReferences": [_owner_ref(deployment)],
                    },
                    "spec": {
                        "replicas": 0,
                        "selector": {
                            "matchLabels": {**spec["selector"]["matchLabels"], HASH: wanted_hash}
                        },
                        "template": rs_template,
                    },
                },
            )
            created = True
        elif int(new["metadata"].get("annotations", {}).get(REVISION, "0")) < top:

            def newest(obj: Obj) -> None:
                obj["metadata"].setdefault("annotations", {})[REVISION] = str(top + 1)

            new = self.store.update(rs_kind, namespace, new["metadata"]["name"], newest) or new
        old = [rs for rs in owned if rs["metadata"]["uid"] != new["metadata"]["uid"]]
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
        unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            surge, unavailable = 0, replicas
        # Scale the new ReplicaSet up within the surge (rolling.go reconcileNewReplicaSet).
        total = sum(rs["spec"]["replicas"] for rs in [new, *old])
        if new["spec"]["replicas"] > replicas:
            self._scale(deployment, new, replicas)
        elif new["spec"]["replicas"] < replicas:
            room = replicas + surge - total
            if room > 0:
                self._scale(deployment, new, min(replicas, new["spec"]["replicas"] + room))
        self._scale_down_old(deployment, new, old, replicas - unavailable)
        # History (sync.go cleanupDeployment).
        limit = spec.get("revisionHistoryLimit", 10)
        idle = [
            rs for rs in old if rs["spec"]["replicas"] == 0 and _status(rs).get("replicas", 0) == 0
        ]
        idle.sort(key=lambda r: int(r["metadata"].get("annotations", {}).get(REVISION, "0")))
        for rs in idle[: max(len(idle) - limit, 0)]:
            self.store.delete(rs_kind, namespace, rs["metadata"]["name"])
        self._deployment_status(deployment, new, old, replicas - unavailable, created)

    def _scale_down_old(
        self, deployment: Obj, new: Obj, old: list[Obj], min_available: int
    ) -> None:
        """Old ReplicaSets shrink while the minimum stays available (reconcileOldReplicaSets)."""
        all_pods = sum(rs["spec"]["replicas"] for rs in [new, *old])
        new_unavailable = new["spec"]["replicas"] - _status(new).get("availableReplicas", 0)
        budget = all_pods - min_available - new_unavailable
        for rs in sorted(old, key=lambda r: r["metadata"]["creationTimestamp"]):
            if budget <= 0:
                break
            unhealthy = rs["spec"]["replicas"] - _status(rs).get("availableReplicas", 0)
            cut = min(max(unhealthy, 0), budget)
            if cut:
                self._scale(deployment, rs, rs["spec"]["replicas"] - cut)
                budget -= cut
        available = sum(_status(rs).get("availableReplicas", 0) for rs in [new, *old])
        excess = available - min_available
        for rs in sorted(old, key=lambda r: r["metadata"]["creationTimestamp"]):
            if excess <= 0:
                break
            cut = min(rs["spec"]["replicas"], excess)
            if cut:
                self._scale(deployment, rs, rs["spec"]["replicas"] - cut)
                excess -= cut

    def _deployment_status(
        self, deployment: Obj, new: Obj, old: list[Obj], min_available: int, created: bool
    ) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        replicas = spec.get("replicas", 1)
        everything = [new, *old]
        counts = {
            "replicas": sum(_status(rs).get("replicas", 0) for rs in everything),
            "updatedReplicas": _status(new).get("replicas", 0),
            "readyReplicas": sum(_status(rs).get("readyReplicas", 0) for rs in everything),
            "availableReplicas": sum(_status(rs).get("availableReplicas", 0) for rs in everything),
        }
        counts["unavailableReplicas"] = max(
            sum(rs["spec"]["replicas"] for rs in everything) - counts["availableReplicas"], 0
        )
        rs_name = new["metadata"]["name"]
        deadline = spec.get("progressDeadlineSeconds", 600)
        stamp = now()

        def change(obj: Obj) -> None:
            status = obj.setdefault("status", {})
            before = {k: status.get(k, 0) for k in counts}
            progressed = (
                before != counts
                or created
                or status.get("observedGeneration") != meta.get("generation")
            )
            status.update({k: v for k, v in counts.items() if v or k in status})
            status["observedGeneration"] = obj["metadata"].get("generation", 1)
            conditions = {c["type"]: c for c in status.get("conditions") or []}

            def put(kind: str, value: str, reason: str, message: str, *, touch: bool) -> None:
                current = conditions.get(kind)
                if (
                    current
                    and current["status"] == value
                    and current["reason"] == reason
                    and not touch
                ):
                    return
                transition = (
                    stamp
                    if not current or current["status"] != value
                    else current["lastTransitionTime"]
                )
                conditions[kind] = {
                    "type": kind,
                    "status": value,
                    "lastUpdateTime": stamp,
                    "lastTransitionTime": transition,
                    "reason": reason,
                    "message": message,
                }

            if counts["availableReplicas"] >= min_available:
                put(
                    "Available",
                    "True",
                    "MinimumReplicasAvailable",
                    "Deployment has minimum availability.",
                    touch=False,
                )
            else:
                put(
                    "Available",
                    "False",
                    "MinimumReplicasUnavailable",
                    "Deployment does not have minimum availability.",
                    touch=False,
                )
            complete = (
                counts["updatedReplicas"] == replicas
                and counts["replicas"] == replicas
                and counts["availableReplicas"] >= replicas
            )
            current = conditions.get("Progressing")
            if complete:
                put(
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    f'ReplicaSet "{rs_name}" has successfully progressed.',
                    touch=False,
                )
            elif created:
                put(
                    "Progressing",
                    "True",
                    "NewReplicaSetCreated",
                    f'Created new replica set "{rs_name}"',
                    touch=True,
                )
            elif progressed:
                put(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{rs_name}" is progressing.',
                    touch=True,
                )
            elif (
                current
                and current["reason"] != "ProgressDeadlineExceeded"
                and current["reason"] != "NewReplicaSetAvailable"
            ):
                if _ts(current["lastUpdateTime"]) + deadline < _ts(stamp):
                    put(
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        f'ReplicaSet "{rs_name}" has timed out progressing.',
                        touch=True,
                    )
            elif (
                current
                and current["reason"] == "NewReplicaSetAvailable"
                and current["message"] != f'ReplicaSet "{rs_name}" has successfully progressed.'
            ):
                put(
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    f'ReplicaSet "{rs_name}" is progressing.',
                    touch=True,
                )
            status["conditions"] = [
                conditions[k] for k in ("Available", "Progressing") if k in conditions
            ]

        self.store.update(self._k["deployments"], meta["namespace"], meta["name"], change)

    # -- ReplicaSet ------------------------------------------------------------------------

    def sync_replicaset(self, rs: Obj) -> None:
        meta, spec = rs["metadata"], rs["spec"]
        namespace = meta["namespace"]
        pods = [p for p in self.store.list(self._k["pods"], namespace) if owned_by(p, rs)]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        wanted = spec.get("replicas", 1)
        for _ in range(wanted - len(live)):
            template = json.loads(json.dumps(spec["template"]))
            pod = self.store.create(
                self._k["pods"],
                namespace,
                {
                    "metadata": {
                        "name": f"{meta['name']}-{secrets.token_hex(3)[:5]}",
                        "labels": template["metadata"].get("labels") or {},
                        "annotations": template["metadata"].get("annotations") or {},
                        "ownerReferences": [_owner_ref(rs)],
                    },
                    "spec": template["spec"],
                },
            )
            live.append(pod)
            self.record(
                rs,
                "Normal",
                "SuccessfulCreate",
                f"Created pod: {pod['metadata']['name']}",
                "replicaset-controller",
            )
        if len(live) > wanted:
            doomed = sorted(live, key=lambda p: (pod_ready(p), p["metadata"]["creationTimestamp"]))
            for pod in doomed[: len(live) - wanted]:
                self.delete_pod(pod)
                live.remove(pod)
                self.record(
                    rs,
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    "replicaset-controller",
                )
        ready = sum(pod_ready(p) for p in live)

        def change(obj: Obj) -> None:
            status = obj.setdefault("status", {})
            status["replicas"] = len(live)
            status["fullyLabeledReplicas"] = len(live)
            status["observedGeneration"] = obj["metadata"].get("generation", 1)
            for key, value in (("readyReplicas", ready), ("availableReplicas", ready)):
                if value:
                    status[key] = value
                else:
                    status.pop(key, None)

        self.store.update(self._k["replicasets"], namespace, meta["name"], change)

    def delete_pod(self, pod: Obj) -> None:
        """Graceful deletion: the kubelet stops the container, then removes the pod."""

        def mark(obj: Obj) -> None:
            obj["metadata"].setdefault("deletionTimestamp", now())
            obj["metadata"]["deletionGracePeriodSeconds"] = obj["spec"].get(
                "terminationGracePeriodSeconds", 30
            )

        self.store.update(
            self._k["pods"], pod["metadata"]["namespace"], pod["metadata"]["name"], mark
        )

    # -- garbage collector -----------------------------------------------------------------

    def collect_garbage(self) -> None:
        uids = {
            obj["metadata"]["uid"]
            for kind in (self._k["deployments"], self._k["replicasets"])
            for obj in self.store.list(kind, None)
        }
        for kind in (self._k["replicasets"], self._k["pods"]):
            for obj in self.store.list(kind, None):
                refs = obj["metadata"].get("ownerReferences") or []
                if refs and not any(ref["uid"] in uids for ref in refs):
                    if kind.kind == "Pod":
                        if not obj["metadata"].get("deletionTimestamp"):
                            self.delete_pod(obj)
                    else:
                        self.store.delete(
                            kind, obj["metadata"]["namespace"], obj["metadata"]["name"]
                        )
