"""What the real-tier tests that call an SDK service through Restate share: the service's
pods (e2e/sdk_service in the ``sdk`` image), a client pod that makes the calls from inside
the real node's namespace, and a RestateDeployment of the service."""

from __future__ import annotations

import json
import textwrap
from dataclasses import dataclass
from typing import Any

from e2e.operator_process import wait_for
from e2e.real.support import RESTRICTED_CONTAINER, RealEnv, dump
from e2e.realnode import REAL_NODE_SELECTOR, REAL_NODE_TOLERATION

RSD = "greeter"
CLIENT_LABELS = {"role": "sdk-client"}
WAIT = 180.0

# Run in the client pod (the sdk image has python3): one HTTP call, the answer as JSON.
CALL = textwrap.dedent(
    """
    import json, sys, urllib.error, urllib.request
    method, url = sys.argv[1], sys.argv[2]
    body = sys.argv[3].encode() if len(sys.argv) > 3 else None
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    req.add_header("accept", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            print(json.dumps({"status": r.status, "body": r.read().decode()}))
    except urllib.error.HTTPError as e:
        print(json.dumps({"status": e.code, "body": e.read().decode()}))
    except OSError as e:
        print(json.dumps({"status": 0, "body": str(e)}))
    """
)


@dataclass
class Sdk:
    """The module's cluster, namespace and client pod."""

    env: RealEnv
    cluster: str
    namespace: str

    @property
    def ingress(self) -> str:
        return f"http://restate.{self.cluster}.svc.cluster.local:8080"

    @property
    def admin(self) -> str:
        return f"http://restate.{self.cluster}.svc.cluster.local:9070"

    def call(self, method: str, url: str, body: Any = None) -> tuple[int, str]:
        args = [method, url] + ([] if body is None else [json.dumps(body)])
        _, out = self.env.exec(self.namespace, "client", "python3", "-c", CALL, *args)
        answer = json.loads(out.strip().splitlines()[-1])
        return int(answer["status"]), str(answer["body"])

    def invoke(self, path: str) -> tuple[int, str]:
        return self.call("POST", f"{self.ingress}/{path}")

    def which(self) -> str | None:
        """Which version Restate routes a new ``Version/which`` invocation to."""
        status, body = self.invoke("Version/which")
        return json.loads(body) if status == 200 else None

    def restate_deployments(self) -> dict[str, str]:
        """Restate's own list of deployments: id -> uri."""
        status, body = self.call("GET", f"{self.admin}/deployments")
        assert status == 200, body
        return {d["id"]: d["uri"] for d in json.loads(body)["deployments"]}

    def rsd(self, name: str = RSD) -> dict[str, Any] | None:
        return self.env.kubectl.get("rsd", name, self.namespace)

    def versions(self, name: str = RSD) -> list[dict[str, Any]]:
        status = (self.rsd(name) or {}).get("status") or {}
        found: list[dict[str, Any]] = status.get("versions") or []
        return found

    def version(self, hash_: str, name: str = RSD) -> dict[str, Any]:
        return next((v for v in self.versions(name) if v["hash"] == hash_), {})

    def wait_phases(self, wanted: dict[str, str], name: str = RSD) -> list[dict[str, Any]]:
        """Until each version (by template hash) has its phase."""

        def reached() -> list[dict[str, Any]] | None:
            found = self.versions(name)
            by_hash = {v["hash"]: v.get("phase") for v in found}
            return found if all(by_hash.get(h) == p for h, p in wanted.items()) else None

        result: list[dict[str, Any]] = wait_for(
            reached, WAIT, 1.0, f"versions {wanted} (have {dump(self.versions(name))})"
        )
        return result

    def latest_hash(self, name: str = RSD) -> str | None:
        return next((v["hash"] for v in self.versions(name) if v.get("phase") == "Latest"), None)

    def wait_new_latest(self, known: set[str], name: str = RSD) -> str:
        """The hash of a version, not one of `known`, once it is Latest."""

        def new() -> str | None:
            latest = self.latest_hash(name)
            return latest if latest is not None and latest not in known else None

        result: str = wait_for(new, WAIT, 1.0, f"a new Latest version of {name}")
        return result


def manifest(
    sdk: Sdk,
    env_vars: dict[str, str],
    *,
    name: str = RSD,
    replicas: int = 1,
    register: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A RestateDeployment of the sdk image; `env_vars` make each version's template.

    With ``register.cluster`` the operator labels the pods so that the cluster's egress
    policy lets Restate call them; with any other target the user does (as here).
    """
    labels = {"app": name}
    if register is not None:
        labels[f"allow.restate.dev/{sdk.cluster}"] = "true"
    return {
        "apiVersion": "restate.dev/v1beta1",
        "kind": "RestateDeployment",
        "metadata": {"name": name, "namespace": sdk.namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "restate": {
                "register": register or {"cluster": sdk.cluster},
                "drainDelaySeconds": 0,
            },
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "tolerations": [REAL_NODE_TOLERATION],
                    "nodeSelector": dict(REAL_NODE_SELECTOR),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "sdk",
                            "image": sdk.env.images.sdk.ref,
                            "imagePullPolicy": "Never",
                            "ports": [{"containerPort": 9080, "name": "restate"}],
                            "env": [{"name": k, "value": v} for k, v in env_vars.items()],
                            "readinessProbe": {
                                "tcpSocket": {"port": 9080},
                                "periodSeconds": 1,
                            },
                            "securityContext": RESTRICTED_CONTAINER,
                            "resources": {
                                "requests": {"cpu": "10m", "memory": "48Mi"},
                                "limits": {"memory": "256Mi"},
                            },
                        }
                    ],
                },
            },
        },
    }


def python_pod_manifest(
    env: RealEnv,
    namespace: str,
    name: str,
    labels: dict[str, str],
    script: str,
    *args: str,
    memory: str = "64Mi",
) -> dict[str, Any]:
    """A pod of the sdk image running a Python script on the real node (restricted PSS)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "tolerations": [REAL_NODE_TOLERATION],
            "nodeSelector": dict(REAL_NODE_SELECTOR),
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "main",
                    "image": env.images.sdk.ref,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-u", "-c", script, *args],
                    "securityContext": RESTRICTED_CONTAINER,
                    "resources": {"limits": {"memory": memory}},
                }
            ],
        },
    }


def python_pod(sdk: Sdk, name: str, labels: dict[str, str], script: str, *args: str) -> None:
    """A pod of the sdk image running a Python script (restricted PSS), Ready."""
    sdk.env.kubectl.apply(python_pod_manifest(sdk.env, sdk.namespace, name, labels, script, *args))
    sdk.env.kubectl.run(
        "wait", "-n", sdk.namespace, f"pod/{name}", "--for=condition=Ready", "--timeout=90s"
    )
