"""Every fault_point() call in the operator names a documented point, and every documented
point is still called (so e2e/test_faults.py, which crashes at each, covers the real ones)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from restate_op import faults
from restate_op.faults import FAULT_POINTS, selects, template_of

PACKAGE = Path(faults.__file__).resolve().parent


def _template(node: ast.expr) -> str:
    """The call's argument as a template: f-string holes become ``{}``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            str(part.value) if isinstance(part, ast.Constant) else "{}" for part in node.values
        )
    raise AssertionError(f"fault_point() needs a string literal or f-string, got {ast.dump(node)}")


def _calls() -> list[tuple[str, str]]:
    """(file:line, template) of every fault_point(...) call in restate_op/."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "fault_point"
            ):
                assert len(node.args) == 1, f"{path}:{node.lineno}"
                where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                found.append((where, _template(node.args[0])))
    return found


def _normalised(template: str) -> str:
    """Placeholder names do not matter, only where the variable parts are."""
    return re.sub(r"\{[a-z]*\}", "{}", template)


CALLS = _calls()


def test_the_operator_has_fault_points() -> None:
    assert len(CALLS) >= len(FAULT_POINTS)


@pytest.mark.parametrize(("where", "template"), CALLS, ids=[w for w, _ in CALLS])
def test_every_call_names_a_listed_point(where: str, template: str) -> None:
    listed = {_normalised(t) for t in FAULT_POINTS}
    assert _normalised(template) in listed, (
        f"{where}: fault_point({template!r}) is not listed in restate_op.faults.FAULT_POINTS"
    )


def test_every_listed_point_is_called() -> None:
    called = {_normalised(t) for _, t in CALLS}
    unused = [t for t in FAULT_POINTS if _normalised(t) not in called]
    assert not unused, f"FAULT_POINTS lists points no code calls: {unused}"


def test_listed_points_are_documented_and_distinct() -> None:
    assert all(doc.strip() for doc in FAULT_POINTS.values())
    assert len({_normalised(t) for t in FAULT_POINTS}) == len(FAULT_POINTS)


@pytest.mark.parametrize(
    ("name", "template"),
    [
        ("before-apply-Namespace/demo", "before-apply-{kind}/{name}"),
        ("before-apply-StatefulSet/restate", "before-apply-{kind}/{name}"),
        ("after-apply-children", "after-apply-children"),
        ("before-delete-ConfigMap/restate-config-1a2b", "before-delete-{kind}/{name}"),
        ("before-patch-pvc-storage-restate-1", "before-patch-pvc-{pvc}"),
        ("after-patch-pvcs", "after-patch-pvcs"),
        ("after-orphan-delete", "after-orphan-delete"),
        ("before-provision", "before-provision"),
        ("before-status-write-Ready", "before-status-write-{phase}"),
        ("after-status-write-Expanding", "after-status-write-{phase}"),
        ("before-remove-metadata-member-N3", "before-remove-metadata-member-N{node}"),
        ("before-restart-pod-restate-2", "before-restart-pod-{pod}"),
        ("before-take-snapshots-nightly", "before-take-snapshots-{token}"),
        ("after-take-snapshots-nightly", "after-take-snapshots-{token}"),
        ("before-apply-children", None),
        ("after-status-write", None),
    ],
)
def test_template_of(name: str, template: str | None) -> None:
    assert template_of(name) == template


@pytest.mark.parametrize(
    ("switch", "name", "selected"),
    [
        ("before-apply-StatefulSet/restate", "before-apply-StatefulSet/restate", True),
        ("before-apply", "before-apply-Namespace/demo", True),
        ("before-apply-NetworkPolicy", "before-apply-NetworkPolicy/deny-all", True),
        ("before-apply-Service", "before-apply-ServiceAccount/restate", False),
        ("before-status-write", "before-status-write-Ready", True),
        ("before-status-write-Ready", "before-status-write-Provisioning", False),
        ("before-patch-pvc", "before-patch-pvc-storage-restate-0", True),
        ("before-patch-pvc-storage-restate-1", "before-patch-pvc-storage-restate-10", False),
        ("after-patch-pvcs", "after-patch-pvcs", True),
        ("after-patch-pvc", "after-patch-pvcs", False),
        ("before-restart-pod", "before-restart-pod-restate-2", True),
        ("before-remove-metadata-member-N1", "before-remove-metadata-member-N10", False),
    ],
)
def test_switch_selects_by_exact_name_or_boundary_prefix(
    switch: str, name: str, selected: bool
) -> None:
    assert selects(switch, name) is selected
