"""Reading a Restate cluster's health from its nodes (the I/O of ``restate_op.restate_health``).

Only the executor calls ``read_health``. Every request has a short deadline: a node that
does not answer is reported as such, never waited for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import grpc
import grpc.aio

from restate_op import protowire as wire
from restate_op.restate_health import (
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


async def _call(channel: grpc.aio.Channel, method: str, request: bytes = b"") -> bytes:
    call = channel.unary_unary(
        method,
        request_serializer=lambda r: r,
        response_deserializer=lambda r: r,
    )
    answer: bytes = await call(request, timeout=REQUEST_TIMEOUT_SECONDS, wait_for_ready=False)
    return answer


def _describe(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


async def _ident(
    pod: str, target: str, known_id: int | None
) -> tuple[PodHealth, grpc.aio.Channel | None]:
    channel = grpc.aio.insecure_channel(target)
    try:
        return PodHealth(pod, ident=parse_ident(await _call(channel, GET_IDENT))), channel
    except (grpc.aio.AioRpcError, wire.WireError) as exc:
        await channel.close()
        return PodHealth(pod, error=_describe(exc), known_id=known_id), None


async def read_health(
    targets: Mapping[str, str], now: float, known: RestateHealth | None = None
) -> RestateHealth:
    """Ask every pod (``{pod: host:port}``) who it is, then one that joined for the
    cluster's state and configuration. Never raises: a failure is in the answer.

    ``known``: the previous read, whose node ids name the pods that stop answering.
    """
    ids = {p.pod: p.node_id for p in known.pods} if known is not None else {}
    answers = await asyncio.gather(
        *(_ident(pod, t, ids.get(pod)) for pod, t in sorted(targets.items()))
    )
    pods = tuple(health for health, _ in answers)
    channels = [c for _, c in answers if c is not None]
    try:
        joined = [
            c
            for (health, c) in answers
            if c is not None and health.ident is not None and health.ident.node_id is not None
        ]
        if not joined:
            failed = [p for p in pods if p.error]
            if failed:
                more = f" (and {len(failed) - 1} more pod(s))" if len(failed) > 1 else ""
                why = f"{failed[0].pod}: {failed[0].error}{more}"
            else:
                why = "no pod has joined a Restate cluster yet"
            return RestateHealth(now, pods=pods, error=why)
        last_error = ""
        members = [
            c
            for (health, c) in answers
            if c is not None and health.ident is not None and health.ident.metadata == "Member"
        ]
        for channel in joined:
            try:
                nodes = parse_cluster_state(await _call(channel, GET_CLUSTER_STATE))
                config = parse_cluster_configuration(
                    await _call(channel, GET_CLUSTER_CONFIGURATION)
                )
                metadata, leader = (
                    parse_metadata_status(await _call(members[0], METADATA_STATUS))
                    if members
                    else (frozenset(), None)
                )
            except (grpc.aio.AioRpcError, wire.WireError) as exc:
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
    finally:
        await asyncio.gather(*(c.close() for c in channels))


async def remove_metadata_member(leader: str, node_id: int) -> None:
    """``MetadataServerSvc/RemoveNode`` of ``node_id`` on the metadata leader ``leader``
    (only the leader may; a follower answers INTERNAL "needs to be processed by the
    metadata cluster leader"). Raises ``grpc.aio.AioRpcError`` when refused."""
    async with grpc.aio.insecure_channel(leader) as channel:
        await _call(channel, REMOVE_METADATA_NODE, wire.encode_field(1, node_id))
