"""The operator's flags as a Markdown table, from :class:`OperatorSettings` (for docs/reference.md).

Generated, so a flag added to the settings is documented the moment it exists.
"""

from __future__ import annotations

from restate_op.settings import OperatorSettings

#: The chart value behind a variable, where the chart sets it from a value of its own.
CHART_VALUES = {
    "AWS_POD_IDENTITY_ASSOCIATION_CLUSTER": "awsPodIdentityAssociationCluster",
    "GCP_WORKLOAD_IDENTITY": "gcpWorkloadIdentity",
    "CLUSTER_DNS": "clusterDns",
    "CANARY_IMAGE": "canaryImage",
    "CONCURRENCY": "concurrency",
    "LEADER_ELECT": "leaderElection.enabled",
    "LEASE_DURATION": "leaderElection.leaseDuration",
    "LEASE_RENEW": "leaderElection.renewPeriod",
    "RESTATE_DEPLOYMENTS": "restateDeployments.enabled",
    "LOG_LEVEL": "logging.level",
    "LOG_FORMAT": "logging.format",
}


def _flag(name: str) -> str:
    field = OperatorSettings.model_fields[name]
    alias = field.validation_alias
    flag = f"--{(alias if isinstance(alias, str) else name).replace('_', '-')}"
    shortcuts = OperatorSettings.model_config.get("cli_shortcuts") or {}
    short = shortcuts.get(flag[2:])
    return f"`{flag}` (`--{short}`)" if isinstance(short, str) else f"`{flag}`"


def flags_markdown() -> str:
    """``restate-op run``'s flags: environment variable, chart value, default, meaning."""
    envs = OperatorSettings.environment_variables()
    rows = []
    for name, field in OperatorSettings.model_fields.items():
        default = field.default
        shown = (
            "unset"
            if default is None
            else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        )
        chart = CHART_VALUES.get(envs[name], "")
        rows.append(
            f"| {_flag(name)} | `{envs[name]}` | {f'`{chart}`' if chart else ''} | {shown} | "
            f"{' '.join((field.description or '').split()).replace('|', chr(92) + '|')} |"
        )
    return (
        "# Operator flags (`restate-op run`)\n\n"
        "A flag wins over its environment variable, which wins over the default. The chart sets "
        "the variables (from the value named, where there is one).\n\n"
        "| Flag | Environment | Chart value | Default | Meaning |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
