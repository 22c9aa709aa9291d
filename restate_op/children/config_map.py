"""The ConfigMap holding the Restate configuration file."""

from __future__ import annotations

from typing import Any

from restate_op.api.models import RestateCluster
from restate_op.children.constants import CONFIG_FILE_KEY
from restate_op.children.metadata import child_metadata, namespace_name
from restate_op.children.restate_config import config_map_name, config_toml


def desired_config_map(cluster: RestateCluster) -> dict[str, Any]:
    """ConfigMap ``restate-config-<hash>`` with ``config.toml`` = ``spec.config`` verbatim.

    The name changes with the content, so a config change rolls the pods through the
    StatefulSet's volume reference, and a rollback finds its old ConfigMap unchanged. The
    operator deletes ConfigMaps no longer referenced. ``immutable`` follows from the naming:
    content never changes under a name, and the kubelet need not watch it.
    """
    text = config_toml(cluster)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": child_metadata(cluster, config_map_name(text), namespace_name(cluster)),
        "immutable": True,
        "data": {CONFIG_FILE_KEY: text},
    }
