"""The machine's transition table: state in, trigger, state out; illegal moves refused."""

from __future__ import annotations

import itertools

import pytest

from restate_op.generate import state_diagram_markdown
from restate_op.machine import (
    PHASES,
    IllegalTransition,
    Lifecycle,
    Phase,
    load_definition,
    mermaid_diagram,
)

ALLOWED: set[tuple[str, str]] = {
    ("Pending", "Provisioning"),
    ("Expanding", "Provisioning"),
    ("Ready", "Provisioning"),
    ("Degraded", "Provisioning"),
    ("Provisioning", "Expanding"),
    ("Ready", "Expanding"),
    ("Degraded", "Expanding"),
    ("Provisioning", "Ready"),
    ("Expanding", "Ready"),
    ("Degraded", "Ready"),
    ("Pending", "Degraded"),
    ("Provisioning", "Degraded"),
    ("Expanding", "Degraded"),
    ("Ready", "Degraded"),
    ("Provisioning", "Pending"),
    ("Expanding", "Pending"),
    ("Ready", "Pending"),
    ("Degraded", "Pending"),
}


@pytest.mark.parametrize(("source", "dest"), list(itertools.permutations(PHASES, 2)))
async def test_every_pair_of_states(source: Phase, dest: Phase) -> None:
    ran: list[str] = []

    async def actions(state: Phase) -> None:
        ran.append(state)

    machine = Lifecycle(source, actions)
    if (source, dest) in ALLOWED:
        step = await machine.advance(dest)
        assert machine.state == dest
        assert step.transition is not None and step.transition.dest == dest
        assert ran == [dest], "entering a state runs its actions once"
    else:
        with pytest.raises(IllegalTransition):
            await machine.advance(dest)
        assert machine.state == source
        assert ran == []


@pytest.mark.parametrize("phase", PHASES)
async def test_staying_in_a_state_resyncs_its_actions(phase: Phase) -> None:
    ran: list[str] = []

    async def actions(state: Phase) -> None:
        ran.append(state)

    machine = Lifecycle(phase, actions)
    step = await machine.advance(phase)
    assert step.transition is None and ran == [phase]


async def test_new_cluster_starts_pending() -> None:
    async def actions(state: Phase) -> None:
        return None

    assert Lifecycle(None, actions).state == "Pending"


def test_each_destination_has_exactly_one_trigger() -> None:
    definition = load_definition()
    by_dest: dict[str, set[str]] = {}
    for t in definition.transitions:
        by_dest.setdefault(t.dest, set()).add(t.trigger)
    assert all(len(triggers) == 1 for triggers in by_dest.values())


def test_diagram_lists_every_transition() -> None:
    diagram = mermaid_diagram(load_definition())
    for source, dest in ALLOWED:
        assert f"{source} --> {dest}:" in diagram
    assert "stateDiagram-v2" in state_diagram_markdown()
