"""Taking partition snapshots through a node (the I/O of ``restate_op.snapshots``).

Only the executor calls ``take_snapshots``. One ``CreatePartitionSnapshot`` per partition,
a few at a time, on the node port of one node that joined the cluster; its cluster
controller has the partition's leader export the snapshot and upload it to the repository
before it answers, so the deadline is longer than a health read's but still bounded: each
request, and the whole request too (a reconcile worker waits for it).
"""

from __future__ import annotations

import asyncio

import grpc
import grpc.aio

from restate_op import protowire as wire
from restate_op.snapshots import PartitionResult, encode_request, parse_response

CREATE_PARTITION_SNAPSHOT = "/restate.cluster_ctrl.ClusterCtrlSvc/CreatePartitionSnapshot"
#: One partition's export and upload (an empty partition takes ~0.1 s on a local store).
SNAPSHOT_TIMEOUT_SECONDS = 30.0
#: All partitions together; those not answered by then are reported as such.
TOTAL_TIMEOUT_SECONDS = 60.0
#: A partition refused is asked again, this many times in all, this far apart: just after
#: a start or a leader change Restate answers "Can not find a suitable node to take snapshot
#: of partition N" for a moment. A deadline is not retried (the budget would run out).
ATTEMPTS = 3
RETRY_DELAY_SECONDS = 1.0
#: Partitions asked at once: the leaders export in parallel, the repository sees a few
#: uploads at a time.
CONCURRENCY = 4


def _describe(exc: Exception) -> str:
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return f"{type(exc).__name__}: {exc}"


async def take_snapshots(target: str, partitions: int) -> tuple[PartitionResult, ...]:
    """Ask ``target`` (host:port of a joined node) to snapshot partitions ``0..partitions-1``.

    Never raises for Restate's answer: a refused or failed partition carries its error.
    """
    limit = asyncio.Semaphore(CONCURRENCY)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TOTAL_TIMEOUT_SECONDS
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(
            CREATE_PARTITION_SNAPSHOT,
            request_serializer=lambda r: r,
            response_deserializer=lambda r: r,
        )

        async def one(partition: int) -> PartitionResult:
            result = PartitionResult(partition)
            for attempt in range(ATTEMPTS):
                if attempt:
                    await asyncio.sleep(RETRY_DELAY_SECONDS)
                async with limit:
                    left = deadline - loop.time()
                    if left <= 0:
                        ran_out = f"the request's {TOTAL_TIMEOUT_SECONDS:g} s ran out"
                        return (
                            PartitionResult(partition, error=f"not asked: {ran_out}")
                            if result.error is None
                            else result
                        )
                    try:
                        answer: bytes = await call(
                            encode_request(partition),
                            timeout=min(SNAPSHOT_TIMEOUT_SECONDS, left),
                            wait_for_ready=False,
                        )
                        return parse_response(partition, answer)
                    except wire.WireError as exc:
                        return PartitionResult(partition, error=_describe(exc))
                    except grpc.aio.AioRpcError as exc:
                        result = PartitionResult(partition, error=_describe(exc))
                        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                            return result
            return result

        return tuple(await asyncio.gather(*(one(p) for p in range(partitions))))
