"""The health of a Restate cluster by Restate's own account (issue 14 #1).

Probes say a pod answers; they do not say it joined the cluster, serves as a metadata
member or leads anything. The operator asks the nodes themselves, on the node port (5122)
that provisioning already uses, the same gRPC services ``restatectl status`` reads:

* ``NodeCtlSvc/GetIdent`` on every running pod: its node id and generation, whether it is a
  metadata-server member (one request per pod: only a node can say which pod it is);
* ``ClusterCtrlSvc/GetClusterState`` on one of them: which nodes the cluster controller
  sees alive or dead, and which partition each node runs as leader;
* ``ClusterCtrlSvc/GetClusterConfiguration`` on the same one: the partition count and
  partition replication the cluster was provisioned with (drift, #5);
* ``MetadataServerSvc/Status`` on a metadata member: the metadata cluster's configured
  members and its leader (a scale-down removes a departing member through the leader).

This module is pure (the answers, parsed and judged); ``restate_op.restate_health_reader``
asks, and only the executor calls it. Field numbers are those of Restate's ``.proto`` files (1.7:
``crates/core/protobuf/{node_ctl_svc,cluster_ctrl_svc}.proto``,
``crates/types/protobuf/restate/{cluster,common}.proto``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from restate_op import protowire as wire
from restate_op.api.models import RestateHealthStatus
from restate_op.pod_health import pod_names
from restate_op.validation import replication_nodes

#: How old a read may be before the next: while Ready (the default of
#: ``--restate-health-seconds``), and while anything changes (a roll, a scale, a failure).
#: Each read is one request per pod plus two (three with a metadata member): at 3 pods, 12
#: a minute while Ready (``python -m bench --only health`` measures it).
HEALTH_REFRESH_READY = 30.0
HEALTH_REFRESH_CHANGING = 5.0
#: A read due within this is made at once (see ``restate_op.decide.health_reads``).
HEALTH_READ_SLACK = 1.0

#: The figures of the ``restate_operator_restate_cluster`` gauge (a fixed label set).
RESTATE_FIGURES = ("partitions", "partitions_led", "replication", "nodes_alive", "metadata_members")

#: restate.common.MetadataServerStatus
METADATA_STATUS = {
    0: "Unknown",
    1: "StartingUp",
    2: "AwaitingProvisioning",
    3: "Member",
    4: "Standby",
}
#: restate.common.NodeStatus
NODE_STATUS = {0: "Unknown", 1: "Alive", 2: "StartingUp", 3: "ShuttingDown"}
#: restate.cluster.RunMode
LEADER = 1


@dataclass(frozen=True)
class NodeIdent:
    """What one pod's node says about itself (``GetIdent``)."""

    #: None until the node joined a cluster.
    node_id: int | None
    generation: int | None
    status: str
    metadata: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class NodeState:
    """One node as the cluster controller sees it (``GetClusterState``)."""

    node_id: int
    alive: bool
    generation: int | None = None
    #: Partitions this node runs as the effective leader.
    leads: tuple[int, ...] = ()


@dataclass(frozen=True)
class ClusterConfiguration:
    partitions: int
    #: The partition replication property, as Restate prints it (``{node: 2}``); None: unset.
    replication: str | None


@dataclass(frozen=True)
class PodHealth:
    pod: str
    ident: NodeIdent | None = None
    #: The node port did not answer: why.
    error: str | None = None
    #: The node id this pod had at an earlier read (a pod that stopped answering is still
    #: named when the cluster controller reports its node dead).
    known_id: int | None = None

    @property
    def node_id(self) -> int | None:
        return self.ident.node_id if self.ident is not None else self.known_id


@dataclass(frozen=True)
class RestateHealth:
    """One read of a cluster's health, or why it could not be read."""

    read_at: float
    pods: tuple[PodHealth, ...] = ()
    nodes: tuple[NodeState, ...] = ()
    configuration: ClusterConfiguration | None = None
    #: The metadata cluster's configured members (node ids) and leader, as one member says
    #: (``MetadataServerSvc/Status``); empty when unknown.
    metadata_members: frozenset[int] = frozenset()
    metadata_leader: int | None = None
    #: No node could answer for the cluster: what happened.
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def says_the_same(self, other: RestateHealth | None) -> bool:
        """Whether ``other`` is the same answer, read at another time."""
        return other is not None and replace(other, read_at=self.read_at) == self

    def pod_of(self, node_id: int) -> str | None:
        return next((p.pod for p in self.pods if p.node_id == node_id), None)

    def node_of(self, pod: str) -> int | None:
        """The node id ``pod`` answered with (None: it did not, or has none yet)."""
        return next((p.node_id for p in self.pods if p.pod == pod), None)

    @property
    def members(self) -> tuple[str, ...]:
        """Pods whose node is a metadata-server member."""
        return tuple(
            p.pod for p in self.pods if p.ident is not None and p.ident.metadata == "Member"
        )

    @property
    def led(self) -> frozenset[int]:
        """Partitions some alive node leads."""
        return frozenset(pid for n in self.nodes if n.alive for pid in n.leads)


def parse_ident(data: bytes) -> NodeIdent:
    msg = wire.fields(data)
    node = wire.message(msg, 2)
    return NodeIdent(
        node_id=wire.integer(node, 1) if node is not None else None,
        generation=wire.optional_integer(node, 2) if node is not None else None,
        status=NODE_STATUS.get(wire.integer(msg, 1), "Unknown"),
        metadata=METADATA_STATUS.get(wire.integer(msg, 9), "Unknown"),
        roles=tuple(
            v.decode("utf-8", errors="replace") for v in msg.get(4, ()) if isinstance(v, bytes)
        ),
    )


def parse_cluster_state(data: bytes) -> tuple[NodeState, ...]:
    state = wire.message(wire.fields(data), 1) or {}
    nodes = []
    for node_id, node in sorted(wire.int_keyed_map(state, 4).items()):
        alive = wire.message(node, 1)
        if alive is None:
            nodes.append(NodeState(node_id, alive=False))
            continue
        generational = wire.message(alive, 1) or {}
        leads = tuple(
            sorted(
                pid
                for pid, status in wire.int_keyed_map(alive, 3).items()
                if wire.integer(status, 3) == LEADER
            )
        )
        nodes.append(
            NodeState(
                node_id,
                alive=True,
                generation=wire.optional_integer(generational, 2),
                leads=leads,
            )
        )
    return tuple(nodes)


def parse_metadata_status(data: bytes) -> tuple[frozenset[int], int | None]:
    """``StatusResponse``: the configured members (field 2's ``map<uint32, int64>``, by
    node id) and the leader's node id."""
    msg = wire.fields(data)
    configuration = wire.message(msg, 2) or {}
    members = frozenset(wire.integer(entry, 1) for entry in wire.messages(configuration, 2))
    return members, wire.optional_integer(msg, 3)


def parse_cluster_configuration(data: bytes) -> ClusterConfiguration:
    config = wire.message(wire.fields(data), 1) or {}
    replication = wire.message(config, 2)
    return ClusterConfiguration(
        partitions=wire.integer(config, 1),
        replication=wire.text(replication, 1) if replication is not None else None,
    )


def problems(health: RestateHealth, pods: tuple[str, ...]) -> tuple[str, ...]:
    """What keeps the cluster from being healthy by Restate's account, each naming the pod
    (or partition) it is on; empty when healthy. ``pods``: the pods that should be nodes."""
    if health.error is not None:
        return (f"Restate's view could not be read: {health.error}",)
    found: list[str] = []
    by_pod = {p.pod: p for p in health.pods}
    for pod in pods:
        seen = by_pod.get(pod)
        if seen is None or seen.ident is None:
            why = seen.error if seen is not None and seen.error else "did not answer"
            found.append(f"pod {pod}: the node port {why}")
        elif seen.ident.node_id is None:
            found.append(f"pod {pod} runs but has not joined the Restate cluster")
        elif seen.ident.status != "Alive":
            found.append(f"pod {pod}: node N{seen.ident.node_id} is {seen.ident.status}")
    for node in health.nodes:
        owner = health.pod_of(node.node_id)
        if not node.alive and owner in pods:
            found.append(f"node N{node.node_id} ({owner}) is dead by the cluster controller")
    config = health.configuration
    if config is not None and config.partitions:
        leaderless = sorted(set(range(config.partitions)) - health.led)
        if leaderless:
            shown = ", ".join(str(p) for p in leaderless[:8])
            more = f" and {len(leaderless) - 8} more" if len(leaderless) > 8 else ""
            found.append(
                f"{len(leaderless)}/{config.partitions} partitions have no leader ({shown}{more})"
            )
    return tuple(found)


def health_status(
    health: RestateHealth | None, replicas: int, drift: tuple[str, ...] = ()
) -> RestateHealthStatus | None:
    """The compact ``status.restate`` of a read (None before the first, and at 0 replicas).

    Only what changes with the cluster, never the time of the read: a reconcile that finds
    Restate as it was writes nothing.
    """
    if health is None or replicas == 0:
        return None
    if health.error is not None:
        return RestateHealthStatus(error=health.error)
    config = health.configuration
    found = problems(health, pod_names(replicas))
    return RestateHealthStatus(
        members=list(health.members),
        nodes_alive=sum(1 for n in health.nodes if n.alive),
        partitions=config.partitions if config is not None else None,
        partitions_led=len(health.led),
        replication=config.replication if config is not None else None,
        problems=list(found) or None,
        drift=list(drift) or None,
    )


def health_figures(health: RestateHealth) -> dict[str, int | None]:
    """The gauges of one read, by figure; None: unknown."""
    if not health.ok:
        return dict.fromkeys(RESTATE_FIGURES)
    config = health.configuration
    return {
        "partitions": config.partitions if config is not None else None,
        "partitions_led": len(health.led),
        "replication": replication_nodes(config.replication) if config is not None else None,
        "nodes_alive": sum(1 for n in health.nodes if n.alive),
        "metadata_members": len(health.members),
    }
