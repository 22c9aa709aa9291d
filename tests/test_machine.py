"""The machine's transition table: legal moves, the way between states, and its checks."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from restate_op.api.lifecycle import PHASES, Phase
from restate_op.generate import state_diagram_markdown
from restate_op.machine import (
    STATES_FILE,
    IllegalTransition,
    InvalidMachine,
    load_machine,
    mermaid_diagram,
)

MACHINE = load_machine()

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
    ("Provisioning", "ScalingDown"),
    ("Expanding", "ScalingDown"),
    ("Ready", "ScalingDown"),
    ("Degraded", "ScalingDown"),
    ("ScalingDown", "Provisioning"),
    ("ScalingDown", "Expanding"),
    ("ScalingDown", "Ready"),
    ("ScalingDown", "Degraded"),
    ("ScalingDown", "Pending"),
}


@pytest.mark.parametrize(("source", "dest"), list(itertools.permutations(PHASES, 2)))
def test_every_pair_of_states(source: Phase, dest: Phase) -> None:
    transition = MACHINE.transition(source, dest)
    path = MACHINE.path(source, dest)
    if (source, dest) in ALLOWED:
        assert transition is not None and transition.dest == dest
        assert path == (transition,), "a direct transition is the shortest path"
    else:
        assert transition is None
        assert len(path) > 1 and path[0].dest != dest, "no shortcut through the table"
        assert path[-1].dest == dest


@pytest.mark.parametrize("phase", PHASES)
def test_staying_in_a_state_is_the_empty_path(phase: Phase) -> None:
    assert MACHINE.path(phase, phase) == ()


def test_pending_reaches_ready_and_expanding_only_through_provisioning() -> None:
    assert [t.dest for t in MACHINE.path("Pending", "Ready")] == ["Provisioning", "Ready"]
    assert [t.dest for t in MACHINE.path("Pending", "Expanding")] == ["Provisioning", "Expanding"]


def test_new_cluster_starts_pending() -> None:
    assert MACHINE.initial == "Pending"


def test_the_generated_phase_type_matches_the_file() -> None:
    assert MACHINE.phases == PHASES


def test_each_destination_has_exactly_one_trigger() -> None:
    by_dest: dict[str, set[str]] = {}
    for t in MACHINE.transitions:
        by_dest.setdefault(t.dest, set()).add(t.trigger)
    assert all(len(triggers) == 1 for triggers in by_dest.values())


def test_diagram_lists_every_transition() -> None:
    diagram = mermaid_diagram(MACHINE)
    for source, dest in ALLOWED:
        assert f"{source} --> {dest}:" in diagram
    assert "stateDiagram-v2" in state_diagram_markdown()


def _variant(tmp_path: Path, edit: dict[str, object]) -> Path:
    raw = yaml.safe_load(STATES_FILE.read_text())
    for state in raw["states"]:
        state.update(edit.get(state["name"], {}))
    if "transitions" in edit:
        raw["transitions"] = edit["transitions"]
    path = tmp_path / "machine.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_an_unreachable_state_is_an_illegal_transition(tmp_path: Path) -> None:
    only = [{"trigger": "provision", "source": ["Pending"], "dest": "Provisioning", "event": "P"}]
    machine = load_machine(_variant(tmp_path, {"transitions": only}))
    with pytest.raises(IllegalTransition):
        machine.path("Ready", "Pending")


def test_an_effect_no_planner_implements_is_refused() -> None:
    with pytest.raises(InvalidMachine, match=r"unknown to the code.*'apply_children'"):
        MACHINE.check_effects({"delete_stale_children", "expand_volumes", "provision_restate"})
    with pytest.raises(InvalidMachine, match=r"no state lists.*'repair'"):
        MACHINE.check_effects(
            {
                "apply_children",
                "delete_stale_children",
                "expand_volumes",
                "provision_restate",
                "repair",
            }
        )


def test_reasons_must_match_the_code_both_ways() -> None:
    listed = {(s.name, r) for s in MACHINE.states for r in s.reasons}
    MACHINE.check_reasons(listed)
    with pytest.raises(InvalidMachine, match=r"no state lists.*Typo"):
        MACHINE.check_reasons(listed | {("Ready", "Typo")})
    with pytest.raises(InvalidMachine, match=r"no code returns.*Hibernated"):
        MACHINE.check_reasons(listed - {("Ready", "Hibernated")})


def test_a_transition_to_itself_is_refused(tmp_path: Path) -> None:
    loop = [{"trigger": "again", "source": ["Ready"], "dest": "Ready", "event": "Again"}]
    with pytest.raises(InvalidMachine, match="loops"):
        load_machine(_variant(tmp_path, {"transitions": loop}))


def test_converged_reasons_must_be_listed(tmp_path: Path) -> None:
    with pytest.raises(InvalidMachine, match="converged names unlisted"):
        load_machine(_variant(tmp_path, {"Degraded": {"converged": ["Nope"]}}))


def test_converged_states_come_from_the_file() -> None:
    assert MACHINE.state("Ready").is_converged("anything")
    assert MACHINE.state("Degraded").is_converged("PodsNotReady")
    assert not MACHINE.state("Degraded").is_converged("ApiError")
    assert not MACHINE.state("Provisioning").is_converged("RollingOut")
