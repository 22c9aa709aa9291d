"""SecretProviderClass for the request-signing key."""

from __future__ import annotations

from restate_op.children.secret_provider_class import desired_secret_provider_class
from tests.children.helpers import make_cluster


def test_only_for_a_secret_provider_source() -> None:
    assert desired_secret_provider_class(make_cluster()) is None
    secret = {"version": "v1", "secret": {"secretName": "s", "key": "k"}}
    cluster = make_cluster({"security": {"requestSigningPrivateKey": secret}})
    assert desired_secret_provider_class(cluster) is None


def test_secret_provider_class_shape() -> None:
    key = {
        "version": "v1",
        "secretProvider": {
            "provider": "aws",
            "parameters": {"objects": "o", "a": "b"},
            "path": "p",
        },
    }
    spc = desired_secret_provider_class(
        make_cluster({"security": {"requestSigningPrivateKey": key}})
    )
    assert spc is not None
    assert spc["apiVersion"] == "secrets-store.csi.x-k8s.io/v1"
    assert spc["kind"] == "SecretProviderClass"
    assert spc["metadata"]["name"] == "request-signing-key-v1"
    assert spc["metadata"]["namespace"] == "restate-test"
    assert spc["spec"] == {"provider": "aws", "parameters": {"a": "b", "objects": "o"}}


def test_secret_provider_class_without_parameters() -> None:
    key = {"version": "v1", "secretProvider": {"provider": "vault", "path": "p"}}
    spc = desired_secret_provider_class(
        make_cluster({"security": {"requestSigningPrivateKey": key}})
    )
    assert spc is not None
    assert spc["spec"] == {"provider": "vault"}
