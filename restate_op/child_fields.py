"""Which spec field a child's field comes from, to name it when the API server refuses it.

The API server names the child's path (``spec.template.spec.affinity...`` of the
StatefulSet); the user wrote ``spec.compute.affinity...`` of the RestateCluster. Only the
fields copied from the spec are listed: a refused field the operator made itself is a bug
and is reported with the child's path alone.
"""

from __future__ import annotations

import re

_POD = r"spec\.template\.spec\."
_RESTATE_CONTAINER = _POD + r"containers\[[^\]]*\]\."
#: Lists the operator adds its own entries to: a child's index is not the user's.
_MERGED_LISTS = ("spec.compute.sidecars", "spec.compute.extraVolumes", "spec.compute.env")
#: StatefulSet path prefix (a regex) -> the RestateCluster field it is copied from.
STATEFULSET_FIELDS: tuple[tuple[str, str], ...] = (
    (_POD + "affinity", "spec.compute.affinity"),
    (_POD + "tolerations", "spec.compute.tolerations"),
    (_POD + "topologySpreadConstraints", "spec.compute.topologySpreadConstraints"),
    (_POD + "nodeSelector", "spec.compute.nodeSelector"),
    (_POD + "dnsConfig", "spec.compute.dnsConfig"),
    (_POD + "priorityClassName", "spec.compute.priorityClassName"),
    (_POD + "imagePullSecrets", "spec.compute.imagePullSecrets"),
    (_POD + "initContainers", "spec.compute.sidecars"),
    (_POD + "volumes", "spec.compute.extraVolumes"),
    (_RESTATE_CONTAINER + "lifecycle", "spec.compute.lifecycle"),
    (_RESTATE_CONTAINER + "volumeMounts", "spec.compute.extraVolumeMounts"),
    (_RESTATE_CONTAINER + "env", "spec.compute.env"),
    (_RESTATE_CONTAINER + "resources", "spec.compute.resources"),
)
#: A RestateDeployment's pod template is copied whole into each version's ReplicaSet.
REPLICASET_FIELDS: tuple[tuple[str, str], ...] = ((_POD.rstrip(r"\."), "spec.template.spec"),)
_BY_KIND = {"StatefulSet": STATEFULSET_FIELDS, "ReplicaSet": REPLICASET_FIELDS}


def spec_field(child_kind: str, child_field: str) -> str | None:
    """The user's field that ``child_field`` of a ``child_kind`` comes from, if any.

    >>> spec_field("StatefulSet", ".spec.template.spec.affinity.nodeAffinty")
    'spec.compute.affinity.nodeAffinty'
    >>> spec_field("StatefulSet", "spec.template.spec.volumes[4].name")
    'spec.compute.extraVolumes'
    """
    path = child_field.lstrip(".")
    for pattern, field in _BY_KIND.get(child_kind, ()):
        match = re.match(pattern + r"(?=$|[.\[])", path)
        if match:
            return field if field in _MERGED_LISTS else field + path[match.end() :]
    return None
