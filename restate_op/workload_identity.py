"""Identity bindings: a cloud IAM binding of the ``restate`` ServiceAccount, then its proof.

Pure. EKS Pod Identity (an ACK ``PodIdentityAssociation``) and GKE Workload Identity (a Config
Connector ``IAMPolicyMember``) go the same way: the binding is applied; once its controller
reports it made, a canary Job (``restate_op.children.canary``) must get the credentials; only
then may the Restate pods start, with annotations that roll them when the binding changes.
``restate_op.plan`` adds the manifests to the cluster's children and holds the StatefulSet
back; ``restate_op.verdicts`` says what the first unproven binding waits for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from restate_op.children import aws, gcp
from restate_op.children.canary import CanaryOutcome, canary_outcome
from restate_op.observe import Observation
from restate_op.validation import INVALID_CONFIG, SpecProblem

IdentityProvider = Literal["aws", "gcp"]


@dataclass(frozen=True)
class IdentityProof:
    """Where one cloud identity binding stands: synced by its controller, then proven."""

    provider: IdentityProvider
    #: The binding's controller (ACK, Config Connector) reports it made in the cloud's IAM.
    synced: bool
    #: The canary Job's outcome once synced; None before.
    canary: CanaryOutcome | None = None

    @property
    def proven(self) -> bool:
        return self.canary == "passed"


@dataclass(frozen=True)
class Binding:
    """One identity binding: the binding object, its canary, and where both stand."""

    proof: IdentityProof
    manifests: tuple[dict[str, Any], ...]
    #: Pod template annotations that roll the pods onto the binding once it is proven.
    pod_annotations: Mapping[str, str]


@dataclass(frozen=True)
class Identity:
    """Every identity binding of the cluster (the machinery is the same for each cloud)."""

    bindings: tuple[Binding, ...] = ()

    @property
    def manifests(self) -> tuple[dict[str, Any], ...]:
        return tuple(m for b in self.bindings for m in b.manifests)

    @property
    def proven(self) -> bool:
        return all(b.proof.proven for b in self.bindings)

    @property
    def pod_annotations(self) -> dict[str, str]:
        return {k: v for b in self.bindings if b.proof.proven for k, v in b.pod_annotations.items()}


def _binding(
    obs: Observation,
    provider: IdentityProvider,
    binding: dict[str, Any],
    synced: Callable[[dict[str, Any]], bool],
    canary_job: dict[str, Any],
    pod_annotations: Mapping[str, str],
) -> Binding:
    """The binding first; once its controller syncs it, the canary Job. A failed canary is
    left out of the desired children, so it is deleted (``_stale``) and then re-created."""
    live = obs.child(binding["kind"], binding["metadata"]["name"])
    job_name = canary_job["metadata"]["name"]

    def made(proof: IdentityProof, *manifests: dict[str, Any]) -> Binding:
        return Binding(proof, manifests, pod_annotations)

    if live is None or not synced(dict(live)):
        return made(IdentityProof(provider, synced=False), binding)
    job = obs.child("Job", job_name)
    canary = canary_outcome(dict(job) if job is not None else None)
    proof = IdentityProof(provider, synced=True, canary=canary)
    if canary == "failed":
        return made(proof, binding)
    return made(proof, binding, canary_job)


def identity_bindings(obs: Observation) -> Identity:
    cluster, settings = obs.cluster, obs.settings
    bindings: list[Binding] = []
    pia = aws.desired_pod_identity_association(cluster, settings)
    if pia is not None and obs.capabilities.pod_identity_association:
        bindings.append(
            _binding(
                obs,
                "aws",
                pia,
                aws.pod_identity_synced,
                aws.desired_pia_canary_job(cluster, settings),
                aws.identity_pod_annotations(cluster, settings, True, False),
            )
        )
    gsa = gcp.workload_identity(cluster, settings)
    if gsa is not None and obs.capabilities.iam_policy_member:
        bindings.append(
            _binding(
                obs,
                "gcp",
                gcp.desired_iam_policy_member(cluster, gsa),
                gcp.iam_policy_member_ready,
                gcp.desired_wi_canary_job(cluster, settings, gsa),
                gcp.gcp_pod_annotations(gsa),
            )
        )
    return Identity(tuple(bindings))


def workload_identity_problems(obs: Observation) -> tuple[SpecProblem, ...]:
    cluster, settings = obs.cluster, obs.settings
    malformed = gcp.service_account_problem(cluster, settings)
    if malformed is not None:
        return (SpecProblem(INVALID_CONFIG, gcp.ANNOTATION_FIELD, malformed),)
    if gcp.workload_identity(cluster, settings) is None or obs.capabilities.iam_policy_member:
        return ()
    return (
        SpecProblem(
            reason="MissingCRD",
            field=gcp.ANNOTATION_FIELD,
            message=f"{gcp.ANNOTATION_FIELD} asks for GKE Workload Identity, which needs "
            "Config Connector's IAMPolicyMember (iampolicymembers.iam.cnrm.cloud.google.com), "
            "not served by this cluster; install Config Connector, or remove the annotation",
        ),
    )
