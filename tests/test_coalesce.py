"""Which status writes wait, for how long, and what the next reconcile sees meanwhile."""

from __future__ import annotations

import pytest

from restate_op.api.models import RestateClusterStatus
from restate_op.coalesce import StatusCoalescer
from restate_op.machine import Phase


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def status(
    phase: Phase, message: str = "", provisioned: bool | None = None
) -> RestateClusterStatus:
    return RestateClusterStatus(phase=phase, message=message, provisioned=provisioned)


def coalescer(window: float = 1.0) -> tuple[StatusCoalescer, Clock]:
    clock = Clock()
    return StatusCoalescer(window, clock), clock


def test_provisioning_progress_waits_for_the_window_then_is_written() -> None:
    c, clock = coalescer()
    first = status("Provisioning", "Waiting for pods: 0/3 pods ready")
    assert c.hold("a", "u1", first, live_phase=None, live_provisioned=False) == 1.0
    assert c.held("a", "u1") == first
    clock.now += 0.4
    second = status("Provisioning", "Waiting for pods: 1/3 pods ready")
    # The window runs from the first unwritten status, not the latest: progress is reported
    # at least once per window however often it changes.
    assert c.hold("a", "u1", second, live_phase=None, live_provisioned=False) == pytest.approx(0.6)
    assert c.held("a", "u1") == second
    clock.now += 0.6
    assert c.hold("a", "u1", second, live_phase=None, live_provisioned=False) is None


def test_settled_phases_are_written_at_once() -> None:
    c, _ = coalescer()
    c.hold("a", "u1", status("Provisioning"), live_phase=None, live_provisioned=False)
    phases: tuple[Phase, ...] = ("Ready", "Degraded", "Pending")
    for phase in phases:
        assert c.hold("a", "u1", status(phase), live_phase=None, live_provisioned=False) is None, (
            phase
        )


def test_an_expansion_is_announced_at_once_and_its_progress_coalesced() -> None:
    c, clock = coalescer()
    started = status("Expanding", "Growing volumes: 0/3 at 4Gi")
    assert c.hold("a", "u1", started, live_phase="Ready", live_provisioned=False) is None
    progress = status("Expanding", "Growing volumes: 1/3 at 4Gi")
    assert c.hold("a", "u1", progress, live_phase="Expanding", live_provisioned=False) == 1.0
    clock.now += 1.0
    assert c.hold("a", "u1", progress, live_phase="Expanding", live_provisioned=False) is None


def test_recording_provisioned_is_never_held() -> None:
    c, _ = coalescer()
    done = status("Provisioning", "Provisioning the Restate cluster", provisioned=True)
    assert c.hold("a", "u1", done, live_phase=None, live_provisioned=False) is None
    # Once the live status says so, later progress may wait again.
    assert c.hold("a", "u1", done, live_phase=None, live_provisioned=True) == 1.0


def test_held_status_belongs_to_one_incarnation_of_the_name() -> None:
    c, clock = coalescer()
    c.hold("a", "u1", status("Provisioning"), live_phase=None, live_provisioned=False)
    assert c.held("a", "u2") is None
    clock.now += 0.5
    # A recreated cluster of the same name starts its own window.
    assert c.hold("a", "u2", status("Provisioning"), live_phase=None, live_provisioned=False) == 1.0


def test_forget_drops_the_held_status() -> None:
    c, _ = coalescer()
    c.hold("a", "u1", status("Provisioning"), live_phase=None, live_provisioned=False)
    c.forget("a")
    assert c.held("a", "u1") is None
    c.forget("never-held")


def test_zero_window_writes_everything_at_once() -> None:
    c, _ = coalescer(0)
    assert (
        c.hold("a", "u1", status("Provisioning"), live_phase=None, live_provisioned=False) is None
    )
    assert c.held("a", "u1") is None
