"""A metadata quorum that can never form is refused before anything rolls (issue 14 #4).

Restate 1.7.12 with ``[metadata-server] raft-election-tick`` not above
``raft-heartbeat-tick`` stops at start-up on every metadata-server node ("failed running
raft: election tick must be greater than heartbeat tick"; probed in a loopback-only
namespace): the cluster could never run, so the spec is refused naming the field and fix.
"""

from __future__ import annotations

import pytest

from restate_op.validation import validate
from tests.test_replication_check import cluster


def _raft(election: int | None = None, heartbeat: int | None = None) -> str:
    lines = ["[metadata-server]"]
    if election is not None:
        lines.append(f"raft-election-tick = {election}")
    if heartbeat is not None:
        lines.append(f"raft-heartbeat-tick = {heartbeat}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("election", "heartbeat"), [(2, 2), (1, None), (None, 10), (3, 5)])
def test_an_election_tick_not_above_the_heartbeat_tick_is_refused(
    election: int | None, heartbeat: int | None
) -> None:
    [problem] = validate(cluster(3, _raft(election, heartbeat)))
    assert problem.field == "spec.config"
    assert "raft-election-tick" in problem.message and "raft-heartbeat-tick" in problem.message
    assert "could never elect a leader" in problem.message
    assert "Raise raft-election-tick" in problem.message


@pytest.mark.parametrize(("election", "heartbeat"), [(None, None), (11, None), (3, 2), (20, 4)])
def test_an_election_tick_above_the_heartbeat_tick_passes(
    election: int | None, heartbeat: int | None
) -> None:
    assert validate(cluster(3, _raft(election, heartbeat))) == []


def test_the_pods_variable_wins_over_the_file_and_is_named() -> None:
    env = [{"name": "RESTATE_METADATA_SERVER__RAFT_ELECTION_TICK", "value": "2"}]
    [problem] = validate(cluster(3, _raft(election=20), env=env))
    assert problem.field == "spec.compute.env[RESTATE_METADATA_SERVER__RAFT_ELECTION_TICK]"
    assert "(2, from spec.compute.env[RESTATE_METADATA_SERVER__RAFT_ELECTION_TICK])" in (
        problem.message
    )
    fixed = [{"name": "RESTATE_METADATA_SERVER__RAFT_ELECTION_TICK", "value": "30"}]
    assert validate(cluster(3, _raft(election=1), env=fixed)) == []


def test_nodes_without_a_metadata_server_run_no_raft() -> None:
    config = 'roles = ["worker", "admin"]\n[metadata-client]\ntype = "etcd"\n' + _raft(1, 2)
    assert validate(cluster(3, config)) == []
