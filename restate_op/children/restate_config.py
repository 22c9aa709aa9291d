"""The Restate configuration of a RestateCluster: the file, its ConfigMap name, the roles and
whether the operator provisions the cluster.

Validation of the spec is in :mod:`restate_op.validation`, the container's environment in
:mod:`restate_op.children.env`.
"""

from __future__ import annotations

import hashlib
import struct
import tomllib
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from restate_op.api.models import RestateCluster
from restate_op.children.constants import CONFIG_MAP_PREFIX
from restate_op.snapshots import DESTINATION_ENV

#: Roles a Restate 1.x node runs when its configuration names none.
DEFAULT_ROLES: Final = ("http-ingress", "admin", "worker", "log-server", "metadata-server")
#: The role that runs the replicated metadata store (``metadata-store`` is its old alias).
METADATA_SERVER_ROLES: Final = frozenset({"metadata-server", "metadata-store"})

AUTO_PROVISION_ENV: Final = "RESTATE_AUTO_PROVISION"
AUTO_PROVISION_KEY: Final = "auto-provision"
METADATA_CLIENT_KEY: Final = "metadata-client"
METADATA_CLIENT_ENV_PREFIX: Final = "RESTATE_METADATA_CLIENT__"


# --- the configuration file ---------------------------------------------------------------


def config_toml(cluster: RestateCluster) -> str:
    """The configuration file content: ``spec.config`` verbatim, or empty.

    Never rewritten or merged: the ConfigMap name is a hash of this text, and any rewrite
    (even of whitespace) would roll every pod.
    """
    return cluster.spec.config or ""


def config_map_name(text: str) -> str:
    """Upstream's content-addressed ConfigMap name ``restate-config-<h>``.

    ``h`` is the lowercase hex, without padding, of the first four bytes of SHA-256(text)
    read as a little-endian u32; kept identical so clusters migrated from upstream keep
    their ConfigMap and do not roll.
    """
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    (value,) = struct.unpack("<I", digest[:4])
    return f"{CONFIG_MAP_PREFIX}{value:x}"


def parsed_config(cluster: RestateCluster) -> dict[str, Any] | None:
    """The configuration as a TOML document; None when it does not parse."""
    try:
        return tomllib.loads(config_toml(cluster))
    except tomllib.TOMLDecodeError:
        return None


def restate_roles(cluster: RestateCluster) -> list[str]:
    """The roles every node runs: ``roles`` from the configuration, else Restate's defaults."""
    roles = (parsed_config(cluster) or {}).get("roles")
    if isinstance(roles, list) and all(isinstance(r, str) for r in roles):
        return list(roles)
    return list(DEFAULT_ROLES)


def config_sets_metadata_client(cluster: RestateCluster) -> bool:
    """Whether the user configured how nodes find the metadata store (``[metadata-client]``)."""
    return METADATA_CLIENT_KEY in (parsed_config(cluster) or {})


def user_sets_metadata_client(cluster: RestateCluster) -> bool:
    """``[metadata-client]`` in the config or a ``RESTATE_METADATA_CLIENT__*`` variable."""
    return config_sets_metadata_client(cluster) or any(
        e.name.startswith(METADATA_CLIENT_ENV_PREFIX) for e in cluster.spec.compute.env or []
    )


def env_entries(cluster: RestateCluster, name: str) -> list[Any]:
    return [e for e in cluster.spec.compute.env or [] if e.name == name]


def env_name(*path: str) -> str:
    """The ``RESTATE_*`` variable Restate reads for the setting at ``path`` (its sections
    joined by ``__``), e.g. ``RESTATE_METADATA_SERVER__RAFT_ELECTION_TICK``."""
    return "RESTATE_" + "__".join(p.upper().replace("-", "_") for p in path)


class SpecSetting(NamedTuple):
    """A Restate setting as the spec gives it (``spec_value``)."""

    #: The spec field holding it: ``spec.compute.env[RESTATE_...]`` or ``spec.config``.
    field: str
    #: That field and, in the file, the setting's key: what a message names.
    source: str
    #: From a variable, its value (None when from a Secret or ConfigMap); from the file, the
    #: parsed TOML value.
    value: Any


def spec_value(
    cluster: RestateCluster, *path: str, doc: Mapping[str, Any] | None = None
) -> SpecSetting | None:
    """The value the spec gives the Restate setting at ``path``: its variable (the last
    one) over the file, as Restate reads them. None: the spec leaves it to Restate's
    default.

    ``doc``: the file already parsed (else it is parsed here)."""
    name = env_name(*path)
    entries = env_entries(cluster, name)
    if entries:
        field = f"spec.compute.env[{name}]"
        return SpecSetting(field, field, entries[-1].value)
    value: Any = doc if doc is not None else parsed_config(cluster) or {}
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return SpecSetting("spec.config", f"spec.config {'.'.join(path)}", value)


def _user_manages_provisioning(cluster: RestateCluster) -> bool:
    if env_entries(cluster, AUTO_PROVISION_ENV):
        return True
    doc = parsed_config(cluster)
    if doc is None:
        # Unparseable (reported by validate); a textual mention still signals intent.
        return AUTO_PROVISION_KEY in config_toml(cluster)
    return AUTO_PROVISION_KEY in doc


def effective_auto_provision(cluster: RestateCluster) -> bool:
    """Whether the operator provisions the Restate cluster (and nodes must not self-provision).

    ``spec.cluster.autoProvision`` decides when set. Unset, a user who mentions
    ``auto-provision`` in the config or ``RESTATE_AUTO_PROVISION`` in the env manages
    provisioning themselves; otherwise a multi-node cluster is provisioned once by the
    operator, because nodes that all self-provision at once can each create a cluster of
    their own (split brain), while a single node safely provisions itself.
    """
    options = cluster.spec.cluster
    if options is not None and options.auto_provision is not None:
        return options.auto_provision
    if _user_manages_provisioning(cluster):
        return False
    return cluster.spec.compute.desired_replicas > 1


def snapshot_destination(cluster: RestateCluster) -> str | None:
    """The repository the nodes write snapshots to: ``spec.snapshots``, else the user's own
    ``RESTATE_WORKER__SNAPSHOTS__DESTINATION`` or ``[worker.snapshots]`` (None: none)."""
    if cluster.spec.snapshots is not None:
        return cluster.spec.snapshots.destination
    for entry in env_entries(cluster, DESTINATION_ENV):
        if entry.value:
            return str(entry.value)
    configured = config_snapshot_option(parsed_config(cluster) or {}, "destination")
    return configured if isinstance(configured, str) and configured else None


def config_snapshot_option(doc: dict[str, Any], key: str) -> Any:
    """``worker.snapshots.<key>`` of a parsed configuration file, or None."""
    worker = doc.get("worker")
    snapshots = worker.get("snapshots") if isinstance(worker, dict) else None
    return snapshots.get(key) if isinstance(snapshots, dict) else None
