"""Names, ports and paths shared by the child builders and by the code that observes children.

They live in one place because they are a contract in three directions: with Restate (ports,
paths, environment), with the live cluster (object names the operator later finds, patches or
deletes) and with users (label keys they select on).
"""

from __future__ import annotations

from typing import Final

# Labels every child carries; the first two select the Restate pods.
NAME_LABEL: Final = "app.kubernetes.io/name"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
APP_NAME: Final = "restate"
MANAGED_BY: Final = "restate-operator"

# A pre-existing Namespace with this annotation set to "true" is used as is (spec §3).
ADOPT_ANNOTATION: Final = "restate.dev/adopt"

# Child object names inside the cluster's Namespace.
SERVICE_ACCOUNT_NAME: Final = "restate"
SERVICE_NAME: Final = "restate"
CLUSTER_SERVICE_NAME: Final = "restate-cluster"
STATEFULSET_NAME: Final = "restate"
PDB_NAME: Final = "restate"
PIA_NAME: Final = "restate"
SGP_NAME: Final = "restate"
PIA_CANARY_JOB_NAME: Final = "restate-pia-canary"
IAM_POLICY_MEMBER_NAME: Final = "restate-workload-identity"
WI_CANARY_JOB_NAME: Final = "restate-wi-canary"
SECRET_PROVIDER_CLASS_NAME: Final = "request-signing-key-v1"
CONFIG_MAP_PREFIX: Final = "restate-config-"

CONTAINER_NAME: Final = "restate"
CA_INIT_CONTAINER_NAME: Final = "combine-ca-certs"

# Restate's ports: HTTP ingress, admin API (+ /health), node-to-node fabric (+ /metrics).
INGRESS_PORT: Final = 8080
ADMIN_PORT: Final = 9070
NODE_PORT: Final = 5122

# Volumes of the Restate pod and where the restate container mounts them.
STORAGE_VOLUME: Final = "storage"
TMP_VOLUME: Final = "tmp"
CONFIG_VOLUME: Final = "config"
SIGNING_KEY_VOLUME: Final = "signing-key"
TRUSTED_CA_VOLUME: Final = "trusted-ca-certs"
COMBINED_CERTS_VOLUME: Final = "combined-certs"

DATA_DIR: Final = "/restate-data"
TMP_DIR: Final = "/tmp"
CONFIG_DIR: Final = "/config"
CONFIG_FILE_KEY: Final = "config.toml"
SIGNING_KEY_DIR: Final = "/signing-key"
TRUSTED_CA_DIR: Final = "/trusted-ca-certs"
COMBINED_CERTS_DIR: Final = "/combined-certs"
COMBINED_CA_BUNDLE: Final = f"{COMBINED_CERTS_DIR}/ca-certificates.crt"

#: Every volume name the operator may put in the pod. User volumes may use none of them,
#: whether or not the feature behind a name is enabled today, so enabling it later never
#: turns a valid spec into an invalid one.
OPERATOR_VOLUMES: Final = frozenset(
    {
        STORAGE_VOLUME,
        TMP_VOLUME,
        CONFIG_VOLUME,
        SIGNING_KEY_VOLUME,
        TRUSTED_CA_VOLUME,
        COMBINED_CERTS_VOLUME,
    }
)
#: Every path the operator may mount into the restate container (same reasoning).
OPERATOR_MOUNT_PATHS: Final = frozenset(
    {DATA_DIR, TMP_DIR, CONFIG_DIR, SIGNING_KEY_DIR, COMBINED_CERTS_DIR}
)

# Pod template annotations owned by the operator; a change rolls the pods.
TRUSTED_CA_ANNOTATION: Final = "restate.dev/trusted-ca-certs"
PIA_CLUSTER_ANNOTATION: Final = "restate.dev/aws-pod-identity-association-cluster"
PIA_ROLE_ARN_ANNOTATION: Final = "restate.dev/aws-pod-identity-association-role-arn"
SECURITY_GROUPS_ANNOTATION: Final = "restate.dev/aws-security-groups"
GCP_SERVICE_ACCOUNT_POD_ANNOTATION: Final = "restate.dev/gcp-service-account"

#: The ServiceAccount annotation GKE Workload Identity reads (set by the user through
#: spec.security.serviceAccountAnnotations).
GKE_SERVICE_ACCOUNT_ANNOTATION: Final = "iam.gke.io/gcp-service-account"
