"""Security contexts that make the operator's pods pass the ``restricted`` Pod Security Standard.

The cluster Namespace enforces ``restricted``. A pod that fails it is not rejected when the
StatefulSet or Job is applied but when its controller creates the pod, which surfaces only as
``FailedCreate`` events: so every pod the operator builds must pass, including the parts the
user supplies (sidecars, extra volumes), which ``restate_op.validation.validate`` checks.
"""

from __future__ import annotations

import copy
from typing import Any

RUN_AS_USER = 1000
RUN_AS_GROUP = 3000
FS_GROUP = 2000

#: Volume types ``restricted`` admits.
RESTRICTED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
#: The one capability ``restricted`` lets a container add back.
ALLOWED_ADDED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})


def pod_security_context() -> dict[str, Any]:
    """Pod-level context: a fixed non-root identity and the runtime's default seccomp profile.

    ``fsGroup`` makes the data volume writable by that identity; ``OnRootMismatch`` skips the
    recursive chown on restart, which would otherwise take minutes on a large volume.
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_GROUP,
        "fsGroup": FS_GROUP,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Container-level context for containers the operator defines itself."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
    }


def harden_sidecar(container: dict[str, Any]) -> dict[str, Any]:
    """A copy of a user sidecar with the ``restricted`` fields it left unset filled in.

    Sidecars written for a permissive namespace usually omit these fields, which the
    namespace would then reject; fields the user did set are kept, and ``validate`` reports
    those that ``restricted`` forbids.
    """
    hardened = copy.deepcopy(container)
    context = dict(hardened.get("securityContext") or {})
    context.setdefault("allowPrivilegeEscalation", False)
    capabilities = dict(context.get("capabilities") or {})
    capabilities.setdefault("drop", ["ALL"])
    context["capabilities"] = capabilities
    hardened["securityContext"] = context
    return hardened


def restricted_violations(container: dict[str, Any]) -> list[str]:
    """Why a (hardened) container would fail ``restricted``, as short phrases; [] if it passes.

    Pod-level fields (non-root, seccomp) are set by the operator, so only what a container
    can override is checked here.
    """
    problems: list[str] = []
    context = container.get("securityContext") or {}
    if context.get("privileged"):
        problems.append("securityContext.privileged must not be true")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("securityContext.allowPrivilegeEscalation must be false")
    capabilities = context.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drop") or []):
        problems.append('securityContext.capabilities.drop must include "ALL"')
    added = set(capabilities.get("add") or []) - ALLOWED_ADDED_CAPABILITIES
    if added:
        problems.append(
            f"securityContext.capabilities.add may only contain NET_BIND_SERVICE, not "
            f"{', '.join(sorted(added))}"
        )
    if context.get("runAsNonRoot") is False:
        problems.append("securityContext.runAsNonRoot must not be false")
    if context.get("runAsUser") == 0:
        problems.append("securityContext.runAsUser must not be 0 (root)")
    seccomp = (context.get("seccompProfile") or {}).get("type")
    if seccomp is not None and seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append("securityContext.seccompProfile.type must be RuntimeDefault or Localhost")
    if any((port or {}).get("hostPort") for port in container.get("ports") or []):
        problems.append("ports[].hostPort must not be set")
    return problems
