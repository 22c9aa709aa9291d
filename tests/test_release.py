"""One version, one image name: pyproject.toml, the package, the chart, the CHANGELOG agree."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from restate_op import __version__
from restate_op.__main__ import main
from restate_op.metrics import METRICS
from restate_op.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "restate-operator-helm"
CRDS_CHARTS = (
    ROOT / "charts" / "restate-operator-crds",
    CHART / "charts" / "restate-operator-crds",  # the operator chart's copy
)


def pyproject_version() -> str:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert isinstance(version, str)
    return version


def test_package_version_is_pyprojects() -> None:
    assert __version__ == pyproject_version()


def test_installed_metadata_is_pyprojects() -> None:
    try:
        installed = metadata.version("restate-op")
    except metadata.PackageNotFoundError:
        pytest.skip("restate-op is not installed (run from the source tree)")
    assert installed == pyproject_version(), "reinstall: pip install -e '.[dev]'"


def test_chart_version_and_app_version_are_pyprojects() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == pyproject_version()
    assert chart["appVersion"] == pyproject_version()


def test_crds_chart_and_the_dependency_on_it_are_at_pyprojects_version() -> None:
    for path in CRDS_CHARTS:
        chart = yaml.safe_load((path / "Chart.yaml").read_text())
        assert (chart["version"], chart["appVersion"]) == (pyproject_version(),) * 2, path
    (dependency,) = yaml.safe_load((CHART / "Chart.yaml").read_text())["dependencies"]
    assert dependency == {
        "name": "restate-operator-crds",
        "version": pyproject_version(),
        "repository": "file://../restate-operator-crds",
        "condition": "installCrds",
    }


def test_image_tag_defaults_to_the_app_version() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["version"] == "", "an explicit tag in values.yaml would pin an old image"
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert "default .Chart.AppVersion .Values.version" in helpers
    assert re.search(
        r"\.Values\.image\.repository \}\}:\{\{ include \"restate-operator\.version", helpers
    )


def test_changelog_has_the_version_and_unreleased() -> None:
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\]", text, re.MULTILINE)
    assert headings[0] == "Unreleased"
    assert pyproject_version() in headings


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"restate-op {pyproject_version()}"


def test_build_info_gauge() -> None:
    assert METRICS.build_info is not None
    value = REGISTRY.get_sample_value("restate_operator_build_info", {"version": __version__})
    assert value == 1


# -- one image name and port: workflow, chart values, Dockerfile, README ----------------------

WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
#: The one default: the release workflow's name for the project's own organisation.
DEFAULT_IMAGE = "ghcr.io/restate-op/restate-op"
DEFAULT_CHARTS = "oci://ghcr.io/restate-op/charts"


def workflow_names(tmp_path: Path, owner: str, **variables: str) -> dict[str, str]:
    """Run the workflow's ``names`` step as GitHub would, and read what it outputs."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["release"]["steps"]
    (step,) = [s for s in steps if s.get("id") == "names"]
    output = tmp_path / "github_output"
    output.write_text("")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GITHUB_REF_NAME": f"v{pyproject_version()}",
        "GITHUB_OUTPUT": str(output),
        "OWNER": owner,
        "IMAGE_REPOSITORY": variables.get("IMAGE_REPOSITORY", ""),
        "CHART_REPOSITORY": variables.get("CHART_REPOSITORY", ""),
    }
    subprocess.run(["bash", "-c", step["run"]], cwd=ROOT, env=env, check=True)
    return dict(line.split("=", 1) for line in output.read_text().splitlines())


def test_workflow_default_names_are_the_charts(tmp_path: Path) -> None:
    names = workflow_names(tmp_path, owner="Restate-Op")
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert names["image"] == values["image"]["repository"] == DEFAULT_IMAGE
    assert names["image_registry"] == "ghcr.io"
    assert names["charts"] == DEFAULT_CHARTS
    assert names["charts_registry"] == "ghcr.io"
    assert names["version"] == pyproject_version()


def test_workflow_names_from_variables_and_fork_owner(tmp_path: Path) -> None:
    fork = workflow_names(tmp_path, owner="someone")
    assert fork["image"] == "ghcr.io/someone/restate-op"
    custom = workflow_names(
        tmp_path,
        owner="someone",
        IMAGE_REPOSITORY="registry.example.com:5000/platform/restate-op",
        CHART_REPOSITORY="oci://registry.example.com:5000/charts",
    )
    assert custom["image"] == "registry.example.com:5000/platform/restate-op"
    assert custom["image_registry"] == "registry.example.com:5000"
    assert custom["charts_registry"] == "registry.example.com:5000"


def test_workflow_refuses_a_tag_that_is_not_the_version(tmp_path: Path) -> None:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["release"]["steps"]
    (step,) = [s for s in steps if s.get("id") == "names"]
    proc = subprocess.run(
        ["bash", "-c", step["run"]],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "GITHUB_REF_NAME": "v99.0.0", "OWNER": "x"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "does not match pyproject.toml" in proc.stdout


def test_workflow_builds_both_platforms_and_pins_the_tested_helm() -> None:
    workflow = WORKFLOW.read_text()
    steps = yaml.safe_load(workflow)["jobs"]["release"]["steps"]
    (build,) = [s for s in steps if str(s.get("uses", "")).startswith("docker/build-push")]
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] is True
    assert build["with"]["context"] == "."
    (helm,) = [s for s in steps if str(s.get("uses", "")).startswith("azure/setup-helm")]
    pins = (ROOT / "e2e" / "versions.env").read_text()
    assert f"HELM_VERSION={helm['with']['version']}\n" in pins
    assert "--include-crds" in workflow
    assert "restatedev" not in workflow


def test_dockerfile_and_chart_use_the_default_name_and_port() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert f"docker build -t {DEFAULT_IMAGE}:{pyproject_version()} ." in dockerfile
    assert re.search(r"^EXPOSE 8080$", dockerfile, re.MULTILINE)
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert re.search(r"- name: http\n\s+containerPort: 8080\n", deployment)
    assert OperatorSettings().http_port == 8080


def test_readme_installs_restate_op_not_upstream() -> None:
    readme = (ROOT / "README.md").read_text()
    install = readme[readme.index("## Install\n") : readme.index("## A RestateCluster")]
    assert "helm install restate-operator oci://ghcr.io/restatedev" not in install
    assert DEFAULT_IMAGE in install
    assert f"{DEFAULT_CHARTS}/restate-operator-helm" in install
    assert "--set image.repository=" in install
    assert "charts/restate-operator-helm" in install
    for path in re.findall(r"kubectl apply (?:--server-side )?-f ([\w./-]+\.yaml)", install):
        assert (ROOT / path).is_file(), path
