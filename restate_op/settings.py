"""The operator's own configuration: command-line flags with environment fallbacks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorSettings:
    """Everything the operator was started with that shapes what it builds.

    Builders take this instead of reading the environment, so they stay pure.
    """

    operator_namespace: str = "restate-operator"
    #: Label that selects the operator's own pods (network policy peer for admin/node access).
    operator_label_name: str = "app.kubernetes.io/name"
    operator_label_value: str = "restate-operator"
    #: EKS cluster name for PodIdentityAssociations; unset disables Pod Identity.
    aws_pod_identity_association_cluster: str | None = None
    cluster_dns: str = "cluster.local"
    #: gRPC target of a pod's node port; None: ``<pod>.restate-cluster.<ns>.svc.<dns>:5122``.
    node_address_template: str | None = None
    canary_image: str = "alpine:3.21"
    concurrency: int = 8
    leader_elect: bool = True
    lease_name: str = "restate-operator-leader"
    #: 20 s / 8 s: a standby takes over within 20 s, and an idle leader sends 7.5 renewals a
    #: minute (client-go's 15 s / 2 s would be 30), keeping idle load under 10 requests/min.
    lease_duration_seconds: float = 20.0
    lease_renew_seconds: float = 8.0
    resync_seconds: float = 300.0
    #: How long a status that only reports progress (Provisioning, an expansion under way) may
    #: wait to be written (see restate_op/coalesce.py); 0 writes every change at once.
    status_coalesce_seconds: float = 1.0
    http_port: int = 8080
    log_level: str = "INFO"
    log_format: str = "json"


@dataclass(frozen=True)
class Capabilities:
    """Optional APIs discovered on the cluster (ACK Pod Identity, VPC security groups)."""

    pod_identity_association: bool = False
    security_group_policy: bool = False
    secret_provider_class: bool = False
