"""One version, one image name: pyproject.toml, the package, the chart, the CHANGELOG agree."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

from restate_op import __version__
from restate_op.__main__ import main
from restate_op.metrics import METRICS

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "charts" / "restate-operator-helm"


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
