"""Pure builders: a RestateCluster (and the operator's settings) in, desired manifests out.

Every builder returns a plain dict in camelCase, exactly what is server-side applied, with no
empty or unset fields; builders never call the API. One module per child kind.
"""

from restate_op.children.aws import (
    desired_pia_canary_job,
    desired_pod_identity_association,
    desired_security_group_policy,
    identity_pod_annotations,
    pod_identity_synced,
)
from restate_op.children.canary import canary_outcome, desired_canary_job
from restate_op.children.config_map import desired_config_map
from restate_op.children.gcp import (
    desired_iam_policy_member,
    desired_wi_canary_job,
    iam_policy_member_ready,
)
from restate_op.children.metadata import (
    child_labels,
    child_metadata,
    owner_reference,
    selector_labels,
)
from restate_op.children.namespace import desired_namespace, namespace_ownership
from restate_op.children.network_policies import NETWORK_POLICY_NAMES, desired_network_policies
from restate_op.children.pdb import desired_pdb
from restate_op.children.restate_config import (
    config_map_name,
    config_toml,
    effective_auto_provision,
    restate_roles,
)
from restate_op.children.secret_provider_class import desired_secret_provider_class
from restate_op.children.service_account import desired_service_account
from restate_op.children.services import desired_cluster_service, desired_service
from restate_op.children.statefulset import desired_statefulset, pvc_names

__all__ = [
    "NETWORK_POLICY_NAMES",
    "canary_outcome",
    "child_labels",
    "child_metadata",
    "config_map_name",
    "config_toml",
    "desired_canary_job",
    "desired_cluster_service",
    "desired_config_map",
    "desired_iam_policy_member",
    "desired_namespace",
    "desired_network_policies",
    "desired_pdb",
    "desired_pia_canary_job",
    "desired_pod_identity_association",
    "desired_secret_provider_class",
    "desired_security_group_policy",
    "desired_service",
    "desired_service_account",
    "desired_statefulset",
    "desired_wi_canary_job",
    "effective_auto_provision",
    "iam_policy_member_ready",
    "identity_pod_annotations",
    "namespace_ownership",
    "owner_reference",
    "pod_identity_synced",
    "pvc_names",
    "restate_roles",
    "selector_labels",
]
