"""A RestateDeployment the model cannot read: a status that names the field and the fix,
a Warning Event, nothing else touched, and no write loop."""

from __future__ import annotations

from typing import Any

from restate_op.deployment_controller import RestateDeploymentController
from restate_op.deployment_unreadable import UnreadableDeployment
from restate_op.effects import Emit, Outcome, WriteStatus
from restate_op.kube import resources
from restate_op.memory import Memory
from restate_op.settings import OperatorSettings
from tests.test_deployment_decide import NOW, READY_CLUSTER, of, rsd_raw
from tests.test_runtime import DictCaches

SETTINGS = OperatorSettings(restate_deployments=True)


def two_targets() -> dict[str, Any]:
    """Both ``url`` and ``cluster``: the CRD's one-of rule refuses it today, an older CRD
    (or one applied without it) did not."""
    raw = rsd_raw()
    raw["spec"]["restate"]["register"]["url"] = "http://restate.example:9070"
    return raw


def controller(raw: dict[str, Any]) -> RestateDeploymentController:
    caches = DictCaches()
    caches.add(resources.RESTATE_DEPLOYMENT, raw)
    caches.add(resources.RESTATE_CLUSTER, READY_CLUSTER)
    return RestateDeploymentController(caches, Memory(), SETTINGS)


def test_an_unreadable_spec_is_observed_not_skipped() -> None:
    obs = controller(two_targets()).observe("default/my-service")
    assert isinstance(obs, UnreadableDeployment)


def test_the_status_names_the_field_and_the_fix_and_nothing_is_touched() -> None:
    raw = two_targets()
    raw["status"] = {
        "conditions": [{"type": "Available", "status": "True", "reason": "VersionServing"}],
        "latestVersion": "my-service-old",
    }
    ctl = controller(raw)
    obs = ctl.observe("default/my-service")
    assert obs is not None
    decision = ctl.decide(obs, NOW)
    assert decision.effects == () and decision.reason == "InvalidSpec"
    conclusion = ctl.conclude(obs, decision, Outcome(), NOW)
    [write] = of(conclusion.effects, WriteStatus)
    conditions = {c["type"]: c for c in write.status["conditions"]}
    ready = conditions["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "InvalidSpec"
    assert "spec.restate.register" in ready["message"] and "fix" in ready["message"]
    assert ready["observedGeneration"] == 1
    assert conditions["Progressing"]["status"] == "False"
    assert conditions["Available"]["status"] == "True", "versions running keep serving"
    assert write.status["latestVersion"] == "my-service-old"
    [event] = of(conclusion.effects, Emit)
    assert event.type == "Warning" and event.reason == "InvalidSpec"

    # Written once: the next reconcile of the same object changes nothing.
    raw["status"] = dict(write.status)
    again = ctl.observe("default/my-service")
    assert again is not None
    later = ctl.conclude(again, ctl.decide(again, NOW + 60), Outcome(), NOW + 60)
    assert later.effects == ()


def test_a_deleting_unreadable_spec_says_the_deletion_waits_for_the_fix() -> None:
    raw = two_targets()
    raw["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"
    ctl = controller(raw)
    obs = ctl.observe("default/my-service")
    assert obs is not None
    decision = ctl.decide(obs, NOW)
    assert decision.effects == () and "deletion waits" in decision.message
