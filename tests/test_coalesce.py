"""Which status writes wait, and for how long (the pure half of coalescing)."""

from __future__ import annotations

import pytest

from restate_op.api.lifecycle import Phase
from restate_op.api.models import RestateClusterStatus
from restate_op.coalesce import hold_for
from restate_op.machine import load_machine

MACHINE = load_machine()


def status(
    phase: Phase, message: str = "", provisioned: bool | None = None
) -> RestateClusterStatus:
    return RestateClusterStatus(phase=phase, message=message, provisioned=provisioned)


def hold(
    desired: RestateClusterStatus,
    *,
    live_phase: str | None = None,
    live_provisioned: bool = False,
    held_since: float | None = None,
    now: float = 100.0,
    window: float = 1.0,
) -> float | None:
    return hold_for(
        MACHINE,
        desired,
        live_phase=live_phase,
        live_provisioned=live_provisioned,
        held_since=held_since,
        now=now,
        window=window,
    )


def test_provisioning_progress_waits_for_the_window_then_is_written() -> None:
    assert hold(status("Provisioning", "Waiting for pods: 0/3 pods ready")) == 1.0
    # The window runs from the first unwritten status, not the latest: progress is reported
    # at least once per window however often it changes.
    second = status("Provisioning", "Waiting for pods: 1/3 pods ready")
    assert hold(second, held_since=100.0, now=100.4) == pytest.approx(0.6)
    assert hold(second, held_since=100.0, now=101.0) is None


def test_settled_phases_are_written_at_once() -> None:
    phases: tuple[Phase, ...] = ("Ready", "Degraded", "Pending")
    for phase in phases:
        assert hold(status(phase), held_since=100.0, now=100.1) is None, phase


def test_an_expansion_is_announced_at_once_and_its_progress_coalesced() -> None:
    assert hold(status("Expanding", "Growing volumes: 0/3 at 4Gi"), live_phase="Ready") is None
    progress = status("Expanding", "Growing volumes: 1/3 at 4Gi")
    assert hold(progress, live_phase="Expanding") == 1.0
    assert hold(progress, live_phase="Expanding", held_since=100.0, now=101.0) is None


def test_recording_provisioned_is_never_held() -> None:
    done = status("Provisioning", "Provisioning the Restate cluster", provisioned=True)
    assert hold(done, live_provisioned=False) is None
    # Once the live status says so, later progress may wait again.
    assert hold(done, live_provisioned=True) == 1.0


def test_zero_window_writes_everything_at_once() -> None:
    assert hold(status("Provisioning"), window=0) is None


def test_which_states_coalesce_comes_from_the_states_file() -> None:
    assert MACHINE.phases_where({"entry"}) == {"Provisioning"}
    assert MACHINE.phases_where({"progress", "entry"}) == {"Provisioning", "Expanding"}
