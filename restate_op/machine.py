"""The RestateCluster state machine: loaded from ``states/``, driven by ``transitions``.

The machine holds no memory between reconciles. Each reconcile builds a ``Lifecycle`` in the
phase recorded in ``status.phase``, and ``advance`` fires the single trigger that leads to the
phase the observation implies. Triggers not allowed from the current state are refused, so an
impossible jump (say Pending -> Expanding) is a bug surfaced loudly, not a silent status write.
Entering a state runs that state's actions; staying in a state re-runs them (``resync``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

import yaml
from transitions import MachineError
from transitions.extensions.asyncio import AsyncMachine

Phase = Literal["Pending", "Provisioning", "Expanding", "Ready", "Degraded"]
PHASES: tuple[Phase, ...] = ("Pending", "Provisioning", "Expanding", "Ready", "Degraded")
STATES_FILE = Path(__file__).resolve().parent.parent / "states" / "restatecluster.yaml"


@dataclass(frozen=True)
class StateDefinition:
    name: Phase
    description: str
    #: Condition type -> "True" | "False" | "Serving" (True while all replicas are ready).
    conditions: dict[str, str]


@dataclass(frozen=True)
class TransitionDefinition:
    trigger: str
    source: tuple[Phase, ...]
    dest: Phase
    #: Reason of the Kubernetes Event emitted when this transition fires.
    event: str


@dataclass(frozen=True)
class MachineDefinition:
    initial: Phase
    states: tuple[StateDefinition, ...]
    transitions: tuple[TransitionDefinition, ...]

    def state(self, name: Phase) -> StateDefinition:
        return next(s for s in self.states if s.name == name)

    def transition_to(self, source: Phase, dest: Phase) -> TransitionDefinition | None:
        """The transition leading from ``source`` to ``dest``, if the machine allows one."""
        for t in self.transitions:
            if t.dest == dest and source in t.source:
                return t
        return None


class IllegalTransition(RuntimeError):
    """The observation implies a phase the machine may not reach from the current one."""


@cache
def load_definition(path: Path | None = None) -> MachineDefinition:
    """Parse ``states/restatecluster.yaml`` (cached: it never changes at run time)."""
    raw: dict[str, Any] = yaml.safe_load((path or STATES_FILE).read_text())
    states = tuple(
        StateDefinition(
            name=s["name"],
            description=" ".join(s["description"].split()),
            conditions=dict(s["conditions"]),
        )
        for s in raw["states"]
    )
    names = {s.name for s in states}
    transitions = tuple(
        TransitionDefinition(
            trigger=t["trigger"], source=tuple(t["source"]), dest=t["dest"], event=t["event"]
        )
        for t in raw["transitions"]
    )
    for t in transitions:
        unknown = ({t.dest} | set(t.source)) - names
        if unknown:
            raise ValueError(f"transition {t.trigger} names unknown states {sorted(unknown)}")
    if set(names) != set(PHASES) or raw["initial"] not in names:
        raise ValueError(f"states must be exactly {PHASES}, initial one of them")
    return MachineDefinition(initial=raw["initial"], states=states, transitions=transitions)


def mermaid_diagram(definition: MachineDefinition) -> str:
    """A Mermaid state diagram of the machine, for the docs (kept fresh by a test)."""
    lines = ["stateDiagram-v2", "    direction LR", f"    [*] --> {definition.initial}"]
    for t in definition.transitions:
        for source in t.source:
            lines.append(f"    {source} --> {t.dest}: {t.trigger}")
    for s in definition.states:
        lines.append(f"    note right of {s.name}: {s.description}")
    return "\n".join(lines) + "\n"


StateAction = Callable[[Phase], Awaitable[None]]


@dataclass(frozen=True)
class Step:
    """What ``advance`` did: the transition fired, or None when the phase stayed."""

    source: Phase
    dest: Phase
    transition: TransitionDefinition | None


class Lifecycle:
    """One cluster's machine for one reconcile: restored from ``status.phase``.

    ``run_actions`` is called with the state on entering it and on every resync; it is where
    the kr8s actions of that state happen (see ``restate_op.actions``).
    """

    state: Phase

    def __init__(
        self,
        phase: Phase | None,
        run_actions: StateAction,
        definition: MachineDefinition | None = None,
    ) -> None:
        self.definition = definition or load_definition()
        self._run_actions = run_actions
        self._machine = AsyncMachine(
            model=self,
            states=[s.name for s in self.definition.states],
            transitions=[
                {
                    "trigger": t.trigger,
                    "source": list(t.source),
                    "dest": t.dest,
                    "after": "_entered",
                }
                for t in self.definition.transitions
            ]
            + [{"trigger": "resync", "source": "*", "dest": None, "after": "_resynced"}],
            initial=phase or self.definition.initial,
            auto_transitions=False,
            ignore_invalid_triggers=False,
            queued=False,
        )

    async def _entered(self) -> None:
        await self._run_actions(self.state)

    async def _resynced(self) -> None:
        await self._run_actions(self.state)

    async def advance(self, dest: Phase) -> Step:
        """Move to ``dest`` (running its actions) or re-run the current state's actions."""
        source = self.state
        if dest == source:
            await cast(Any, self).resync()
            return Step(source, dest, None)
        transition = self.definition.transition_to(source, dest)
        if transition is None:
            raise IllegalTransition(f"{source} -> {dest} is not a transition of the machine")
        try:
            await getattr(self, transition.trigger)()
        except MachineError as exc:  # pragma: no cover - transition_to already checked
            raise IllegalTransition(str(exc)) from exc
        return Step(source, dest, transition)
