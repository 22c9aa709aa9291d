"""A lifecycle as a pure, validated table: states, transitions, and the way between them.

Each controller's machine is a YAML file in ``states/`` (one per kind). This module loads it,
checks it against the code that uses it, and answers one question per reconcile: which
transitions lead from the recorded phase to the phase the observation implies. It runs no
callback and does no I/O, so nothing here can swallow a task cancellation or hide a write.

Why a plain table and not the ``transitions`` library: every use the operator has for a
machine is a lookup (is ``A -> B`` a transition, what is the shortest way from ``A`` to
``B``, what does state ``S`` do). The library's value is in its callbacks, and its async
callbacks are what swallowed cancellations (``AsyncMachine`` in 0.9.3, bug #704). The
Mermaid diagram was already rendered here, with the state notes the library's lacks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

STATES_DIR = Path(__file__).resolve().parent.parent / "states"
STATES_FILE = STATES_DIR / "restatecluster.yaml"
#: The machine of one version of a RestateDeployment.
DEPLOYMENT_STATES_FILE = STATES_DIR / "restatedeployment.yaml"
CLOUD_STATES_FILE = STATES_DIR / "restatecloudenvironment.yaml"

#: When a status of a state may wait to be written (see ``restate_op.coalesce``).
Coalesce = Literal["never", "progress", "entry"]


class IllegalTransition(RuntimeError):
    """The observation implies a phase the machine cannot reach from the recorded one."""


class InvalidMachine(ValueError):
    """A ``states/`` file that contradicts itself or the code that uses it."""


@dataclass(frozen=True)
class State:
    name: str
    description: str
    #: Condition type -> "True" | "False" | "Serving" (True while all replicas are ready).
    conditions: Mapping[str, str]
    #: Names of the effect planners a reconcile in this state runs, in order.
    effects: tuple[str, ...]
    #: Every reason a verdict of this state may carry.
    reasons: tuple[str, ...]
    coalesce: Coalesce = "never"
    #: The reasons of this state whose status says every desired child existed; ``"*"``: all.
    converged_reasons: tuple[str, ...] = ()

    def is_converged(self, reason: str | None) -> bool:
        return "*" in self.converged_reasons or reason in self.converged_reasons


@dataclass(frozen=True)
class Transition:
    trigger: str
    source: tuple[str, ...]
    dest: str
    #: Reason of the Kubernetes Event emitted when this transition is taken.
    event: str


@dataclass(frozen=True)
class Machine:
    initial: str
    states: tuple[State, ...]
    transitions: tuple[Transition, ...]

    @property
    def phases(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    def state(self, name: str) -> State:
        for s in self.states:
            if s.name == name:
                return s
        raise KeyError(f"{name!r} is not a state of the machine")

    def transition(self, source: str, dest: str) -> Transition | None:
        """The transition leading from ``source`` to ``dest``, if the machine has one."""
        for t in self.transitions:
            if t.dest == dest and source in t.source:
                return t
        return None

    def path(self, source: str, dest: str) -> tuple[Transition, ...]:
        """The shortest sequence of transitions from ``source`` to ``dest`` (empty: stay).

        Raises ``IllegalTransition`` when ``dest`` cannot be reached at all.
        """
        if source == dest:
            return ()
        seen = {source}
        queue: deque[tuple[str, tuple[Transition, ...]]] = deque([(source, ())])
        while queue:
            at, route = queue.popleft()
            for t in self.transitions:
                if at in t.source and t.dest not in seen:
                    if t.dest == dest:
                        return (*route, t)
                    seen.add(t.dest)
                    queue.append((t.dest, (*route, t)))
        raise IllegalTransition(f"{dest} cannot be reached from {source}")

    def phases_where(self, coalesce: Collection[Coalesce]) -> frozenset[str]:
        return frozenset(s.name for s in self.states if s.coalesce in coalesce)

    def check_effects(self, known: Collection[str]) -> None:
        """Every effect a state lists exists in code, and every one in code is used."""
        listed = {e for s in self.states for e in s.effects}
        unknown = listed - set(known)
        unused = set(known) - listed
        if unknown or unused:
            raise InvalidMachine(
                f"effects unknown to the code: {sorted(unknown)}; "
                f"effects in code no state lists: {sorted(unused)}"
            )

    def check_reasons(self, declared: Collection[tuple[str, str]]) -> None:
        """``declared`` (phase, reason) pairs of the code match the states' reasons exactly."""
        listed = {(s.name, r) for s in self.states for r in s.reasons}
        unknown = set(declared) - listed
        unused = listed - set(declared)
        if unknown or unused:
            raise InvalidMachine(
                f"reasons the code returns that no state lists: {sorted(unknown)}; "
                f"reasons listed that no code returns: {sorted(unused)}"
            )


def _state(raw: Mapping[str, Any]) -> State:
    converged = raw.get("converged", False)
    if converged is True:
        converged_reasons: tuple[str, ...] = ("*",)
    elif converged is False:
        converged_reasons = ()
    else:
        converged_reasons = tuple(converged)
    coalesce = raw.get("coalesce", "never")
    if coalesce not in ("never", "progress", "entry"):
        raise InvalidMachine(f"state {raw['name']}: coalesce {coalesce!r} is not one of the three")
    reasons = tuple(raw.get("reasons", ()))
    stray = set(converged_reasons) - {"*", *reasons}
    if stray:
        raise InvalidMachine(f"state {raw['name']}: converged names unlisted reasons {stray}")
    return State(
        name=raw["name"],
        description=" ".join(raw["description"].split()),
        conditions=dict(raw["conditions"]),
        effects=tuple(raw.get("effects", ())),
        reasons=reasons,
        coalesce=coalesce,
        converged_reasons=converged_reasons,
    )


@cache
def load_machine(path: Path = STATES_FILE) -> Machine:
    """Parse and validate a ``states/`` file (cached: it never changes at run time)."""
    raw: dict[str, Any] = yaml.safe_load(path.read_text())
    states = tuple(_state(s) for s in raw["states"])
    names = [s.name for s in states]
    if len(set(names)) != len(names):
        raise InvalidMachine(f"{path.name}: duplicate state names {names}")
    if raw["initial"] not in names:
        raise InvalidMachine(f"{path.name}: initial state {raw['initial']!r} is not a state")
    transitions = tuple(
        Transition(
            trigger=t["trigger"], source=tuple(t["source"]), dest=t["dest"], event=t["event"]
        )
        for t in raw["transitions"]
    )
    for t in transitions:
        unknown = ({t.dest} | set(t.source)) - set(names)
        if unknown:
            raise InvalidMachine(f"transition {t.trigger} names unknown states {sorted(unknown)}")
        if t.dest in t.source:
            raise InvalidMachine(f"transition {t.trigger} loops on {t.dest}: staying is implicit")
    for dest in names:
        if len({t.trigger for t in transitions if t.dest == dest}) > 1:
            raise InvalidMachine(f"{dest} is the destination of more than one trigger")
    return Machine(initial=raw["initial"], states=states, transitions=transitions)


def mermaid_diagram(machine: Machine) -> str:
    """A Mermaid state diagram of the machine, for the docs (kept fresh by a test)."""
    lines = ["stateDiagram-v2", "    direction LR", f"    [*] --> {machine.initial}"]
    for t in machine.transitions:
        for source in t.source:
            lines.append(f"    {source} --> {t.dest}: {t.trigger}")
    for s in machine.states:
        lines.append(f"    note right of {s.name}: {s.description}")
    return "\n".join(lines) + "\n"
