"""A strict, stateful Kubernetes API server fake that runs pods on the local Docker engine.

``FakeCluster`` is the entry point (``cloudship_kubernetes.testing`` re-exports it). Modules:
``store`` (objects, versions, selectors), ``validation`` (what the API server refuses),
``controllers`` (Deployment, ReplicaSet, garbage collector), ``kubelet`` (pods as containers),
``network`` (Services and load balancers), ``tables`` (kubectl's server-side printing),
``server`` (HTTPS, discovery, watch, logs).
"""

from cloudship_kubernetes.fake.server import FakeCluster

__all__ = ["FakeCluster"]
