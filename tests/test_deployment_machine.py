"""The version machine of a RestateDeployment (states/restatedeployment.yaml) as a table."""

from __future__ import annotations

import itertools
from typing import get_args

import pytest

from restate_op.api.deployment import VersionPhase
from restate_op.generate import deployment_diagram_markdown
from restate_op.machine import DEPLOYMENT_STATES_FILE, load_machine, mermaid_diagram

MACHINE = load_machine(DEPLOYMENT_STATES_FILE)
PHASES = MACHINE.phases

ALLOWED: set[tuple[str, str]] = {
    # Pods lost, a rollback scaling a version up again, the target cluster no longer Ready.
    *((s, "Starting") for s in ("Registering", "Latest", "Draining", "Retired", "Rejected")),
    # Pods available; a Latest version Restate forgot; a rollback to a draining version;
    # a rejected registration due for its retry.
    *((s, "Registering") for s in ("Starting", "Latest", "Draining", "Rejected")),
    # Already the latest in Restate (after an operator restart, or promoted by hand).
    *((s, "Latest") for s in ("Starting", "Registering", "Draining", "Rejected")),
    # Superseded (or deleted) while still needed; Restate pinned an invocation to a retired one.
    *((s, "Draining") for s in ("Starting", "Registering", "Latest", "Retired", "Rejected")),
    # Nothing needs it any more (deletion skips the drain delay, never registered: nothing to
    # drain).
    *((s, "Retired") for s in ("Starting", "Registering", "Latest", "Draining", "Rejected")),
    # Only a registration can be refused.
    ("Registering", "Rejected"),
}


def test_phases_match_the_api_literal() -> None:
    assert get_args(VersionPhase) == PHASES


def test_a_new_version_starts() -> None:
    assert MACHINE.initial == "Starting"


@pytest.mark.parametrize(("source", "dest"), list(itertools.permutations(PHASES, 2)))
def test_every_pair_of_states(source: str, dest: str) -> None:
    transition = MACHINE.transition(source, dest)
    if (source, dest) in ALLOWED:
        assert transition is not None
        assert MACHINE.path(source, dest) == (transition,)
    else:
        assert transition is None
        path = MACHINE.path(source, dest)
        assert len(path) > 1 and path[-1].dest == dest


def test_a_retired_version_is_scaled_up_before_it_is_registered_again() -> None:
    """Rollback promotes: Retired -> Starting (pods) -> Registering (force) -> Latest."""
    assert [t.dest for t in MACHINE.path("Retired", "Latest")] == ["Starting", "Latest"]
    assert [t.dest for t in MACHINE.path("Retired", "Registering")] == [
        "Starting",
        "Registering",
    ]


def test_rejected_is_reached_only_by_a_refused_registration() -> None:
    sources = {s for t in MACHINE.transitions if t.dest == "Rejected" for s in t.source}
    assert sources == {"Registering"}


def test_every_state_is_reachable_from_the_initial_one() -> None:
    for phase in PHASES:
        if phase != MACHINE.initial:
            assert MACHINE.path(MACHINE.initial, phase)


def test_every_transition_names_an_event() -> None:
    assert all(t.event.startswith("Version") for t in MACHINE.transitions)
    assert len({t.event for t in MACHINE.transitions}) == len(MACHINE.transitions)


def test_what_each_state_does() -> None:
    effects = {s.name: s.effects for s in MACHINE.states}
    assert effects == {
        "Starting": ("apply_version", "autoscale_version"),
        "Registering": ("apply_version", "autoscale_version", "register_version"),
        "Latest": ("apply_version", "autoscale_version", "route_latest"),
        "Draining": ("apply_version", "autoscale_version", "route_latest"),
        "Retired": ("apply_version", "autoscale_version", "deregister_version", "prune_history"),
        "Rejected": ("apply_version", "autoscale_version"),
    }


def test_only_latest_is_ready_and_only_rollouts_progress() -> None:
    ready = {s.name for s in MACHINE.states if s.conditions["Ready"] == "True"}
    assert ready == {"Latest"}
    progressing = {s.name for s in MACHINE.states if s.conditions["Progressing"] == "True"}
    assert progressing == {"Starting", "Registering", "Draining"}


def test_diagram_is_generated_from_the_table() -> None:
    diagram = mermaid_diagram(MACHINE)
    for source, dest in ALLOWED:
        assert f"{source} --> {dest}:" in diagram
    assert deployment_diagram_markdown().count("stateDiagram-v2") == 1
