"""Partition snapshots on request: the annotation, the planner, the status, the nodes'
variables and the spec checks. Pure: observations built here, no cluster (the real
restate-server is in ``e2e/test_restate_snapshots.py``)."""

from __future__ import annotations

import asyncio
import time
from concurrent import futures
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from pydantic import ValidationError

from restate_op import protowire as wire
from restate_op import snapshot_reader
from restate_op.api.models import RestateCluster
from restate_op.children.env import restate_env
from restate_op.cluster_effects import PLANNERS
from restate_op.decide import MACHINE, conclude, decide, forget, snapshot_key
from restate_op.effects import Emit, Forget, Outcome, TakeSnapshots, WriteStatus
from restate_op.executor import Executor
from restate_op.memory import Memory
from restate_op.observe import Observation
from restate_op.plan import make_plan
from restate_op.restate_health import (
    ClusterConfiguration,
    NodeIdent,
    NodeState,
    PodHealth,
    RestateHealth,
)
from restate_op.settings import OperatorSettings
from restate_op.snapshots import (
    DESTINATION_ENV,
    INTERVAL_ENV,
    RETAINED_ENV,
    SNAPSHOT_ANNOTATION,
    PartitionResult,
    SnapshotRun,
    encode_request,
    parse_response,
    pending_token,
)
from restate_op.validation import validate
from tests.test_verdicts import cluster, converged

NOW = 1_800_000_000.0
PODS = ("restate-0", "restate-1", "restate-2")
DESTINATION = "s3://backups/rc"


def _raw(
    token: str | None = "t1",
    *,
    snapshots: dict[str, Any] | None = None,
    handled: str | None = None,
    config: str | None = None,
    env: list[dict[str, Any]] | None = None,
    phase: str = "Ready",
) -> dict[str, Any]:
    raw = cluster(phase, replicas=3, provisioned=True, config=config)
    if snapshots is not None:
        raw["spec"]["snapshots"] = snapshots
    if env is not None:
        raw["spec"]["compute"]["env"] = env
    if token is not None:
        raw["metadata"]["annotations"] = {SNAPSHOT_ANNOTATION: token}
    if handled is not None:
        raw["status"]["snapshots"] = {"request": handled}
    return raw


def _healthy() -> RestateHealth:
    pods = tuple(
        PodHealth(p, NodeIdent(i + 1, 1, "Alive", "Member", ("admin", "worker")))
        for i, p in enumerate(PODS)
    )
    nodes = tuple(NodeState(i + 1, alive=True, generation=1, leads=(i,)) for i in range(3))
    return RestateHealth(NOW - 1, pods, nodes, ClusterConfiguration(3, "{node: 2}"))


def _running(*names: str) -> tuple[dict[str, Any], ...]:
    return tuple(
        {"metadata": {"name": n, "namespace": "rc"}, "status": {"phase": "Running"}} for n in names
    )


def _obs(raw: dict[str, Any], health: RestateHealth | None = None, **changes: Any) -> Observation:
    obs = converged(raw)
    return replace(
        obs,
        pods=_running(*PODS),
        restate_health=health if health is not None else _healthy(),
        settings=OperatorSettings(status_coalesce_seconds=0),
        **changes,
    )


def _snapshot_effects(obs: Observation) -> list[TakeSnapshots]:
    return [e for e in decide(obs, NOW).effects if isinstance(e, TakeSnapshots)]


def _written(obs: Observation) -> tuple[dict[str, Any], list[Emit]]:
    decision = decide(obs, NOW)
    conclusion = conclude(obs, decision, Outcome(), NOW)
    [write] = [e for e in conclusion.effects if isinstance(e, WriteStatus)]
    return dict(write.status), [e for e in conclusion.effects if isinstance(e, Emit)]


# -- the trigger -----------------------------------------------------------------------------


def test_a_new_annotation_value_is_a_request_until_status_holds_it() -> None:
    assert pending_token(RestateCluster.model_validate(_raw("t1"))) == "t1"
    assert pending_token(RestateCluster.model_validate(_raw("t1", handled="t1"))) is None
    assert pending_token(RestateCluster.model_validate(_raw("t2", handled="t1"))) == "t2"
    assert pending_token(RestateCluster.model_validate(_raw(None))) is None
    assert pending_token(RestateCluster.model_validate(_raw("  "))) is None


# -- planning --------------------------------------------------------------------------------


def test_a_request_snapshots_every_partition_through_a_joined_node() -> None:
    obs = _obs(_raw(snapshots={"destination": DESTINATION}))
    decision = decide(obs, NOW)
    assert decision.phase == "Ready"
    [take] = [e for e in decision.effects if isinstance(e, TakeSnapshots)]
    assert take == TakeSnapshots(
        snapshot_key("rc"), "t1", "restate-0.restate-cluster.rc.svc.cluster.local:5122", 3
    )
    assert decision.requeue_after == 0.0


@pytest.mark.parametrize("phase", ["Degraded", "Expanding", "ScalingDown"])
def test_snapshots_are_taken_in_every_state_whose_pods_serve(phase: str) -> None:
    assert "take_snapshots" in MACHINE.state(phase).effects


def test_a_handled_token_or_no_annotation_takes_nothing() -> None:
    spec = {"destination": DESTINATION}
    assert not _snapshot_effects(_obs(_raw("t1", snapshots=spec, handled="t1")))
    assert not _snapshot_effects(_obs(_raw(None, snapshots=spec)))


def test_an_answer_in_memory_is_not_asked_again() -> None:
    run = SnapshotRun("t1", NOW, (PartitionResult(0, "snap_a", 0, 5),))
    obs = _obs(_raw(snapshots={"destination": DESTINATION}), snapshot_run=run)
    assert not _snapshot_effects(obs)
    stale = replace(run, token="t0")
    assert _snapshot_effects(replace(obs, snapshot_run=stale))


def test_a_request_waits_for_a_node_that_joined() -> None:
    health = RestateHealth(NOW - 1, error="no pod has joined a Restate cluster yet")
    obs = _obs(_raw(snapshots={"destination": DESTINATION}), health)
    decision = decide(obs, NOW)
    assert not [e for e in decision.effects if isinstance(e, TakeSnapshots)]
    assert any("waits for a Restate node" in n for n in decision.notes)
    waiting = PLANNERS["take_snapshots"](obs, make_plan(obs))
    assert waiting.requeue_after is None, "the health read's clock brings the cluster back"
    starting = replace(
        _healthy(),
        pods=tuple(PodHealth(p, NodeIdent(None, None, "StartingUp", "")) for p in PODS),
    )
    assert not _snapshot_effects(_obs(_raw(snapshots={"destination": DESTINATION}), starting))


def test_a_node_whose_pod_does_not_run_is_not_asked() -> None:
    obs = replace(_obs(_raw(snapshots={"destination": DESTINATION})), pods=_running("restate-2"))
    [take] = _snapshot_effects(obs)
    assert take.target.startswith("restate-2.")


def test_a_refused_spec_takes_nothing() -> None:
    config = '[worker.snapshots]\ndestination = "s3://elsewhere/x"\n'
    obs = _obs(_raw(snapshots={"destination": DESTINATION}, config=config))
    decision = decide(obs, NOW)
    assert decision.phase == "Degraded"
    assert not [e for e in decision.effects if isinstance(e, TakeSnapshots)]


def test_a_destination_the_user_configured_in_the_file_is_used_too() -> None:
    config = f'[worker.snapshots]\ndestination = "{DESTINATION}"\n'
    assert _snapshot_effects(_obs(_raw(config=config)))


# -- status ----------------------------------------------------------------------------------


def test_the_answer_is_recorded_per_partition_with_an_event() -> None:
    results = tuple(PartitionResult(p, f"snap_{p}", p, 10 + p) for p in range(3))
    obs = _obs(
        _raw(snapshots={"destination": DESTINATION}), snapshot_run=SnapshotRun("t1", NOW, results)
    )
    status, emitted = _written(obs)
    assert status["phase"] == "Ready"
    assert status["snapshots"] == {
        "request": "t1",
        "takenAt": "2027-01-15T08:00:00Z",
        "partitions": [
            {"partition": 0, "snapshotId": "snap_0", "minAppliedLsn": 10},
            {"partition": 1, "snapshotId": "snap_1", "minAppliedLsn": 11},
            {"partition": 2, "snapshotId": "snap_2", "minAppliedLsn": 12},
        ],
    }
    assert [(e.type, e.reason) for e in emitted] == [("Normal", "SnapshotTaken")]
    assert "3/3 partitions" in emitted[0].note


def test_a_failed_partition_keeps_its_last_snapshot_and_says_why() -> None:
    raw = _raw("t2", snapshots={"destination": DESTINATION}, handled="t1")
    raw["status"]["snapshots"]["partitions"] = [
        {"partition": 0, "snapshotId": "snap_old0", "minAppliedLsn": 3},
        {"partition": 1, "snapshotId": "snap_old1", "minAppliedLsn": 4},
    ]
    results = (
        PartitionResult(0, "snap_new0", 0, 9),
        PartitionResult(1, error="INTERNAL: Failed to create snapshot"),
    )
    status, emitted = _written(_obs(raw, snapshot_run=SnapshotRun("t2", NOW, results)))
    section = status["snapshots"]
    assert section["request"] == "t2"
    assert section["partitions"] == [
        {"partition": 0, "snapshotId": "snap_new0", "minAppliedLsn": 9},
        {
            "partition": 1,
            "snapshotId": "snap_old1",
            "minAppliedLsn": 4,
            "error": "INTERNAL: Failed to create snapshot",
        },
    ]
    assert section["error"].startswith("1/2 partitions have no new snapshot (first: partition 1")
    assert status["phase"] == "Ready", "a failed snapshot does not degrade the cluster"
    assert [(e.type, e.reason) for e in emitted] == [("Warning", "SnapshotFailed")]


def test_without_a_repository_the_answer_names_the_field_and_the_cluster_stays_ready() -> None:
    obs = _obs(_raw("t1"))
    assert not _snapshot_effects(obs)
    status, emitted = _written(obs)
    assert status["phase"] == "Ready"
    assert status["snapshots"]["request"] == "t1"
    assert "spec.snapshots.destination is not set" in status["snapshots"]["error"]
    assert [(e.type, e.reason) for e in emitted] == [("Warning", "SnapshotNotConfigured")]


def test_a_handled_request_stays_in_status_and_is_not_announced_again() -> None:
    raw = _raw("t1", snapshots={"destination": DESTINATION}, handled="t1")
    raw["status"]["snapshots"]["takenAt"] = "2027-01-15T07:00:00Z"
    run = SnapshotRun("t1", NOW, (PartitionResult(0, "snap_a", 0, 5),))
    obs = _obs(raw, snapshot_run=run)
    decision = decide(obs, NOW)
    conclusion = conclude(obs, decision, Outcome(), NOW)
    assert not [e for e in conclusion.effects if isinstance(e, Emit)]
    for effect in conclusion.effects:
        if isinstance(effect, WriteStatus):
            assert effect.status["snapshots"] == {
                "request": "t1",
                "takenAt": "2027-01-15T07:00:00Z",
            }


def test_a_gone_cluster_forgets_its_snapshot_answer() -> None:
    assert Forget(snapshot_key("rc")) in forget("rc")


# -- the executor ------------------------------------------------------------------------------


def test_the_executor_keeps_the_answer_in_memory() -> None:
    asked: list[tuple[str, int]] = []

    async def taker(target: str, partitions: int) -> tuple[PartitionResult, ...]:
        asked.append((target, partitions))
        return tuple(PartitionResult(p, f"snap_{p}", p, 1) for p in range(partitions))

    memory = Memory()
    executor = Executor(
        cast(Any, None), cast(Any, None), memory, clock=lambda: NOW, take_snapshots=taker
    )
    outcome = asyncio.run(executor.run([TakeSnapshots(snapshot_key("rc"), "t1", "n:5122", 2)]))
    assert outcome.error is None
    assert asked == [("n:5122", 2)]
    run = memory.get(snapshot_key("rc"))
    assert isinstance(run, SnapshotRun) and run.token == "t1" and run.taken_at == NOW
    assert [p.snapshot_id for p in run.partitions] == ["snap_0", "snap_1"]


# -- the wire ----------------------------------------------------------------------------------


def test_the_request_and_answer_use_restates_field_numbers() -> None:
    assert wire.fields(encode_request(7)) == {1: [7]}
    answer = wire.encode_field(1, b"snap_x") + wire.encode_field(2, 7) + wire.encode_field(3, 42)
    assert parse_response(7, answer) == PartitionResult(7, "snap_x", 7, 42)


# -- the nodes' configuration ------------------------------------------------------------------


def _env(raw: dict[str, Any]) -> dict[str, Any]:
    cluster_ = RestateCluster.model_validate(raw)
    return {e["name"]: e.get("value") for e in restate_env(cluster_, OperatorSettings())}


def test_spec_snapshots_become_restate_variables_on_every_node() -> None:
    spec = {"destination": DESTINATION, "intervalRecords": 10000, "retained": 3}
    env = _env(_raw(snapshots=spec))
    assert env[DESTINATION_ENV] == DESTINATION
    assert env[INTERVAL_ENV] == "10000"
    assert env[RETAINED_ENV] == "3"
    assert not {DESTINATION_ENV, INTERVAL_ENV, RETAINED_ENV} & set(_env(_raw()))
    only = _env(_raw(snapshots={"destination": DESTINATION}))
    assert DESTINATION_ENV in only and INTERVAL_ENV not in only and RETAINED_ENV not in only


def test_only_an_object_store_destination_is_accepted() -> None:
    for bad in ("file:///var/snapshots", "gs://b/p", "s3://"):
        with pytest.raises(ValidationError):
            RestateCluster.model_validate(_raw(snapshots={"destination": bad}))


# -- spec checks -------------------------------------------------------------------------------


def _problems(raw: dict[str, Any]) -> list[str]:
    return [p.message for p in validate(RestateCluster.model_validate(raw))]


def test_a_different_destination_in_the_config_is_refused_naming_both_fields() -> None:
    config = '[worker.snapshots]\ndestination = "s3://elsewhere/x"\n'
    [message] = _problems(_raw(snapshots={"destination": DESTINATION}, config=config))
    assert message.startswith("spec.snapshots.destination:")
    assert "spec.config" in message and "s3://elsewhere/x" in message
    assert "Remove destination from spec.config or make the two equal" in message


def test_the_same_destination_or_other_snapshot_keys_in_the_config_are_fine() -> None:
    config = (
        f'[worker.snapshots]\ndestination = "{DESTINATION}"\naws-region = "eu-west-1"\n'
        "num-retained = 2\n"
    )
    assert not _problems(_raw(snapshots={"destination": DESTINATION}, config=config))
    clash = _problems(_raw(snapshots={"destination": DESTINATION, "retained": 3}, config=config))
    assert len(clash) == 1 and clash[0].startswith("spec.snapshots.retained:")


def test_a_different_destination_variable_is_refused() -> None:
    env = [{"name": DESTINATION_ENV, "value": "s3://other/y"}]
    [message] = _problems(_raw(snapshots={"destination": DESTINATION}, env=env))
    assert message.startswith("spec.snapshots.destination:") and "spec.compute.env" in message
    same = [{"name": DESTINATION_ENV, "value": DESTINATION}]
    assert not _problems(_raw(snapshots={"destination": DESTINATION}, env=same))


# -- the reader, against a gRPC stand-in on a unix socket --------------------------------------


class _Node:
    """Answers ``CreatePartitionSnapshot`` like a node: partition 1 is refused, partition 2
    takes longer than the deadline."""

    def __init__(self, socket: str) -> None:
        self.asked: list[int] = []
        self.not_ready_once = {3}
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.unary_unary_rpc_method_handler(self._create)
        self.server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "restate.cluster_ctrl.ClusterCtrlSvc", {"CreatePartitionSnapshot": handler}
                ),
            )
        )
        self.server.add_insecure_port(f"unix://{socket}")

    def _create(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        partition = wire.integer(wire.fields(request), 1)
        self.asked.append(partition)
        if partition == 1:
            context.abort(grpc.StatusCode.INTERNAL, "Failed to create snapshot")
        if partition == 2:
            time.sleep(2)
        if partition in self.not_ready_once:
            self.not_ready_once.discard(partition)
            context.abort(grpc.StatusCode.INTERNAL, "Can not find a suitable node")
        return (
            wire.encode_field(1, f"snap_{partition}".encode())
            + wire.encode_field(2, partition)
            + wire.encode_field(3, 40 + partition)
        )


def _snapshots_of(tmp_path: Path, partitions: int = 4) -> tuple[_Node, list[PartitionResult]]:
    """``take_snapshots`` of ``partitions`` against a ``_Node`` on a socket in ``tmp_path``."""
    node = _Node(str(tmp_path / "node.sock"))
    node.server.start()
    try:
        target = f"unix://{tmp_path}/node.sock"
        return node, list(asyncio.run(snapshot_reader.take_snapshots(target, partitions)))
    finally:
        node.server.stop(grace=None)


def test_the_reader_asks_every_partition_and_reports_each_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_reader, "SNAPSHOT_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(snapshot_reader, "RETRY_DELAY_SECONDS", 0.05)
    node, results = _snapshots_of(tmp_path)
    # Refused partitions are asked again (3 times in all); a deadline is not.
    assert sorted(node.asked) == [0, 1, 1, 1, 2, 3, 3]
    assert results[0] == PartitionResult(0, "snap_0", 0, 40)
    assert results[3] == PartitionResult(3, "snap_3", 3, 43)
    assert results[1].error == "INTERNAL: Failed to create snapshot"
    assert results[2].error is not None and results[2].error.startswith("DEADLINE_EXCEEDED")


def test_the_reader_stops_asking_when_the_whole_request_ran_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(snapshot_reader, "CONCURRENCY", 1)
    monkeypatch.setattr(snapshot_reader, "TOTAL_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(snapshot_reader, "RETRY_DELAY_SECONDS", 0.05)
    node, results = _snapshots_of(tmp_path)
    assert results[0].snapshot_id == "snap_0"
    assert results[2].error is not None and results[2].error.startswith("DEADLINE_EXCEEDED")
    assert results[3].error == "not asked: the request's 0.5 s ran out"
    assert 3 not in node.asked
