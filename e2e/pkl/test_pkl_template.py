"""The generated Pkl template accepts the upstream examples and renders them back unchanged.

Each example manifest is written as a Pkl module amending ``crd/RestateCluster.pkl`` and
evaluated by the real Pkl CLI (``e2e/install-pkl.sh``); the YAML it renders must equal the
manifest. A name that is not a DNS label must be refused by the template's constraint.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from restate_op.api.crd import openapi_schema

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "crd" / "RestateCluster.pkl"
FIXTURES = REPO / "tests" / "fixtures"


Schema = dict[str, Any]
METADATA_SCHEMA: Schema = {
    "properties": {
        "name": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    }
}


def _pkl(value: Any, schema: Schema, indent: str) -> str:
    """``value`` as a Pkl expression of the type ``schema`` describes (CRD schema)."""
    inner = indent + "  "
    if isinstance(value, list):
        items = schema.get("items", {})
        body = "".join(f"{inner}{_pkl(v, items, inner)}\n" for v in value)
        return "new {\n" + body + indent + "}"
    if not isinstance(value, dict):
        return json.dumps(value)
    if "properties" in schema:
        props = schema["properties"]
        body = "".join(f"{inner}`{k}` = {_pkl(v, props[k], inner)}\n" for k, v in value.items())
        return "new {\n" + body + indent + "}"
    # Maps and free-form Kubernetes objects: entries. `new {}` lets Pkl infer the declared
    # type (Listing<Env>, Mapping<String, String>, Dynamic) from the property.
    open_schema = schema.get("additionalProperties")
    sub = open_schema if isinstance(open_schema, dict) else {}
    body = "".join(f"{inner}[{json.dumps(k)}] = {_pkl(v, sub, inner)}\n" for k, v in value.items())
    return "new {\n" + body + indent + "}"


def as_pkl_module(manifest: dict[str, Any]) -> str:
    """A Pkl module amending the template with ``manifest``'s metadata and spec."""
    spec_schema = openapi_schema(kubernetes_types="named")["properties"]["spec"]
    return (
        f'amends "{TEMPLATE}"\n\n'
        f"metadata = {_pkl(manifest['metadata'], METADATA_SCHEMA, '')}\n"
        f"spec = {_pkl(manifest['spec'], spec_schema, '')}\n"
    )


@pytest.fixture(scope="module")
def pkl_jar() -> Path:
    proc = subprocess.run(
        ["bash", str(REPO / "e2e" / "install-pkl.sh")],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, f"pkl CLI unavailable: {proc.stderr}"
    return Path(proc.stdout.strip())


def evaluate(pkl_jar: Path, modules: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["java", "-jar", str(pkl_jar), "eval", *[str(m) for m in modules]],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_examples_render_back_unchanged(pkl_jar: Path, tmp_path: Path) -> None:
    examples = {
        name: yaml.safe_load((FIXTURES / f"{name}.yaml").read_text())
        for name in ("baseline", "full")
    }
    for name, manifest in examples.items():
        module = tmp_path / f"{name}.pkl"
        module.write_text(as_pkl_module(manifest))
        proc = evaluate(pkl_jar, [module])
        assert proc.returncode == 0, f"{name}: {proc.stderr}\n{module.read_text()}"
        rendered = yaml.safe_load(proc.stdout)
        assert rendered == {k: v for k, v in manifest.items() if k != "status"}, name


def test_template_refuses_a_dotted_name(pkl_jar: Path, tmp_path: Path) -> None:
    manifest = yaml.safe_load((FIXTURES / "baseline.yaml").read_text())
    manifest["metadata"]["name"] = "restate.test"
    module = tmp_path / "dotted.pkl"
    module.write_text(as_pkl_module(manifest))
    proc = evaluate(pkl_jar, [module])
    assert proc.returncode != 0 and "Type constraint" in proc.stderr, proc.stderr


def test_template_refuses_a_negative_replica_count(pkl_jar: Path, tmp_path: Path) -> None:
    manifest = yaml.safe_load((FIXTURES / "baseline.yaml").read_text())
    manifest["spec"]["compute"]["replicas"] = -1
    module = tmp_path / "negative.pkl"
    module.write_text(as_pkl_module(manifest))
    proc = evaluate(pkl_jar, [module])
    assert proc.returncode != 0 and "Type constraint" in proc.stderr, proc.stderr
