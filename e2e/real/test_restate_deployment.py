"""RestateDeployment against a real Restate on the real node, with a real SDK service.

One RestateCluster (one node) and one restricted namespace for the whole module; the SDK
service is e2e/sdk_service (PyPI's ``restate-sdk``) in the locally built ``sdk`` image. The
tests run in file order, each starting from what the previous one left:

1. v1 registers once its pod is available and answers through the cluster's ingress; v2
   rolls out while a ``Hold`` workflow invocation is pinned to v1, so v1 stays ``Draining``;
   completing it retires v1 (scaled to zero, deregistered); rolling back to v1's template
   makes v1 the latest again (Restate routes to it);
2. a breaking change (a service becoming a virtual object) is ``Rejected`` with Restate's
   META0006 text, its pods left running, the previous version still serving;
3. ``kubectl scale rsd`` scales the latest version;
4. deleting the RestateDeployment while an invocation is pinned waits for it, then removes
   every registration and the object;
5. ``register.service`` with a path prefix: the admin API behind a prefix-stripping proxy.

Every call a test makes runs inside the real node's namespace (``kubectl exec`` into a client
pod); nothing leaves the machine.
"""

from __future__ import annotations

import json
import secrets
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.operator_process import wait_for
from e2e.real.conftest import note
from e2e.real.sdk_support import CLIENT_LABELS, RSD, WAIT, Sdk, manifest, python_pod
from e2e.real.support import RealEnv, dump, restricted_namespace

PROXY_LABELS = {"role": "admin-proxy"}
PROXY_PREFIX = "/restate-admin"

# A reverse proxy that serves the admin API under PROXY_PREFIX (and nothing else), logging
# every path it is asked for: register.service.path must reach Restate through it.
PROXY = textwrap.dedent(
    """
    import http.server, sys, urllib.error, urllib.request
    PREFIX, UPSTREAM = sys.argv[1], sys.argv[2]
    class Proxy(http.server.BaseHTTPRequestHandler):
        def _forward(self):
            print("PATH", self.command, self.path, flush=True)
            if not self.path.startswith(PREFIX + "/"):
                self.send_response(404); self.end_headers(); return
            size = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(size) if size else None
            req = urllib.request.Request(
                UPSTREAM + self.path[len(PREFIX):], data=body, method=self.command)
            for h in ("content-type", "accept"):
                if self.headers.get(h):
                    req.add_header(h, self.headers[h])
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    status, data, ctype = r.status, r.read(), r.headers.get("content-type")
            except urllib.error.HTTPError as e:
                status, data, ctype = e.code, e.read(), e.headers.get("content-type")
            self.send_response(status)
            self.send_header("content-type", ctype or "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        do_GET = do_POST = do_DELETE = do_PATCH = _forward
    http.server.ThreadingHTTPServer(("0.0.0.0", 9070), Proxy).serve_forever()
    """
)


@pytest.fixture(scope="module")
def sdk(real_env: RealEnv) -> Iterator[Sdk]:
    """A one-node RestateCluster and a restricted namespace with a client pod in it."""
    suffix = secrets.token_hex(2)
    cluster, namespace = f"real-rsd-{suffix}", f"real-sdk-{suffix}"
    real_env.kubectl.apply(restricted_namespace(namespace))
    peer = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": CLIENT_LABELS},
    }
    proxy = {**peer, "podSelector": {"matchLabels": PROXY_LABELS}}
    manifest = real_env.restate_cluster(cluster)
    manifest["spec"]["security"] = {"networkPeers": {"ingress": [peer], "admin": [peer, proxy]}}
    real_env.kubectl.apply(manifest)
    handle = Sdk(real_env, cluster, namespace)
    try:
        python_pod(handle, "client", CLIENT_LABELS, "import time; time.sleep(36000)")
        real_env.wait_cluster_ready(cluster, timeout=240)
        yield handle
    finally:
        out = real_env.kubectl.run("get", "rsd", "-n", namespace, "-o", "yaml", check=False)
        (real_env.work / "rsd.yaml").write_text(out.stdout)
        real_env.kubectl.run("delete", "rsd", "--all", "-n", namespace, "--wait=false", check=False)
        real_env.delete_cluster(cluster)
        real_env.kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def capture(sdk: Sdk, what: str, *args: str) -> str:
    """kubectl output kept in the run's work dir (the docs quote it) and printed."""
    out = sdk.env.kubectl.run(*args, check=False).stdout
    (sdk.env.work / f"{what}.txt").write_text(out)
    print(f"[real] $ kubectl {' '.join(args)}\n{out}")
    return out


def test_register_drain_retire_and_roll_back(sdk: Sdk) -> None:
    kubectl = sdk.env.kubectl
    t0 = time.monotonic()
    kubectl.apply(manifest(sdk, {"SERVICE_VERSION": "v1"}))
    v1 = sdk.wait_new_latest(set())
    note("rsd: apply -> v1 Latest (pods up, registered)", time.monotonic() - t0)
    assert wait_for(lambda: sdk.which() == "v1", 60, 1.0, "Version/which answers v1")
    v1_id = sdk.version(v1)["deploymentId"]
    assert v1_id in sdk.restate_deployments()
    stable = kubectl.get("service", RSD, sdk.namespace)
    assert stable is not None and stable["spec"]["selector"]["pod-template-hash"] == v1

    # An invocation that stays open, pinned to v1.
    status, body = sdk.invoke("Hold/held-v1/run/send")
    assert status in (200, 202), body

    t1 = time.monotonic()
    kubectl.apply(manifest(sdk, {"SERVICE_VERSION": "v2"}))
    v2 = sdk.wait_new_latest({v1})
    note("rsd: new template -> v2 Latest", time.monotonic() - t1)
    assert wait_for(lambda: sdk.which() == "v2", 60, 1.0, "Version/which answers v2")
    sdk.wait_phases({v1: "Draining", v2: "Latest"})
    wait_for(lambda: sdk.version(v1).get("pinnedInvocations") == 1, WAIT, 1.0, "v1's pin in status")
    assert v1_id in sdk.restate_deployments(), "v1 deregistered while pinned"
    capture(sdk, "kubectl-get-rsd", "get", "rsd", "-n", sdk.namespace)
    capture(sdk, "kubectl-describe-rsd", "describe", "rsd", RSD, "-n", sdk.namespace)

    # Completing the held invocation (v1's pod answers it) lets v1 retire.
    status, body = sdk.invoke("Hold/held-v1/release")
    assert status == 200, body
    status, body = sdk.call("GET", f"{sdk.ingress}/restate/workflow/Hold/held-v1/output")
    assert (status, json.loads(body)) == (200, "v1"), body
    sdk.wait_phases({v1: "Retired"})
    wait_for(lambda: v1_id not in sdk.restate_deployments(), WAIT, 1.0, "v1 deregistered")
    rs = kubectl.get("replicaset", f"{RSD}-{v1}", sdk.namespace)
    assert rs is not None and rs["spec"]["replicas"] == 0

    # Rollback: v1's template again re-uses v1 and Restate routes to it again.
    kubectl.apply(manifest(sdk, {"SERVICE_VERSION": "v1"}))
    sdk.wait_phases({v1: "Latest"})
    assert wait_for(lambda: sdk.which() == "v1", 60, 1.0, "Version/which answers v1 again")
    sdk.wait_phases({v2: "Retired"})
    events = kubectl.json("get", "events", "-n", sdk.namespace)["items"]
    reasons = {
        e.get("reason") for e in events if e["involvedObject"].get("kind") == "RestateDeployment"
    }
    assert {"VersionLatest", "VersionDraining", "VersionRetired"} <= reasons, reasons


def test_a_breaking_change_is_rejected_with_restates_text(sdk: Sdk) -> None:
    kubectl = sdk.env.kubectl
    before = sdk.latest_hash()
    assert before is not None
    kubectl.apply(manifest(sdk, {"SERVICE_VERSION": "v3", "BREAKING": "1"}))

    def rejected() -> dict[str, Any] | None:
        return next((v for v in sdk.versions() if v.get("phase") == "Rejected"), None)

    bad: dict[str, Any] = wait_for(rejected, WAIT, 1.0, "a Rejected version")
    assert "META0006" in bad["message"], bad
    assert "service type" in bad["message"], bad
    # The previous version is no longer the spec's, but Restate still routes to it.
    kept = sdk.version(before)
    assert (kept.get("phase"), kept.get("reason")) == ("Draining", "LatestForServices"), kept
    assert sdk.which() == "v1", "the previous version stopped serving"
    rs = kubectl.get("replicaset", bad["name"], sdk.namespace)
    assert rs is not None and rs["spec"]["replicas"] == 1, "the rejected pods were removed"
    conditions = {c["type"]: c for c in (sdk.rsd() or {})["status"]["conditions"]}
    ready, available = conditions["Ready"], conditions["Available"]
    assert (ready["status"], ready["reason"]) == ("False", "RegistrationRejected"), ready
    assert "META0006" in ready["message"], ready
    assert available["status"] == "True", available

    # Back to a good template: v1 is still the latest and the rejected version goes.
    kubectl.apply(manifest(sdk, {"SERVICE_VERSION": "v1"}))
    wait_for(
        lambda: not any(v.get("phase") == "Rejected" for v in sdk.versions()),
        WAIT,
        1.0,
        "no Rejected version after the fix",
    )
    sdk.wait_phases({before: "Latest"})
    assert sdk.which() == "v1"


def test_kubectl_scale_scales_the_latest_version(sdk: Sdk) -> None:
    kubectl = sdk.env.kubectl
    latest = sdk.latest_hash()
    kubectl.run("scale", "rsd", RSD, "-n", sdk.namespace, "--replicas=2")

    def two_ready() -> bool:
        rs = kubectl.get("replicaset", f"{RSD}-{latest}", sdk.namespace) or {}
        return bool((rs.get("status") or {}).get("readyReplicas") == 2)

    wait_for(two_ready, WAIT, 1.0, "two ready pods of the latest version")
    status = (sdk.rsd() or {})["status"]
    wait_for(
        lambda: ((sdk.rsd() or {}).get("status") or {}).get("readyReplicas") == 2,
        60,
        1.0,
        f"status.readyReplicas 2 (have {dump(status)})",
    )
    assert sdk.latest_hash() == latest, "scaling made a new version"


def test_deletion_waits_for_a_pinned_invocation(sdk: Sdk) -> None:
    kubectl = sdk.env.kubectl
    latest = sdk.latest_hash()
    assert latest is not None
    # (A Retired version shows the id it had; Restate no longer knows it.)
    ids = {v["deploymentId"] for v in sdk.versions() if v.get("phase") in ("Latest", "Draining")}
    assert ids, dump(sdk.versions())
    status, body = sdk.invoke("Hold/held-delete/run/send")
    assert status in (200, 202), body
    kubectl.run("delete", "rsd", RSD, "-n", sdk.namespace, "--wait=false")
    # A deletion reads Restate afresh: the pinned invocation is counted in status.
    wait_for(lambda: sdk.version(latest).get("pinnedInvocations") == 1, WAIT, 1.0, "pin in status")
    obj = sdk.rsd()
    assert obj is not None and obj["metadata"].get("deletionTimestamp"), "deleted while pinned"
    assert ids <= set(sdk.restate_deployments()), "deregistered while pinned"
    capture(sdk, "kubectl-describe-rsd-deleting", "describe", "rsd", RSD, "-n", sdk.namespace)

    status, body = sdk.invoke("Hold/held-delete/release")
    assert status == 200, body
    wait_for(lambda: sdk.rsd() is None, WAIT, 1.0, "the RestateDeployment gone")
    assert not ids & set(sdk.restate_deployments()), "a ghost registration is left"


def test_register_service_keeps_the_admin_path_prefix(sdk: Sdk) -> None:
    python_pod(sdk, "admin-proxy", PROXY_LABELS, PROXY, PROXY_PREFIX, sdk.admin)
    sdk.env.kubectl.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "admin-proxy", "namespace": sdk.namespace},
            "spec": {"selector": PROXY_LABELS, "ports": [{"port": 9070, "targetPort": 9070}]},
        }
    )
    register = {
        "service": {
            "name": "admin-proxy",
            "namespace": sdk.namespace,
            "port": 9070,
            "path": PROXY_PREFIX,
        }
    }
    name = "prefixed"
    sdk.env.kubectl.apply(manifest(sdk, {"SERVICE_VERSION": "p1"}, name=name, register=register))
    latest = sdk.wait_new_latest(set(), name=name)
    ident = sdk.version(latest, name=name)["deploymentId"]
    assert ident in sdk.restate_deployments()
    assert wait_for(lambda: sdk.which() == "p1", 60, 1.0, "Version/which answers p1")
    logs = sdk.env.kubectl.run("logs", "-n", sdk.namespace, "admin-proxy").stdout
    paths = [line.split()[2] for line in logs.splitlines() if line.startswith("PATH ")]
    assert f"{PROXY_PREFIX}/deployments" in paths, paths
    assert all(p.startswith(PROXY_PREFIX + "/") for p in paths), paths
