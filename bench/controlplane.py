"""The local e2e control plane, with an API-server audit log and an identity for the operator.

kube-apiserver's own metrics (``apiserver_request_total``) carry no client identity, so to
count what the operator alone asks of the API server the benchmark gives the operator its own
client certificate (CN ``restate-operator-bench``, no groups, bound to the chart's
least-privilege RBAC from :mod:`restate_op.rbac`) and turns on an audit policy that logs
exactly that user's requests at ``Metadata`` level. Everything else is logged at ``None``, so
the audit log costs the API server next to nothing.

This subclasses :class:`e2e.controlplane.ControlPlane` instead of changing it: the only hook
needed is the API server's command line.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from e2e.controlplane import ControlPlane, kubeconfig_dict
from e2e.kubehttp import JSON, KubeHTTPError
from e2e.operator_process import REPO, Kubectl
from restate_op.rbac import CLUSTER_RULES, DEPLOYMENT_RULES, LEASE_RULES

OPERATOR_USER = "restate-operator-bench"
OPERATOR_NAMESPACE = "restate-operator"
CRD_FILE = REPO / "crd" / "restateclusters.yaml"
DEPLOYMENT_CRD_FILE = REPO / "crd" / "restatedeployments.yaml"

AUDIT_POLICY: JSON = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One event when a request completes; long-running requests (watches) also log the
    # moment their response starts, so a watch is counted when it is opened.
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "Metadata", "users": [OPERATOR_USER]},
        {"level": "None"},
    ],
}


class BenchControlPlane(ControlPlane):
    """A :class:`ControlPlane` whose API server audits the operator's requests."""

    #: A subclass may log more (say the response bodies of writes, to tell no-op writes).
    audit_policy: JSON = AUDIT_POLICY

    @property
    def audit_log(self) -> Path:
        """Where the API server writes audit events (JSON lines)."""
        return self.work_dir / "audit.log"

    def _apiserver_argv(self) -> list[str]:
        policy = self.work_dir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(self.audit_policy))
        return [
            *super()._apiserver_argv(),
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-maxsize=0",  # never rotate: the reader follows one file
            "--audit-log-format=json",
        ]

    def kubectl(self) -> Kubectl:
        """kubectl with admin credentials."""
        return Kubectl(self.binaries.kubectl, self.kubeconfig)

    def install_operator_prerequisites(self, *, deployments: bool = False) -> Path:
        """Install the CRD, the operator's namespace and RBAC; return its own kubeconfig.

        ``deployments``: also the RestateDeployment CRD and the rules the chart adds with
        ``restateDeployments.enabled`` (what ``--restate-deployments true`` needs).
        """
        kubectl = self.kubectl()
        kubectl.run("apply", "--server-side", "-f", str(CRD_FILE))
        kubectl.wait_established("restateclusters.restate.dev")
        if deployments:
            kubectl.run("apply", "--server-side", "-f", str(DEPLOYMENT_CRD_FILE))
            kubectl.wait_established("restatedeployments.restate.dev")
        client = self.admin_client()
        try:
            for path, obj in _rbac_objects(deployments=deployments):
                try:
                    client.create(path, obj)
                except KubeHTTPError as err:  # pragma: no cover - reported with its body
                    raise RuntimeError(f"installing {path}: {err}") from err
        finally:
            client.close()
        return self._operator_kubeconfig()

    def _operator_kubeconfig(self) -> Path:
        assert self._ca is not None, "start() first"
        pair = self._ca.issue("operator", common_name=OPERATOR_USER, client=True)
        path = self.work_dir / "operator.kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig_dict(self.server, self._ca.pair, pair, "op")))
        path.chmod(0o600)
        return path


def _rbac_objects(*, deployments: bool = False) -> list[tuple[str, JSON]]:
    """The chart's RBAC (ClusterRole, lease Role and their bindings) for the bench user."""
    rules = [*CLUSTER_RULES, *(DEPLOYMENT_RULES if deployments else [])]
    subject = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": OPERATOR_USER}]
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    ns = OPERATOR_NAMESPACE
    return [
        ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        (
            f"{rbac}/clusterroles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRole",
                "metadata": {"name": OPERATOR_USER},
                "rules": json.loads(json.dumps(rules)),
            },
        ),
        (
            f"{rbac}/clusterrolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": OPERATOR_USER},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": OPERATOR_USER,
                },
                "subjects": subject,
            },
        ),
        (
            f"{rbac}/namespaces/{ns}/roles",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": f"{OPERATOR_USER}-lease", "namespace": ns},
                "rules": json.loads(json.dumps(LEASE_RULES)),
            },
        ),
        (
            f"{rbac}/namespaces/{ns}/rolebindings",
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": f"{OPERATOR_USER}-lease", "namespace": ns},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": f"{OPERATOR_USER}-lease",
                },
                "subjects": subject,
            },
        ),
    ]
