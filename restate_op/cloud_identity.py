"""How a RestateDeployment reaches a Restate Cloud environment: pure functions of the
RestateCloudEnvironment, its Secret and the operator's settings.

- **Admin API** (upstream §1.6): ``https://<id without env_>.env.<region>.restate.cloud:9070``
  with ``Authorization: Bearer <token>``, the token read from the Secret
  ``spec.authentication.secret`` in the operator's namespace and whitespace-trimmed. The
  URL is ``--cloud-admin-url-template`` filled in, so tests reach a stand-in on loopback.
- **Tunnel URLs** (§2.4, §1.8): what Restate Cloud calls to reach a version. External mode
  goes through the tunnel client pods:
  ``<tunnel base>/<id>/<RCE uid>/http/<version's Service host>/9080/<servicePath>``;
  in-process mode through the SDK's own tunnel:
  ``<tunnel base>/<id>/<tunnel name>/http/in-process/9080/<servicePath>``, the tunnel name
  being the version's name, given to the pods as ``RESTATE_INPROC_*`` variables.

The Secret's value is read from the informer cache (the operator's namespace only), so a
rotation reaches every RestateDeployment of the environment with the next watch event.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from restate_op.api.cloud import RestateCloudEnvironment, spec_problems
from restate_op.deployment_identity import ENDPOINT_PORT
from restate_op.settings import OperatorSettings

INPROC_PREFIX = "RESTATE_INPROC_"
INPROC_TUNNEL_NAME = "RESTATE_INPROC_TUNNEL_NAME"
INPROC_ENVIRONMENT_ID = "RESTATE_INPROC_ENVIRONMENT_ID"
INPROC_CLOUD_REGION = "RESTATE_INPROC_CLOUD_REGION"
INPROC_SIGNING_PUBLIC_KEY = "RESTATE_INPROC_SIGNING_PUBLIC_KEY"
INPROC_VARIABLES = (
    INPROC_TUNNEL_NAME,
    INPROC_ENVIRONMENT_ID,
    INPROC_CLOUD_REGION,
    INPROC_SIGNING_PUBLIC_KEY,
)


@dataclass(frozen=True)
class CloudAccess:
    """What a RestateDeployment's ``register.cloud`` resolves to, or why it cannot be used."""

    name: str
    environment: RestateCloudEnvironment | None = None
    admin_url: str | None = None
    token: str | None = field(default=None, repr=False)
    tunnel_base: str = ""
    #: Why the environment cannot be registered with now (None: it can).
    problem: str | None = None

    @property
    def found(self) -> bool:
        return self.environment is not None

    @property
    def usable(self) -> bool:
        return self.problem is None and self.admin_url is not None and self.token is not None


def bearer_token(
    secret: Mapping[str, Any] | None, name: str, key: str, namespace: str
) -> tuple[str | None, str | None]:
    """(token, None) or (None, what is wrong), from the Secret as the API server returns it."""
    where = f"Secret {name} in namespace {namespace} (spec.authentication.secret)"
    if secret is None:
        return None, f"{where} does not exist"
    data = secret.get("data") or {}
    if key not in data:
        return None, f"{where} has no key {key!r}"
    try:
        token = base64.b64decode(str(data[key]), validate=True).decode().strip()
    except (binascii.Error, UnicodeDecodeError):
        return None, f"{where}: key {key!r} is not valid base64 text"
    if not token:
        return None, f"{where}: key {key!r} is empty"
    return token, None


def cloud_access(
    name: str,
    raw: Mapping[str, Any] | None,
    secret: Mapping[str, Any] | None,
    settings: OperatorSettings,
) -> CloudAccess:
    """Resolve ``register.cloud: name`` against the cached RCE and Secret."""
    if raw is None:
        return CloudAccess(
            name,
            problem=f"RestateCloudEnvironment {name} (spec.restate.register.cloud) does not exist",
        )
    try:
        rce = RestateCloudEnvironment.model_validate(raw)
    except ValidationError as exc:
        return CloudAccess(name, problem=f"RestateCloudEnvironment {name} is malformed: {exc}")
    problems = spec_problems(rce.spec)
    if problems:
        return CloudAccess(
            name,
            rce,
            problem=f"RestateCloudEnvironment {name} is invalid: {'; '.join(problems)}",
        )
    ref = rce.spec.authentication.secret
    token, problem = bearer_token(secret, ref.name, ref.key, settings.operator_namespace)
    spec = rce.spec
    return CloudAccess(
        name,
        rce,
        admin_url=settings.cloud_admin_url_template.format(
            environment=spec.unprefixed_id, region=spec.region
        ).rstrip("/"),
        token=token,
        tunnel_base=settings.cloud_tunnel_url_template.format(region=spec.region).rstrip("/"),
        problem=f"RestateCloudEnvironment {name}: {problem}" if problem else None,
    )


def _path(service_path: str | None) -> str:
    return (service_path or "").lstrip("/")


def escapes(service_path: str | None) -> bool:
    """A servicePath that would leave the tunnel's base path (upstream refuses it)."""
    return any(segment == ".." for segment in _path(service_path).split("/"))


def external_tunnel_uri(
    access: CloudAccess, version: str, namespace: str, cluster_dns: str, service_path: str | None
) -> str:
    """The tunnel URL of a version's Service, through the tunnel client pods."""
    assert access.environment is not None
    env = access.environment
    host = f"{version}.{namespace}.svc.{cluster_dns}"
    return (
        f"{access.tunnel_base}/{env.spec.unprefixed_id}/{env.metadata.uid}/http/{host}/"
        f"{ENDPOINT_PORT}/{_path(service_path)}"
    )


def in_process_tunnel_uri(access: CloudAccess, version: str, service_path: str | None) -> str:
    """The tunnel URL of a version whose SDK opens the tunnel itself."""
    assert access.environment is not None
    env = access.environment
    return (
        f"{access.tunnel_base}/{env.spec.unprefixed_id}/{version}/http/in-process/"
        f"{ENDPOINT_PORT}/{_path(service_path)}"
    )


def in_process_env(access: CloudAccess, version: str) -> dict[str, str]:
    """The variables every container of an in-process version gets."""
    assert access.environment is not None
    spec = access.environment.spec
    return {
        INPROC_TUNNEL_NAME: version,
        INPROC_ENVIRONMENT_ID: spec.prefixed_id,
        INPROC_CLOUD_REGION: spec.region,
        INPROC_SIGNING_PUBLIC_KEY: spec.signing_public_key,
    }


def user_inproc_variables(pod_spec: Mapping[str, Any]) -> list[str]:
    """``container: VARIABLE`` for each RESTATE_INPROC_* the user's template already sets."""
    found = []
    for group in ("initContainers", "containers"):
        for container in pod_spec.get(group) or []:
            for env in container.get("env") or []:
                if str(env.get("name", "")).startswith(INPROC_PREFIX):
                    found.append(f"{container.get('name')}: {env['name']}")
    return found


def with_env(pod_spec: Mapping[str, Any], variables: Mapping[str, str]) -> dict[str, Any]:
    """``pod_spec`` with ``variables`` appended to every container and init container."""
    spec = dict(pod_spec)
    added = [{"name": k, "value": v} for k, v in variables.items()]
    for group in ("initContainers", "containers"):
        if spec.get(group):
            spec[group] = [{**c, "env": [*(c.get("env") or []), *added]} for c in spec[group]]
    return spec
