"""Provisioning a new Restate cluster, once, through the node control service.

Restate 1.x nodes started with ``auto-provision = false`` wait until someone provisions the
cluster. The operator does it with the ``ProvisionCluster`` RPC of
``restate.node_ctl_svc.NodeCtlSvc`` on the node port (5122) of the first pod, exactly what
``restatectl provision`` does. With ``dry_run`` false and every optional field unset, the
request message encodes to zero bytes, so no generated protobuf code is needed: partitions,
replication and log provider come from the nodes' own configuration.
"""

from __future__ import annotations

import grpc
import grpc.aio

from restate_op.effects import ProvisionResult

PROVISION_METHOD = "/restate.node_ctl_svc.NodeCtlSvc/ProvisionCluster"
CONNECT_TIMEOUT_SECONDS = 10.0
REQUEST_TIMEOUT_SECONDS = 30.0


async def provision_cluster(target: str) -> ProvisionResult:
    """Call ProvisionCluster on ``target`` (host:port). Already provisioned counts as success."""
    async with grpc.aio.insecure_channel(target) as channel:
        try:
            call = channel.unary_unary(
                PROVISION_METHOD,
                request_serializer=lambda request: request,
                response_deserializer=lambda response: response,
            )
            await call(
                b"", timeout=CONNECT_TIMEOUT_SECONDS + REQUEST_TIMEOUT_SECONDS, wait_for_ready=False
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.ALREADY_EXISTS:
                return ProvisionResult(True, True, "The Restate cluster was already provisioned")
            return ProvisionResult(
                False, False, f"ProvisionCluster failed: {exc.code().name}: {exc.details()}"
            )
    return ProvisionResult(True, False, "Provisioned the Restate cluster")
