"""Proves the local control plane behaves like a real cluster where the operator relies on it.

Each test exercises one piece of genuine Kubernetes behaviour the operator's e2e tests will
lean on (scheduling with topology spread, PVC binding and expansion, admission, garbage
collection, namespace finalisation, CEL transition rules, API-server restarts), through the
real API with kr8s: no mocks anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import kr8s
import pytest
from kr8s.asyncio.objects import (
    ConfigMap,
    Job,
    Namespace,
    Node,
    PersistentVolumeClaim,
    Pod,
    StatefulSet,
)

from e2e.controlplane import FIXED_CLASS, STANDARD_CLASS, ZONES
from e2e.fake_storage import parse_quantity
from e2e.harness import KubeCluster, delete_quietly, eventually, fetch, status_of

pytestmark = pytest.mark.timeout(180)

IMAGE = "registry.invalid/e2e/pause:1"  # never pulled: kwok plays the kubelet
RESTRICTED_SECURITY: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _status_code(err: kr8s.ServerError) -> int:
    assert err.response is not None, err
    return int(err.response.status_code)


def _pvc(name: str, namespace: str, size: str, storage_class: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": size}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": name, "namespace": namespace}, "spec": spec}


async def _bound_pvc(api: Any, name: str, namespace: str) -> Any:
    async def bound() -> Any:
        pvc = await fetch(PersistentVolumeClaim, name, namespace=namespace, api=api)
        return pvc if status_of(pvc).get("phase") == "Bound" else None

    return await eventually(bound, within=60, what=f"PVC {namespace}/{name} to be Bound")


async def test_fake_nodes_are_ready_one_per_zone(kube: KubeCluster) -> None:
    if kube.control_plane is None:
        pytest.skip("fake kwok nodes exist only on the local control plane")
    api = await kube.api()
    nodes = [n async for n in api.get(Node, label_selector={"type": "kwok"})]
    zones = sorted(n.labels["topology.kubernetes.io/zone"] for n in nodes)
    assert zones == sorted(ZONES)
    for node in nodes:
        ready = [c for c in node.raw["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node.raw["status"]
        assert parse_quantity(node.raw["status"]["allocatable"]["pods"]) >= 1000


async def test_statefulset_spreads_over_zones_with_bound_claims(
    kube: KubeCluster, namespace: str
) -> None:
    api = await kube.api()
    labels = {"app": "spread"}
    sts = StatefulSet(
        {
            "metadata": {"name": "spread", "namespace": namespace},
            "spec": {
                "replicas": 3,
                "serviceName": "spread",
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "topologySpreadConstraints": [
                            {
                                "maxSkew": 1,
                                "topologyKey": "topology.kubernetes.io/zone",
                                "whenUnsatisfiable": "DoNotSchedule",
                                "labelSelector": {"matchLabels": labels},
                            }
                        ],
                        "containers": [
                            {
                                "name": "main",
                                "image": IMAGE,
                                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                            }
                        ],
                    },
                },
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "1Gi"}},
                        },
                    }
                ],
            },
        },
        api=api,
    )
    await sts.create()

    async def three_ready() -> list[Any] | None:
        pods = [p async for p in api.get(Pod, namespace=namespace, label_selector=labels)]
        ready = [
            p
            for p in pods
            if status_of(p).get("phase") == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.raw["status"].get("conditions", [])
            )
        ]
        return ready if len(ready) == 3 else None

    pods = await eventually(three_ready, within=90, what="3 Ready StatefulSet pods")
    assert all(p.raw["status"].get("podIP") for p in pods)
    node_zone = {n.name: n.labels["topology.kubernetes.io/zone"] async for n in api.get(Node)}
    zones = {node_zone[p.raw["spec"]["nodeName"]] for p in pods}
    assert len(zones) == 3, f"pods not spread over three zones: {zones}"

    for i in range(3):
        pvc = await _bound_pvc(api, f"data-spread-{i}", namespace)
        assert pvc.raw["spec"]["storageClassName"] == STANDARD_CLASS  # the default class
        assert pvc.raw["status"]["capacity"]["storage"] == "1Gi"

    async def sts_ready() -> bool:
        await sts.refresh()
        return bool(status_of(sts).get("readyReplicas") == 3)

    await eventually(sts_ready, within=60, what="StatefulSet readyReplicas == 3")


async def test_pvc_expansion_on_expandable_class_reaches_new_capacity(
    kube: KubeCluster, namespace: str
) -> None:
    api = await kube.api()
    pvc = PersistentVolumeClaim(_pvc("grow", namespace, "1Gi", STANDARD_CLASS), api=api)
    await pvc.create()
    await _bound_pvc(api, "grow", namespace)

    await pvc.patch({"spec": {"resources": {"requests": {"storage": "3Gi"}}}})
    seen_conditions: set[str] = set()

    async def grown() -> bool:
        await pvc.refresh()
        status = status_of(pvc)
        seen_conditions.update(c["type"] for c in status.get("conditions", []))
        return bool(status.get("capacity", {}).get("storage") == "3Gi")

    await eventually(grown, within=60, what="PVC status.capacity to reach 3Gi", interval=0.1)
    assert not pvc.raw["status"].get("conditions"), "resize conditions must be cleared at the end"
    # The fake resizer walks through both conditions; a fast poll normally sees at least one.
    assert seen_conditions <= {"Resizing", "FileSystemResizePending"}


async def test_pvc_expansion_on_fixed_class_is_refused(kube: KubeCluster, namespace: str) -> None:
    api = await kube.api()
    pvc = PersistentVolumeClaim(_pvc("fixed", namespace, "1Gi", FIXED_CLASS), api=api)
    await pvc.create()
    await _bound_pvc(api, "fixed", namespace)
    with pytest.raises(kr8s.ServerError) as refused:
        await pvc.patch({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})
    assert _status_code(refused.value) == 403
    assert "must support resize" in str(refused.value)
    await pvc.refresh()
    assert pvc.raw["spec"]["resources"]["requests"]["storage"] == "1Gi"


async def test_deleting_owner_garbage_collects_dependents(
    kube: KubeCluster, namespace: str
) -> None:
    api = await kube.api()
    owner = ConfigMap({"metadata": {"name": "owner", "namespace": namespace}}, api=api)
    await owner.create()
    ref = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    dependents = []
    for i in range(3):
        dep = ConfigMap(
            {"metadata": {"name": f"dep-{i}", "namespace": namespace, "ownerReferences": [ref]}},
            api=api,
        )
        await dep.create()
        dependents.append(dep)
    await owner.delete(propagation_policy="Background")

    async def all_gone() -> bool:
        return not any([await d.exists() for d in dependents])

    await eventually(all_gone, within=60, what="the garbage collector to delete dependents")


async def test_job_pods_complete(kube: KubeCluster, namespace: str) -> None:
    api = await kube.api()
    job = Job(
        {
            "metadata": {"name": "once", "namespace": namespace},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "spec": {
                        "restartPolicy": "Never",
                        "containers": [{"name": "main", "image": IMAGE}],
                    }
                },
            },
        },
        api=api,
    )
    await job.create()

    async def succeeded() -> bool:
        await job.refresh()
        return bool(status_of(job).get("succeeded") == 1)

    await eventually(succeeded, within=60, what="the Job to succeed")


async def test_namespace_deletion_completes(kube: KubeCluster, name_prefix: str) -> None:
    api = await kube.api()
    ns = Namespace({"metadata": {"name": name_prefix}}, api=api)
    await ns.create()

    async def default_sa() -> bool:
        async with api.call_api(
            "GET", version="v1", namespace=name_prefix, url="serviceaccounts/default"
        ):
            return True

    await eventually(default_sa, within=60, what="the default ServiceAccount")
    await ConfigMap({"metadata": {"name": "c", "namespace": name_prefix}}, api=api).create()
    await PersistentVolumeClaim(_pvc("p", name_prefix, "1Gi", None), api=api).create()
    pod = Pod(
        {
            "metadata": {"name": "p", "namespace": name_prefix},
            "spec": {
                # The namespace controller re-checks after grace/2 + 1 s while pods remain
                # (16 s for the default 30 s grace); a short grace keeps this test quick.
                "terminationGracePeriodSeconds": 2,
                "containers": [{"name": "main", "image": IMAGE}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "p"}}],
            },
        },
        api=api,
    )
    await pod.create()

    async def running() -> bool:
        await pod.refresh()
        return bool(status_of(pod).get("phase") == "Running")

    await eventually(running, within=60, what="the pod to run")
    await ns.delete()

    async def gone() -> bool:
        return not await ns.exists()

    await eventually(gone, within=90, what=f"namespace {name_prefix} to finish deleting")


async def test_restricted_pod_security_refuses_noncompliant_pod(
    kube: KubeCluster, name_prefix: str
) -> None:
    api = await kube.api()
    ns = Namespace(
        {
            "metadata": {
                "name": name_prefix,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            }
        },
        api=api,
    )
    await ns.create()
    try:

        async def default_sa() -> bool:
            async with api.call_api(
                "GET", version="v1", namespace=name_prefix, url="serviceaccounts/default"
            ):
                return True

        await eventually(default_sa, within=60, what="the default ServiceAccount")
        bad = Pod(
            {
                "metadata": {"name": "bad", "namespace": name_prefix},
                "spec": {"containers": [{"name": "main", "image": IMAGE}]},
            },
            api=api,
        )
        with pytest.raises(kr8s.ServerError) as refused:
            await bad.create()
        assert _status_code(refused.value) == 403
        assert "violates PodSecurity" in str(refused.value)

        good = Pod(
            {
                "metadata": {"name": "good", "namespace": name_prefix},
                "spec": {
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {"name": "main", "image": IMAGE, "securityContext": RESTRICTED_SECURITY}
                    ],
                },
            },
            api=api,
        )
        await good.create()
        assert await good.exists()
    finally:
        await delete_quietly(ns)


async def test_crd_cel_transition_rule_rejects_decrease(
    kube: KubeCluster, namespace: str, name_prefix: str
) -> None:
    api = await kube.api()
    group = f"{name_prefix}.e2e.restate.dev"
    crd_name = f"widgets.{group}"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {
                                            "type": "integer",
                                            "x-kubernetes-validations": [
                                                {
                                                    "rule": "self >= oldSelf",
                                                    "message": "size may not decrease",
                                                }
                                            ],
                                        }
                                    },
                                }
                            },
                        }
                    },
                }
            ],
        },
    }
    async with api.call_api(
        "POST", version="apiextensions.k8s.io/v1", url="customresourcedefinitions", json=crd
    ):
        pass
    crd_url = f"customresourcedefinitions/{crd_name}"
    try:

        async def established() -> bool:
            async with api.call_api(
                "GET", version="apiextensions.k8s.io/v1", url=crd_url
            ) as response:
                conditions = response.json().get("status", {}).get("conditions", [])
            return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

        await eventually(established, within=60, what=f"CRD {crd_name} to be Established")
        version = f"{group}/v1"
        widget = {
            "apiVersion": version,
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 3},
        }

        async def create_widget() -> bool:
            # Discovery of a fresh CRD can lag Established by a moment.
            async with api.call_api(
                "POST", version=version, namespace=namespace, url="widgets", json=widget
            ):
                return True

        await eventually(create_widget, within=30, what="the first Widget to be created")

        async def patch_size(size: int) -> None:
            async with api.call_api(
                "PATCH",
                version=version,
                namespace=namespace,
                url="widgets/w",
                content=f'{{"spec": {{"size": {size}}}}}',
                headers={"Content-Type": "application/merge-patch+json"},
            ):
                pass

        with pytest.raises(kr8s.ServerError) as refused:
            await patch_size(2)
        assert _status_code(refused.value) == 422
        assert "size may not decrease" in str(refused.value)
        await patch_size(5)  # growing is fine
    finally:
        with contextlib.suppress(kr8s.ServerError):
            async with api.call_api("DELETE", version="apiextensions.k8s.io/v1", url=crd_url):
                pass


@pytest.mark.timeout(240)
async def test_apiserver_restart_is_survived(kube: KubeCluster, namespace: str) -> None:
    if kube.control_plane is None:
        pytest.skip("only the local control plane can restart its API server")
    cp = kube.control_plane
    api = await kube.api()
    before = ConfigMap(
        {"metadata": {"name": "before", "namespace": namespace}, "data": {"k": "v"}}, api=api
    )
    await before.create()

    await asyncio.to_thread(cp.stop_apiserver)
    # The server is down: the connection fails (httpx) or, on a stale one, times out (kr8s).
    with pytest.raises((httpx.TransportError, kr8s.APITimeoutError)):
        await fetch(ConfigMap, "before", namespace=namespace, api=api)
    await asyncio.sleep(3)
    await asyncio.to_thread(cp.start_apiserver)
    await kube.wait_ready(within=60)

    again = await fetch(ConfigMap, "before", namespace=namespace, api=api)
    assert again.raw["data"] == {"k": "v"}  # etcd kept the data
    after = ConfigMap({"metadata": {"name": "after", "namespace": namespace}}, api=api)
    await after.create()

    # The controllers reconnected too: a new pod still gets scheduled and started by kwok,
    # and the old API client keeps working after restart_apiserver() as well.
    pod = Pod(
        {
            "metadata": {"name": "after-restart", "namespace": namespace},
            "spec": {"containers": [{"name": "main", "image": IMAGE}]},
        },
        api=api,
    )
    await pod.create()

    async def running() -> bool:
        await pod.refresh()
        return bool(status_of(pod).get("phase") == "Running")

    await eventually(running, within=90, what="a pod created after the restart to run")
    await asyncio.to_thread(cp.restart_apiserver, 1.0)
    await kube.wait_ready(within=60)
    assert await after.exists()
