"""The operator's own configuration: command-line flags with environment fallbacks.

One pydantic-settings model holds every flag of ``restate-op run``. Constructed directly
(``OperatorSettings(concurrency=2)``) it reads nothing but its arguments, so builders and tests
stay pure; :meth:`OperatorSettings.from_cli` and :meth:`OperatorSettings.from_env` read the
command line and the environment. A flag wins over its environment variable, which wins over
the default.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    CliSettingsSource,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

_DNS_DOMAIN = re.compile(r"[A-Za-z0-9.-]+")


class OperatorSettings(BaseSettings):
    """Everything the operator was started with that shapes what it builds.

    Builders take this instead of reading the environment, so they stay pure. Each field's
    environment variable is its name in capitals, except ``LEASE_DURATION`` and ``LEASE_RENEW``
    for ``lease_duration_seconds`` and ``lease_renew_seconds``; its flag is its name in kebab
    case, except ``--lease-duration``, ``--lease-renew``, ``--resync`` and ``--status-coalesce``.
    (The field's own name is accepted as well: ``--resync-seconds``,
    ``LEASE_DURATION_SECONDS``.)
    """

    model_config = SettingsConfigDict(
        frozen=True,
        populate_by_name=True,
        cli_kebab_case=True,
        cli_hide_none_type=True,
        cli_shortcuts={"resync-seconds": "resync", "status-coalesce-seconds": "status-coalesce"},
    )

    kubeconfig: str | None = Field(
        None, description="kubeconfig file (unset: in-cluster credentials)"
    )
    operator_namespace: str = Field(
        "restate-operator", description="namespace the operator runs in"
    )
    operator_label_name: str = Field(
        "app.kubernetes.io/name",
        description="label that selects the operator's own pods (the network policy peer "
        "allowed to reach the admin and node ports)",
    )
    operator_label_value: str = Field(
        "restate-operator", description="value of --operator-label-name on the operator's pods"
    )
    aws_pod_identity_association_cluster: str | None = Field(
        None,
        description="EKS cluster name; enables PodIdentityAssociations (unset: disabled)",
    )
    gcp_workload_identity: bool = Field(
        False,
        description="bind each cluster's ServiceAccount to the GCP service account its "
        "iam.gke.io/gcp-service-account annotation names, with a Config Connector "
        "IAMPolicyMember (true|false; the chart's gcpWorkloadIdentity)",
    )
    cluster_dns: str = Field("cluster.local", description="the cluster's DNS domain")
    node_address_template: str | None = Field(
        None,
        description="gRPC target of a Restate pod's node port, with {pod}, {namespace}, "
        "{cluster_dns} (default {pod}.restate-cluster.{namespace}.svc.{cluster_dns}:5122)",
    )
    canary_image: str = Field(
        "alpine:3.21",
        description="image of the Jobs that check Pod Identity and Workload Identity "
        "credentials (needs grep and wget)",
    )
    concurrency: int = Field(8, ge=1, description="clusters reconciled at once")
    leader_elect: bool = Field(True, description="take a Lease before reconciling (true|false)")
    lease_name: str = Field("restate-operator-leader", description="name of the leader Lease")
    #: 20 s / 8 s: a standby takes over within 20 s, and an idle leader sends 7.5 renewals a
    #: minute (client-go's 15 s / 2 s would be 30), keeping idle load under 10 requests/min.
    lease_duration_seconds: float = Field(
        20.0,
        validation_alias="lease_duration",
        description="seconds a Lease is held without renewal before a standby takes over",
    )
    lease_renew_seconds: float = Field(
        8.0, validation_alias="lease_renew", description="seconds between Lease renewals"
    )
    resync_seconds: float = Field(
        300.0, description="seconds between full re-reconciles of every cluster"
    )
    discovery_seconds: float = Field(
        60.0,
        gt=0,
        description="seconds between looks for optional APIs installed later (Config "
        "Connector, the Secrets Store CSI driver, ...); clusters waiting for one go on then",
    )
    #: See restate_op/coalesce.py.
    status_coalesce_seconds: float = Field(
        1.0,
        ge=0,
        description="seconds a status that only reports progress (Provisioning, an expansion "
        "under way) may wait to be written, so a quick rollout costs one status write "
        "(0: write every change at once)",
    )
    #: restate_health.HEALTH_REFRESH_READY. ``python -m bench --only health`` measures the
    #: reads' cost against a same-run baseline with this at 0.
    restate_health_seconds: float = Field(
        30.0,
        ge=0,
        description="seconds between reads of Restate's own health (node port, gRPC) while a "
        "cluster is Ready; while it changes every 5 s (0: no reads while Ready but the first "
        "after the operator starts, so a node that fails shows only in its probes)",
    )
    restate_health_channels: int = Field(
        1024,
        ge=0,
        description="gRPC channels to Restate pods the health reads keep open between reads, "
        "one per pod address (about 30 KiB each); beyond them a read opens its own and closes "
        "it after (0: every read does)",
    )
    restate_deployments: bool = Field(
        False,
        description="also reconcile RestateDeployments and RestateCloudEnvironments "
        "(restate.dev/v1beta1): register versions with Restate's admin API and drain them, "
        "run Restate Cloud tunnel clients (true|false; the chart's restateDeployments.enabled)",
    )
    tunnel_client_default_image: str = Field(
        "ghcr.io/restatedev/restate-cloud-tunnel-client:0.6.0",
        description="image of a RestateCloudEnvironment's tunnel client when spec.tunnel.image "
        "is unset (upstream's default)",
    )
    cloud_admin_url_template: str = Field(
        "https://{environment}.env.{region}.restate.cloud:9070",
        description="admin API of a RestateCloudEnvironment, with {environment} (the id "
        "without env_) and {region}; override only to reach a stand-in or a private endpoint",
    )
    cloud_tunnel_url_template: str = Field(
        "https://tunnel.{region}.restate.cloud:9080",
        description="base of the tunnel URLs registered for register.cloud, with {region}",
    )
    http_port: int = Field(8080, description="port of /healthz, /readyz and /metrics")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    log_format: Literal["json", "text"] = Field("json", description="json or text")

    @field_validator(
        "kubeconfig", "aws_pod_identity_association_cluster", "node_address_template", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("cloud_admin_url_template", "cloud_tunnel_url_template")
    @classmethod
    def _url_template(cls, value: str) -> str:
        try:
            value.format(environment="e", region="r")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"{value!r} may only use the placeholders {{environment}} and {{region}}"
            ) from exc
        return value

    @field_validator("cluster_dns")
    @classmethod
    def _dns_domain(cls, value: str) -> str:
        if not _DNS_DOMAIN.fullmatch(value):
            raise ValueError(f"--cluster-dns {value!r} must be a DNS domain")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the constructor's arguments: the environment is read by :meth:`from_env`."""
        return (init_settings,)

    @classmethod
    def cli(
        cls, parser: argparse.ArgumentParser | None = None
    ) -> CliSettingsSource[OperatorSettings]:
        """The ``run`` flags, added to ``parser`` (or to a new parser named ``restate-op run``)."""
        return CliSettingsSource(
            cls, root_parser=parser, cli_prog_name="restate-op run", cli_show_env_vars=True
        )

    @classmethod
    def from_cli(
        cls,
        argv: Sequence[str] | argparse.Namespace,
        source: CliSettingsSource[OperatorSettings] | None = None,
    ) -> OperatorSettings:
        """Flags (a list, or a namespace that ``source``'s parser parsed), then the environment.

        Raises pydantic's ``ValidationError`` for a value out of range.
        """
        source = source or cls.cli()
        if isinstance(argv, argparse.Namespace):
            loaded = source(parsed_args=argv)
        else:
            loaded = source(args=list(argv))
        return cls(_cli_settings_source=loaded, **cls._environment())

    @classmethod
    def from_env(cls) -> OperatorSettings:
        """The environment variables over the defaults."""
        return cls(**cls._environment())

    @classmethod
    def environment_variables(cls) -> dict[str, str]:
        """Field name → the environment variable that sets it (the documented one)."""
        names = {}
        for name, field in cls.model_fields.items():
            alias = field.validation_alias
            names[name] = (alias if isinstance(alias, str) else name).upper()
        return names

    @classmethod
    def _environment(cls) -> dict[str, Any]:
        return EnvSettingsSource(cls)()


@dataclass(frozen=True)
class Capabilities:
    """Optional APIs discovered on the cluster (ACK Pod Identity, Config Connector, VPC
    security groups, the CSI secrets store, RestateCloudEnvironment)."""

    pod_identity_association: bool = False
    #: Config Connector's IAMPolicyMember (GKE Workload Identity).
    iam_policy_member: bool = False
    security_group_policy: bool = False
    secret_provider_class: bool = False
    #: Knative Serving (RestateDeployment ``deploymentMode: knative``).
    knative_serving: bool = False
    #: The RestateCloudEnvironment CRD: optional, so RestateDeployments that never use
    #: Restate Cloud need only their own CRD.
    restate_cloud_environment: bool = False
