"""restate-op: a Kubernetes operator that creates and runs Restate clusters."""

__version__ = "0.1.0"

GROUP = "restate.dev"
VERSION = "v1"
KIND = "RestateCluster"
PLURAL = "restateclusters"
FIELD_MANAGER = "restate-operator"
