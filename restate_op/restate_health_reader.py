"""Reading a Restate cluster's health from its nodes (the I/O of ``restate_op.restate_health``).

Only the executor calls ``read_health``, with its pool of channels
(``restate_op.node_channels``): a read every 30 s per cluster would otherwise open and close
a connection per pod each time, which costs three times the calls themselves. Every request
has a short deadline: a node that does not answer is reported as such, never waited for.
Provisioning and ``remove_metadata_member`` are one-off and open their own channel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

import grpc
import grpc.aio

from restate_op import protowire as wire
from restate_op.node_channels import NodeChannels
from restate_op.restate_health import (
    NodeState,
    PodHealth,
    RestateHealth,
    parse_cluster_configuration,
    parse_cluster_state,
    parse_ident,
    parse_metadata_status,
)

GET_IDENT = "/restate.node_ctl_svc.NodeCtlSvc/GetIdent"
GET_CLUSTER_STATE = "/restate.cluster_ctrl.ClusterCtrlSvc/GetClusterState"
GET_CLUSTER_CONFIGURATION = "/restate.cluster_ctrl.ClusterCtrlSvc/GetClusterConfiguration"
METADATA_STATUS = "/restate.metadata_server_svc.MetadataServerSvc/Status"
REMOVE_METADATA_NODE = "/restate.metadata_server_svc.MetadataServerSvc/RemoveNode"
REQUEST_TIMEOUT_SECONDS = 5.0


#: Codes that say the node was not reached (rather than that it answered with an error):
#: its channel is dropped, so the next read connects afresh (``NodeChannels.discard``).
UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


async def _call(channel: grpc.aio.Channel, method: str, request: bytes = b"") -> bytes:
    # No serializers: requests and answers are bytes already (restate_op.protowire).
    call = channel.unary_unary(method)
    answer: bytes = await call(request, timeout=REQUEST_TIMEOUT_SECONDS, wait_for_ready=False)
    return answer


def _describe(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


def _unreachable(exc: Exception) -> bool:
    return isinstance(exc, grpc.aio.AioRpcError) and exc.code() in UNREACHABLE


async def _ident(
    pod: str, target: str, channel: grpc.aio.Channel, known_id: int | None, unreachable: set[str]
) -> PodHealth:
    try:
        return PodHealth(pod, ident=parse_ident(await _call(channel, GET_IDENT)))
    except (grpc.aio.AioRpcError, wire.WireError) as exc:
        if _unreachable(exc):
            unreachable.add(target)
        return PodHealth(pod, error=_describe(exc), known_id=known_id)


async def read_health(
    targets: Mapping[str, str],
    now: float,
    known: RestateHealth | None = None,
    channels: NodeChannels | None = None,
    full: bool = True,
) -> RestateHealth:
    """Ask every pod (``{pod: host:port}``) who it is, then one that joined for the
    cluster's state and configuration. Never raises: a failure is in the answer.

    ``known``: the previous read, whose node ids name the pods that stop answering.
    ``channels``: where the channels come from and stay (None: opened for this read only).
    ``full`` False: a glance first (``_glance``: one call for the whole cluster); a full
    read only when the glance sees anything but the last read's nodes, still alive.
    """
    pool = channels if channels is not None else NodeChannels()
    unreachable: set[str] = set()
    try:
        async with pool.lease(targets.values()) as open_channels:
            health = await _read(targets, now, known, open_channels, unreachable, full)
        for target in unreachable:
            await pool.discard(target)
        return health
    finally:
        if channels is None:
            await pool.close()


async def _read(
    targets: Mapping[str, str],
    now: float,
    known: RestateHealth | None,
    channels: Mapping[str, grpc.aio.Channel],
    unreachable: set[str],
    full: bool,
) -> RestateHealth:
    if not full and known is not None:
        glanced = await _glance(targets, known, channels)
        if glanced is not None:
            return replace(known, read_at=now, nodes=glanced)
    ids = {p.pod: p.node_id for p in known.pods} if known is not None else {}
    ordered = sorted(targets.items())
    pods = tuple(
        await asyncio.gather(
            *(_ident(pod, t, channels[t], ids.get(pod), unreachable) for pod, t in ordered)
        )
    )
    answered = [(health, t) for health, (_, t) in zip(pods, ordered, strict=True)]
    idents = [(health.ident, t) for health, t in answered if health.ident is not None]
    joined = [t for ident, t in idents if ident.node_id is not None]
    if not joined:
        failed = [p for p in pods if p.error]
        if failed:
            more = f" (and {len(failed) - 1} more pod(s))" if len(failed) > 1 else ""
            why = f"{failed[0].pod}: {failed[0].error}{more}"
        else:
            why = "no pod has joined a Restate cluster yet"
        return RestateHealth(now, pods=pods, error=why)
    last_error = ""
    members = [t for ident, t in idents if ident.metadata == "Member"]
    for target in joined:
        asked = target
        try:
            nodes = parse_cluster_state(await _call(channels[target], GET_CLUSTER_STATE))
            config = parse_cluster_configuration(
                await _call(channels[target], GET_CLUSTER_CONFIGURATION)
            )
            metadata: frozenset[int] = frozenset()
            leader = None
            if members:
                asked = members[0]
                metadata, leader = parse_metadata_status(
                    await _call(channels[asked], METADATA_STATUS)
                )
        except (grpc.aio.AioRpcError, wire.WireError) as exc:
            if _unreachable(exc):
                unreachable.add(asked)
            last_error = _describe(exc)
            continue
        return RestateHealth(
            now,
            pods=pods,
            nodes=nodes,
            configuration=config,
            metadata_members=metadata,
            metadata_leader=leader,
        )
    return RestateHealth(now, pods=pods, error=f"GetClusterState failed: {last_error}")


async def _glance(
    targets: Mapping[str, str], known: RestateHealth, channels: Mapping[str, grpc.aio.Channel]
) -> tuple[NodeState, ...] | None:
    """The cluster controller's view of the nodes, from one node, when it shows the last
    read's nodes still there (each pod's node alive with the generation it answered with);
    None when it shows anything else, or the last read was not whole.

    A Ready cluster's poll: the pods, the configuration and the metadata members of the last
    read stand while every node is alive in the same generation (a restarted node has a new
    one; a frozen or gone one is dead to the controller within seconds). One call instead of
    one per pod plus three.
    """
    idents = [p.ident for p in known.pods]
    if (
        not known.ok
        or known.configuration is None
        or {p.pod for p in known.pods} != set(targets)
        or any(i is None or i.node_id is None for i in idents)
    ):
        return None
    first = sorted(targets.items())[0][1]
    try:
        nodes = parse_cluster_state(await _call(channels[first], GET_CLUSTER_STATE))
    except (grpc.aio.AioRpcError, wire.WireError):
        return None  # the full read says what is wrong, and drops an unreachable channel
    by_id = {n.node_id: n for n in nodes}
    for ident in idents:
        assert ident is not None
        node = by_id.get(ident.node_id) if ident.node_id is not None else None
        if node is None or not node.alive or node.generation != ident.generation:
            return None
    return nodes


async def remove_metadata_member(leader: str, node_id: int) -> None:
    """``MetadataServerSvc/RemoveNode`` of ``node_id`` on the metadata leader ``leader``
    (only the leader may; a follower answers INTERNAL "needs to be processed by the
    metadata cluster leader"). Raises ``grpc.aio.AioRpcError`` when refused."""
    async with grpc.aio.insecure_channel(leader) as channel:
        await _call(channel, REMOVE_METADATA_NODE, wire.encode_field(1, node_id))
