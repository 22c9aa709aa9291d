"""OperatorSettings: the flags of ``restate-op run``, their environment fallbacks and checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from restate_op.__main__ import main
from restate_op.settings import OperatorSettings

#: Every flag of ``restate-op run``: (flag, value, attribute, parsed value, env variable).
FLAGS: list[tuple[str, str, str, object, str]] = [
    ("--kubeconfig", "/k/config", "kubeconfig", "/k/config", "KUBECONFIG"),
    (
        "--aws-pod-identity-association-cluster",
        "eks-prod",
        "aws_pod_identity_association_cluster",
        "eks-prod",
        "AWS_POD_IDENTITY_ASSOCIATION_CLUSTER",
    ),
    ("--operator-namespace", "ops", "operator_namespace", "ops", "OPERATOR_NAMESPACE"),
    ("--operator-label-name", "app", "operator_label_name", "app", "OPERATOR_LABEL_NAME"),
    ("--operator-label-value", "op", "operator_label_value", "op", "OPERATOR_LABEL_VALUE"),
    (
        "--gcp-workload-identity",
        "true",
        "gcp_workload_identity",
        True,
        "GCP_WORKLOAD_IDENTITY",
    ),
    ("--cluster-dns", "k8s.example", "cluster_dns", "k8s.example", "CLUSTER_DNS"),
    (
        "--node-address-template",
        "{pod}.x:5122",
        "node_address_template",
        "{pod}.x:5122",
        "NODE_ADDRESS_TEMPLATE",
    ),
    ("--canary-image", "busybox:1", "canary_image", "busybox:1", "CANARY_IMAGE"),
    ("--concurrency", "3", "concurrency", 3, "CONCURRENCY"),
    ("--leader-elect", "false", "leader_elect", False, "LEADER_ELECT"),
    ("--lease-name", "my-lease", "lease_name", "my-lease", "LEASE_NAME"),
    ("--lease-duration", "15", "lease_duration_seconds", 15.0, "LEASE_DURATION"),
    ("--lease-renew", "2.5", "lease_renew_seconds", 2.5, "LEASE_RENEW"),
    ("--resync", "30", "resync_seconds", 30.0, "RESYNC_SECONDS"),
    ("--discovery-seconds", "5", "discovery_seconds", 5.0, "DISCOVERY_SECONDS"),
    ("--status-coalesce", "0", "status_coalesce_seconds", 0.0, "STATUS_COALESCE_SECONDS"),
    ("--restate-health-seconds", "0", "restate_health_seconds", 0.0, "RESTATE_HEALTH_SECONDS"),
    (
        "--restate-health-channels",
        "0",
        "restate_health_channels",
        0,
        "RESTATE_HEALTH_CHANNELS",
    ),
    ("--restate-deployments", "true", "restate_deployments", True, "RESTATE_DEPLOYMENTS"),
    (
        "--tunnel-client-default-image",
        "example/tunnel:1",
        "tunnel_client_default_image",
        "example/tunnel:1",
        "TUNNEL_CLIENT_DEFAULT_IMAGE",
    ),
    (
        "--cloud-admin-url-template",
        "http://127.0.0.1:1/{environment}",
        "cloud_admin_url_template",
        "http://127.0.0.1:1/{environment}",
        "CLOUD_ADMIN_URL_TEMPLATE",
    ),
    (
        "--cloud-tunnel-url-template",
        "https://tunnel.{region}.example:9080",
        "cloud_tunnel_url_template",
        "https://tunnel.{region}.example:9080",
        "CLOUD_TUNNEL_URL_TEMPLATE",
    ),
    ("--http-port", "9090", "http_port", 9090, "HTTP_PORT"),
    ("--log-level", "DEBUG", "log_level", "DEBUG", "LOG_LEVEL"),
    ("--log-format", "text", "log_format", "text", "LOG_FORMAT"),
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for *_, env in FLAGS:
        monkeypatch.delenv(env, raising=False)


def test_every_field_has_a_flag_and_an_environment_variable() -> None:
    assert sorted(attr for _, _, attr, _, _ in FLAGS) == sorted(OperatorSettings.model_fields)
    assert OperatorSettings.environment_variables() == {attr: env for *_, attr, _, env in FLAGS}


def test_the_constructor_reads_neither_environment_nor_argv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = OperatorSettings()
    for _, value, _, _, env in FLAGS:
        monkeypatch.setenv(env, value)
    monkeypatch.setattr("sys.argv", ["restate-op", "run", "--concurrency", "5"])
    assert OperatorSettings() == defaults
    assert OperatorSettings().concurrency == 8
    assert OperatorSettings.from_env().concurrency == 3
    assert OperatorSettings(concurrency=2, lease_duration_seconds=3).lease_duration_seconds == 3


def test_defaults_without_flags_or_environment() -> None:
    settings = OperatorSettings.from_cli([])
    assert settings == OperatorSettings()
    assert (settings.lease_duration_seconds, settings.lease_renew_seconds) == (20.0, 8.0)
    assert (settings.resync_seconds, settings.status_coalesce_seconds) == (300.0, 1.0)
    assert (settings.concurrency, settings.http_port, settings.leader_elect) == (8, 8080, True)
    assert settings.kubeconfig is None
    assert settings.aws_pod_identity_association_cluster is None


@pytest.mark.parametrize(("flag", "value", "attr", "parsed", "env"), FLAGS)
def test_flag(flag: str, value: str, attr: str, parsed: object, env: str) -> None:
    assert getattr(OperatorSettings.from_cli([flag, value]), attr) == parsed
    assert getattr(OperatorSettings.from_cli([f"{flag}={value}"]), attr) == parsed


@pytest.mark.parametrize(("flag", "value", "attr", "parsed", "env"), FLAGS)
def test_environment_fallback(
    monkeypatch: pytest.MonkeyPatch, flag: str, value: str, attr: str, parsed: object, env: str
) -> None:
    monkeypatch.setenv(env, value)
    assert getattr(OperatorSettings.from_cli([]), attr) == parsed
    assert getattr(OperatorSettings.from_env(), attr) == parsed


def test_a_flag_wins_over_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEASE_DURATION", "40")
    monkeypatch.setenv("RESYNC_SECONDS", "60")
    monkeypatch.setenv("LEADER_ELECT", "false")
    settings = OperatorSettings.from_cli(["--lease-duration", "15", "--leader-elect", "true"])
    assert (settings.lease_duration_seconds, settings.leader_elect) == (15.0, True)
    assert settings.resync_seconds == 60.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("1", True), ("yes", True), ("on", True), ("false", False), ("0", False)],
)
def test_leader_elect_spellings(value: str, expected: bool) -> None:
    assert OperatorSettings.from_cli(["--leader-elect", value]).leader_elect is expected


def test_an_empty_environment_variable_leaves_an_optional_setting_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_POD_IDENTITY_ASSOCIATION_CLUSTER", "")
    monkeypatch.setenv("NODE_ADDRESS_TEMPLATE", "")
    settings = OperatorSettings.from_env()
    assert settings.aws_pod_identity_association_cluster is None
    assert settings.node_address_template is None


@pytest.mark.parametrize(
    "argv",
    [
        ["--cluster-dns", "cluster.local/evil"],
        ["--cluster-dns", "a b"],
        ["--concurrency", "0"],
        ["--concurrency", "many"],
        ["--status-coalesce", "-1"],
        ["--restate-health-seconds", "-1"],
        ["--restate-health-channels", "-1"],
        ["--lease-duration", "soon"],
        ["--leader-elect", "maybe"],
        ["--http-port", "80.5"],
        ["--log-format", "xml"],
    ],
)
def test_bad_values_are_refused(argv: list[str]) -> None:
    with pytest.raises(ValidationError):
        OperatorSettings.from_cli(argv)


def test_a_bad_environment_value_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTER_DNS", "not a domain")
    with pytest.raises(ValidationError, match="must be a DNS domain"):
        OperatorSettings.from_env()


def test_an_unknown_flag_is_a_usage_error() -> None:
    with pytest.raises(SystemExit):
        OperatorSettings.from_cli(["--no-such-flag", "1"])


def test_run_names_the_bad_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["run", "--concurrency", "0", "--cluster-dns", "a/b"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--concurrency" in err
    assert "--cluster-dns 'a/b' must be a DNS domain" in err


def test_run_help_lists_every_flag_with_help_and_environment_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    unwrapped = "".join(out.split())
    for flag, _, attr, _, env in FLAGS:
        assert f"{flag} " in out
        assert f"[env:{env}" in unwrapped
        description = OperatorSettings.model_fields[attr].description
        assert description
        assert "".join(description.split()) in unwrapped


def test_run_reads_its_flags_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[OperatorSettings] = []

    async def run_operator(settings: OperatorSettings) -> None:
        started.append(settings)

    monkeypatch.setattr("restate_op.__main__.run_operator", run_operator)
    monkeypatch.setattr("restate_op.__main__.setup_logging", lambda level, fmt: None)
    monkeypatch.setenv("LEASE_DURATION", "15")
    monkeypatch.setenv("CONCURRENCY", "3")
    assert main(["run", "--concurrency", "4", "--resync", "30", "--kubeconfig", "/k"]) == 0
    (settings,) = started
    assert (settings.lease_duration_seconds, settings.concurrency) == (15.0, 4)
    assert (settings.resync_seconds, settings.kubeconfig) == (30.0, "/k")
