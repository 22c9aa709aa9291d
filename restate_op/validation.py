"""Validation of what the user wrote in a RestateCluster spec.

``validate`` re-checks in the operator what the CRD schema cannot express. Each problem
names the offending field and says how to fix it, so the Degraded condition built from it is
actionable without reading operator logs. The module builds no child.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
import tomllib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from restate_op.api.kube_types import NetworkPolicyPeer
from restate_op.api.models import RestateCluster
from restate_op.children.constants import (
    ADMIN_PORT,
    CA_INIT_CONTAINER_NAME,
    COMBINED_CERTS_VOLUME,
    CONFIG_VOLUME,
    CONTAINER_NAME,
    INGRESS_PORT,
    NODE_PORT,
    OPERATOR_MOUNT_PATHS,
    OPERATOR_VOLUMES,
    SIGNING_KEY_VOLUME,
    STORAGE_VOLUME,
    TMP_VOLUME,
    TRUSTED_CA_VOLUME,
)
from restate_op.children.env import restate_env_names
from restate_op.children.pod_security import (
    RESTRICTED_VOLUME_TYPES,
    harden_sidecar,
    restricted_violations,
)
from restate_op.children.restate_config import (
    AUTO_PROVISION_ENV,
    AUTO_PROVISION_KEY,
    METADATA_SERVER_ROLES,
    config_snapshot_option,
    config_toml,
    effective_auto_provision,
    env_entries,
    parsed_config,
    restate_roles,
    spec_value,
    user_sets_metadata_client,
)
from restate_op.children.restate_schema import check_config, env_key, restate_version
from restate_op.snapshots import DESTINATION_ENV, INTERVAL_ENV, RETAINED_ENV

#: Condition reason of every spec problem (upstream: ``InvalidRestateConfig``).
INVALID_CONFIG: Final = "InvalidConfig"

#: Restate's replication factor of new logs and partitions (its variable: ``env_name``).
REPLICATION_KEY: Final = "default-replication"

_CLUSTER_NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_SECURITY_GROUP_RE = re.compile(r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+$")
_SECRET_KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class SpecProblem:
    """One thing wrong with a RestateCluster spec that the user must fix."""

    reason: str
    field: str
    message: str


def _problem(field: str, message: str) -> SpecProblem:
    return SpecProblem(INVALID_CONFIG, field, f"{field}: {message}")


def validate(cluster: RestateCluster) -> list[SpecProblem]:
    """Everything wrong with the spec that the API server did not already reject; [] if none."""
    return [
        *_check_image(cluster),
        *_check_config(cluster),
        *_check_role_layout(cluster),
        *_check_cluster_name(cluster),
        *_check_env(cluster),
        *_check_auto_provision(cluster),
        *_check_volumes(cluster),
        *_check_sidecars(cluster),
        *_check_aws(cluster),
        *_check_network(cluster),
        *_check_signing_key(cluster),
        *_check_trusted_ca_certs(cluster),
        *_check_snapshots(cluster),
    ]


def _check_image(cluster: RestateCluster) -> list[SpecProblem]:
    if not cluster.spec.compute.image.strip():
        return [
            _problem("spec.compute.image", "must name a Restate image, e.g. restatedev/restate:1.7")
        ]
    return []


def _check_config(cluster: RestateCluster) -> list[SpecProblem]:
    try:
        doc = tomllib.loads(config_toml(cluster))
    except tomllib.TOMLDecodeError as err:
        return [_problem("spec.config", f"is not valid TOML: {err}. Fix the TOML syntax.")]
    problems: list[SpecProblem] = []
    if AUTO_PROVISION_KEY in doc and not isinstance(doc[AUTO_PROVISION_KEY], bool):
        problems.append(
            _problem(
                "spec.config",
                f"{AUTO_PROVISION_KEY} must be a boolean (true or false, unquoted), "
                f"not {doc[AUTO_PROVISION_KEY]!r}.",
            )
        )
    roles = doc.get("roles")
    if roles is not None and not (
        isinstance(roles, list) and all(isinstance(r, str) for r in roles)
    ):
        problems.append(
            _problem(
                "spec.config",
                'roles must be an array of strings, e.g. roles = ["worker", "admin"].',
            )
        )
    return (
        problems
        or _check_restate_rules(cluster, doc)
        or [*_check_replication(cluster, doc), *_check_metadata_raft(cluster, doc)]
    )


_REPLICATION_SCOPE_RE = re.compile(r"^\s*([a-z]+)\s*:\s*([0-9]+)\s*$")


def replication_nodes(value: Any) -> int | None:
    """How many nodes a replication property needs at least; None when it does not parse.

    Restate takes ``2``, ``"2"`` or ``"{zone: 2, node: 3}"`` (a count per location scope): a
    scope's count needs that many distinct domains, so at least that many nodes.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        counts = [v for v in value.values() if isinstance(v, int) and not isinstance(v, bool)]
        return max(counts) if counts and len(counts) == len(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return int(text)
    if not (text.startswith("{") and text.endswith("}")):
        return None
    counts = []
    for part in text[1:-1].split(","):
        match = _REPLICATION_SCOPE_RE.match(part)
        if match is None:
            return None
        counts.append(int(match.group(2)))
    return max(counts) if counts else None


def _check_replication(cluster: RestateCluster, doc: dict[str, Any]) -> list[SpecProblem]:
    """A replication factor above the node count: Restate starts, but no partition ever
    gets a leader (1.7.12: one node with default-replication = 2 serves nothing), so the
    spec is refused before anything rolls -- at creation and on a scale-down alike.

    A cluster that joins another one through ``[metadata-client]`` has nodes elsewhere too:
    its count is not checked.
    """
    if user_sets_metadata_client(cluster):
        return []
    replicas = cluster.spec.compute.desired_replicas
    found = spec_value(cluster, REPLICATION_KEY, doc=doc)
    if found is None:
        return []
    field, raw = found.field, found.value
    needed = replication_nodes(raw)
    if needed is None or replicas == 0 or needed <= replicas:
        return []
    return [
        _problem(
            field,
            f"{REPLICATION_KEY} = {raw!r} needs at least {needed} Restate nodes, but "
            f"spec.compute.replicas is {replicas}: no partition would get a leader. Set "
            f"spec.compute.replicas to {needed} or more, or lower {REPLICATION_KEY}.",
        )
    ]


#: The metadata server's Raft timing (``[metadata-server]``), with Restate 1.7's defaults.
RAFT_ELECTION_TICK: Final = ("raft-election-tick", 10)
RAFT_HEARTBEAT_TICK: Final = ("raft-heartbeat-tick", 2)


def _metadata_server_value(
    cluster: RestateCluster, doc: dict[str, Any], key: tuple[str, int]
) -> tuple[Any, str]:
    """A ``[metadata-server]`` setting as the pod would see it (the spec's, else Restate's
    default), and where it comes from."""
    name, default = key
    found = spec_value(cluster, "metadata-server", name, doc=doc)
    return (default, "Restate's default") if found is None else (found.value, found.source)


def _check_metadata_raft(cluster: RestateCluster, doc: dict[str, Any]) -> list[SpecProblem]:
    """A metadata quorum that can never form: Raft elects no leader unless its election
    tick exceeds its heartbeat tick, and Restate 1.7.12 stops at start-up ("failed running
    raft: election tick must be greater than heartbeat tick") on every metadata-server
    node, so no node of the cluster would ever run."""
    if not METADATA_SERVER_ROLES & set(restate_roles(cluster)):
        return []
    election, election_from = _metadata_server_value(cluster, doc, RAFT_ELECTION_TICK)
    heartbeat, heartbeat_from = _metadata_server_value(cluster, doc, RAFT_HEARTBEAT_TICK)
    try:
        if int(election) > int(heartbeat):
            return []
    except (TypeError, ValueError):
        return []  # not a number: Restate's own rules (above) name it
    field = election_from if election_from.startswith("spec.") else heartbeat_from
    return [
        _problem(
            field.split(" ")[0],
            f"the metadata server's raft-election-tick ({election}, from {election_from}) "
            f"must be greater than its raft-heartbeat-tick ({heartbeat}, from "
            f"{heartbeat_from}): Restate's metadata cluster could never elect a leader and "
            "every metadata-server node stops at start-up. Raise raft-election-tick (Restate's "
            "default 10) or lower raft-heartbeat-tick (default 2).",
        )
    ]


def _check_restate_rules(cluster: RestateCluster, doc: dict[str, Any]) -> list[SpecProblem]:
    """Values Restate itself would refuse at start-up, in Restate's own words.

    Keys the pod's environment sets are skipped: Restate reads ``RESTATE_*`` variables over
    the file, so e.g. ``log-format`` in the file never matters next to the operator's
    ``RESTATE_LOG_FORMAT``.
    """
    env_names = restate_env_names(cluster)
    return [
        _problem(
            "spec.config",
            f"{restate_version()} would refuse to start with this configuration: "
            f"{key}: {error}. Fix the value of {key}.",
        )
        for key, error in check_config(doc, env_names)
    ]


def _check_role_layout(cluster: RestateCluster) -> list[SpecProblem]:
    """Role sets with which a cluster of identical pods can never work (probed on 1.7).

    Every pod runs the same roles. Without ``admin`` no node runs the cluster controller or
    the admin API (the readiness probe's port 9070 is never opened); without a
    metadata server, nodes using the default replicated metadata client exit at start-up.
    (Restate 1.7: "failed writing to metadata store", or a panic on a single node.)
    A user who configures ``[metadata-client]`` (joining another cluster, or an external
    metadata store) knows where these live, so the layout is theirs to choose.
    """
    if user_sets_metadata_client(cluster) or any(
        env_key(e.name) == "roles" for e in cluster.spec.compute.env or []
    ):
        return []
    roles = restate_roles(cluster)
    problems = []
    if "admin" not in roles:
        problems.append(
            _problem(
                "spec.config",
                f"roles = {roles} has no admin role. Every pod of the cluster runs these "
                "roles, so no node would run Restate's cluster controller or admin API "
                '(port 9070): the cluster could never work or become ready. Add "admin" '
                "to roles, or configure [metadata-client] to join a cluster that has admin "
                "nodes.",
            )
        )
    if not METADATA_SERVER_ROLES & set(roles):
        problems.append(
            _problem(
                "spec.config",
                f"roles = {roles} has no metadata-server role, and without a "
                "[metadata-client] section nodes use the replicated metadata store that "
                "only metadata-server nodes provide: Restate nodes would fail at start-up. "
                'Add "metadata-server" to roles, or '
                'configure [metadata-client] (e.g. type = "object-store").',
            )
        )
    return problems


def _check_cluster_name(cluster: RestateCluster) -> list[SpecProblem]:
    name = cluster.spec.cluster_name
    if name is None or _CLUSTER_NAME_RE.match(name):
        return []
    return [
        _problem(
            "spec.clusterName",
            f"{name!r} is not a valid cluster name; use 1-63 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit, or remove the field to use the "
            "RestateCluster's name.",
        )
    ]


def _check_env(cluster: RestateCluster) -> list[SpecProblem]:
    problems = []
    for i, env in enumerate(cluster.spec.compute.env or []):
        if env.value is not None and env.value_from is not None:
            problems.append(
                _problem(
                    f"spec.compute.env[{i}]",
                    f"{env.name} sets both value and valueFrom; keep only one.",
                )
            )
    return problems


def _check_auto_provision(cluster: RestateCluster) -> list[SpecProblem]:
    """With operator provisioning on, nodes must not provision themselves (upstream B3.3.1)."""
    if not effective_auto_provision(cluster):
        return []
    problems = []
    for env in env_entries(cluster, AUTO_PROVISION_ENV):
        # A valueFrom entry cannot be checked here; it falls through to the config check.
        if env.value_from is None and (env.value or "").strip().lower() != "false":
            problems.append(
                _problem(
                    "spec.compute.env",
                    f"{AUTO_PROVISION_ENV}={env.value!r} contradicts "
                    "spec.cluster.autoProvision: the operator provisions this cluster, so "
                    f'nodes must not; set {AUTO_PROVISION_ENV} to "false" or remove it.',
                )
            )
    doc = parsed_config(cluster) or {}
    if doc.get(AUTO_PROVISION_KEY) is True:
        problems.append(
            _problem(
                "spec.config",
                f"{AUTO_PROVISION_KEY} = true contradicts spec.cluster.autoProvision: the "
                f"operator provisions this cluster, so nodes must not; set "
                f"{AUTO_PROVISION_KEY} = false or remove it.",
            )
        )
    return problems


def _normal_path(path: str) -> str:
    return posixpath.normpath(path) if path else path


def _pod_volume_names(cluster: RestateCluster) -> set[str]:
    """Volumes the operator puts in the pod for this spec (user mounts may reference them)."""
    names = {STORAGE_VOLUME, TMP_VOLUME, CONFIG_VOLUME}
    security = cluster.spec.security_or_default
    if security.request_signing_private_key is not None:
        names.add(SIGNING_KEY_VOLUME)
    if security.trusted_ca_certs:
        names |= {TRUSTED_CA_VOLUME, COMBINED_CERTS_VOLUME}
    return names


def _duplicates(values: Iterable[str]) -> set[str]:
    return {v for v, n in Counter(values).items() if n > 1}


def _check_volumes(cluster: RestateCluster) -> list[SpecProblem]:
    compute = cluster.spec.compute
    problems: list[SpecProblem] = []

    volume_names: list[str] = []
    for i, volume in enumerate(compute.extra_volumes or []):
        field = f"spec.compute.extraVolumes[{i}]"
        name = volume.get("name")
        if not isinstance(name, str) or not name:
            problems.append(_problem(f"{field}.name", "is required; give the volume a name."))
            continue
        volume_names.append(name)
        if name in OPERATOR_VOLUMES:
            problems.append(
                _problem(
                    f"{field}.name",
                    f"{name!r} is reserved for the operator's own volumes "
                    f"({', '.join(sorted(OPERATOR_VOLUMES))}); rename the volume.",
                )
            )
        kinds = sorted(set(volume) - {"name"} - RESTRICTED_VOLUME_TYPES)
        if kinds:
            problems.append(
                _problem(
                    field,
                    f"volume type {', '.join(kinds)} is not allowed by the restricted Pod "
                    f"Security Standard the cluster namespace enforces; use one of "
                    f"{', '.join(sorted(RESTRICTED_VOLUME_TYPES))}.",
                )
            )
    for name in sorted(_duplicates(volume_names)):
        problems.append(
            _problem("spec.compute.extraVolumes", f"volume name {name!r} is used more than once.")
        )

    known = _pod_volume_names(cluster) | set(volume_names)
    mount_paths: list[str] = []
    for i, mount in enumerate(compute.extra_volume_mounts or []):
        field = f"spec.compute.extraVolumeMounts[{i}]"
        name, path = mount.get("name"), mount.get("mountPath")
        if not isinstance(name, str) or not name:
            problems.append(_problem(f"{field}.name", "is required; name the volume to mount."))
        elif name not in known:
            problems.append(
                _problem(
                    f"{field}.name",
                    f"refers to volume {name!r}, which does not exist; add it to "
                    "spec.compute.extraVolumes or fix the name.",
                )
            )
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(
                _problem(f"{field}.mountPath", "is required and must be an absolute path.")
            )
            continue
        mount_paths.append(_normal_path(path))
        if _normal_path(path) in OPERATOR_MOUNT_PATHS:
            problems.append(
                _problem(
                    f"{field}.mountPath",
                    f"{path!r} is where the operator mounts its own volumes "
                    f"({', '.join(sorted(OPERATOR_MOUNT_PATHS))}); choose another path.",
                )
            )
    for path in sorted(_duplicates(mount_paths)):
        problems.append(
            _problem(
                "spec.compute.extraVolumeMounts", f"mountPath {path!r} is used more than once."
            )
        )
    return problems


def _check_sidecars(cluster: RestateCluster) -> list[SpecProblem]:
    compute = cluster.spec.compute
    problems: list[SpecProblem] = []
    known_volumes = _pod_volume_names(cluster) | {
        v["name"] for v in compute.extra_volumes or [] if isinstance(v.get("name"), str)
    }
    names: list[str] = []
    for i, sidecar in enumerate(compute.sidecars or []):
        field = f"spec.compute.sidecars[{i}]"
        name = sidecar.get("name")
        if not isinstance(name, str) or not name:
            problems.append(_problem(f"{field}.name", "is required; give the sidecar a name."))
        else:
            names.append(name)
            if name in (CONTAINER_NAME, CA_INIT_CONTAINER_NAME):
                problems.append(
                    _problem(
                        f"{field}.name",
                        f"{name!r} is the name of an operator container; rename the sidecar.",
                    )
                )
        if not sidecar.get("image"):
            problems.append(_problem(f"{field}.image", "is required; set the sidecar's image."))
        for violation in restricted_violations(harden_sidecar(sidecar)):
            problems.append(
                _problem(
                    field,
                    f"{violation}: the cluster namespace enforces the restricted Pod Security "
                    "Standard; remove or change that setting.",
                )
            )
        for port in sidecar.get("ports") or []:
            if (port or {}).get("containerPort") in (INGRESS_PORT, ADMIN_PORT, NODE_PORT):
                problems.append(
                    _problem(
                        f"{field}.ports",
                        f"containerPort {port['containerPort']} is used by Restate; "
                        "choose another port.",
                    )
                )
        for j, mount in enumerate(sidecar.get("volumeMounts") or []):
            ref = (mount or {}).get("name")
            if ref not in known_volumes:
                problems.append(
                    _problem(
                        f"{field}.volumeMounts[{j}].name",
                        f"refers to volume {ref!r}, which does not exist; add it to "
                        "spec.compute.extraVolumes or fix the name.",
                    )
                )
    for name in sorted(_duplicates(names)):
        problems.append(
            _problem("spec.compute.sidecars", f"sidecar name {name!r} is used more than once.")
        )
    return problems


def _check_aws(cluster: RestateCluster) -> list[SpecProblem]:
    security = cluster.spec.security_or_default
    problems = []
    arn = security.aws_pod_identity_association_role_arn
    if arn is not None and not _ROLE_ARN_RE.match(arn):
        problems.append(
            _problem(
                "spec.security.awsPodIdentityAssociationRoleArn",
                f"{arn!r} is not an IAM role ARN; expected arn:aws:iam::<account-id>:role/<name>.",
            )
        )
    for i, group in enumerate(security.aws_pod_security_groups or []):
        if not _SECURITY_GROUP_RE.match(group):
            problems.append(
                _problem(
                    f"spec.security.awsPodSecurityGroups[{i}]",
                    f"{group!r} is not a security group id; expected sg- followed by 8 or 17 "
                    "lowercase hex digits (e.g. sg-0123456789abcdef0).",
                )
            )
    return problems


def _check_peer(field: str, peer: NetworkPolicyPeer) -> list[SpecProblem]:
    has_selector = peer.pod_selector is not None or peer.namespace_selector is not None
    if peer.ip_block is None:
        if not has_selector:
            return [_problem(field, "is empty; set ipBlock, podSelector and/or namespaceSelector.")]
        return []
    if has_selector:
        return [
            _problem(
                field,
                "combines ipBlock with a selector, which NetworkPolicy does not allow; "
                "split it into two peers.",
            )
        ]
    try:
        network = ipaddress.ip_network(peer.ip_block.cidr, strict=False)
    except ValueError:
        return [
            _problem(
                f"{field}.ipBlock.cidr",
                f"{peer.ip_block.cidr!r} is not a CIDR; use e.g. 10.0.0.0/16.",
            )
        ]
    problems = []
    for j, excluded in enumerate(peer.ip_block.except_ or []):
        try:
            inner = ipaddress.ip_network(excluded, strict=False)
        except ValueError:
            inner = None
        inside = (
            inner is not None
            and inner != network
            and inner.network_address in network
            and inner.broadcast_address in network
        )
        if not inside:
            problems.append(
                _problem(
                    f"{field}.ipBlock.except[{j}]",
                    f"{excluded!r} must be a CIDR strictly inside {peer.ip_block.cidr}.",
                )
            )
    return problems


def _check_network(cluster: RestateCluster) -> list[SpecProblem]:
    security = cluster.spec.security_or_default
    problems: list[SpecProblem] = []
    peers = security.network_peers
    if peers is not None:
        for kind in ("ingress", "admin", "node", "metrics"):
            for i, peer in enumerate(getattr(peers, kind) or []):
                problems += _check_peer(f"spec.security.networkPeers.{kind}[{i}]", peer)
    for i, rule in enumerate(security.network_egress_rules or []):
        field = f"spec.security.networkEgressRules[{i}]"
        for j, peer in enumerate(rule.to or []):
            problems += _check_peer(f"{field}.to[{j}]", peer)
        for j, port in enumerate(rule.ports or []):
            if port.end_port is None:
                continue
            if not isinstance(port.port, int) or port.end_port < port.port:
                problems.append(
                    _problem(
                        f"{field}.ports[{j}].endPort",
                        "needs a numeric port no greater than endPort.",
                    )
                )
    return problems


def _check_signing_key(cluster: RestateCluster) -> list[SpecProblem]:
    key = cluster.spec.security_or_default.request_signing_private_key
    if key is None:
        return []
    field = "spec.security.requestSigningPrivateKey"
    problems = []
    if key.secret is not None:
        problems += _check_secret_ref(f"{field}.secret", key.secret.secret_name, key.secret.key)
    if key.secret_provider is not None:
        path = key.secret_provider.path
        parts = path.split("/")
        if not path or path.startswith("/") or ".." in parts:
            problems.append(
                _problem(
                    f"{field}.secretProvider.path",
                    f"{path!r} must be a relative path inside the mounted secret (no leading "
                    "'/' and no '..'), e.g. private.pem.",
                )
            )
    return problems


def _check_secret_ref(field: str, secret_name: str, key: str) -> list[SpecProblem]:
    problems = []
    if not _DNS_SUBDOMAIN_RE.match(secret_name) or len(secret_name) > 253:
        problems.append(
            _problem(f"{field}.secretName", f"{secret_name!r} is not a valid Secret name.")
        )
    if not _SECRET_KEY_RE.match(key):
        problems.append(
            _problem(
                f"{field}.key",
                f"{key!r} is not a valid Secret key; use letters, digits, '-', '_' and '.'.",
            )
        )
    return problems


def _check_trusted_ca_certs(cluster: RestateCluster) -> list[SpecProblem]:
    problems = []
    for i, ref in enumerate(cluster.spec.security_or_default.trusted_ca_certs or []):
        problems += _check_secret_ref(
            f"spec.security.trustedCaCerts[{i}]", ref.secret_name, ref.key
        )
    return problems


#: spec.snapshots fields, the ``[worker.snapshots]`` key and the variable each one sets.
_SNAPSHOT_OPTIONS: Final = (
    ("destination", "destination", DESTINATION_ENV),
    ("intervalRecords", "snapshot-interval-num-records", INTERVAL_ENV),
    ("retained", "num-retained", RETAINED_ENV),
)


def _check_snapshots(cluster: RestateCluster) -> list[SpecProblem]:
    """``spec.snapshots`` and the user's own setting of the same option must agree.

    The operator sets each option on every node as a variable, which Restate reads over the
    file, and a user variable of the same name replaces the operator's: a different value in
    ``spec.config`` would be silently ignored, one in ``spec.compute.env`` would win.
    """
    spec = cluster.spec.snapshots
    if spec is None:
        return []
    values = {
        "destination": spec.destination,
        "intervalRecords": spec.interval_records,
        "retained": spec.retained,
    }
    doc = parsed_config(cluster) or {}
    problems = []
    for field, key, env_name in _SNAPSHOT_OPTIONS:
        ours = values[field]
        if ours is None:
            continue
        theirs = config_snapshot_option(doc, key)
        if theirs is not None and str(theirs) != str(ours):
            problems.append(
                _problem(
                    f"spec.snapshots.{field}",
                    f"{ours!r} differs from [worker.snapshots] {key} = {theirs!r} in "
                    f"spec.config; the operator sets {key} on every node from "
                    f"spec.snapshots.{field}. Remove {key} from spec.config or make the two "
                    "equal.",
                )
            )
        for entry in env_entries(cluster, env_name):
            if entry.value_from is not None or (entry.value or "") != str(ours):
                problems.append(
                    _problem(
                        f"spec.snapshots.{field}",
                        f"{ours!r} differs from {env_name} in spec.compute.env, which would "
                        f"replace it on every node. Remove {env_name} from spec.compute.env "
                        f"or make the two equal.",
                    )
                )
    return problems
