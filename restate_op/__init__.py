"""restate-op: a Kubernetes operator that creates and runs Restate clusters."""

#: The release version. pyproject.toml's ``[project] version`` is the one source; this copy is
#: there because the image runs the source tree, not an installed package (no metadata), and
#: tests/test_release.py fails when it, the chart or the CHANGELOG disagree with pyproject.
__version__ = "0.1.0"

GROUP = "restate.dev"
VERSION = "v1"
KIND = "RestateCluster"
PLURAL = "restateclusters"
FIELD_MANAGER = "restate-operator"
