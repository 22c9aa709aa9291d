"""Restate's admin API, as the RestateDeployment effects need it (the executor's only user).

Three calls, each against a base URL whose own path is kept (``admin_request_url``):

- ``POST {admin}/deployments`` ``{"uri", "use_http_11", "force"}``: a 2xx is an accepted
  registration with Restate's id for it; a 4xx is Restate's refusal (its ``restate_code``
  and ``message``), reported as an answer, not an error;
- ``DELETE {admin}/deployments/{id}?force=true``: a 404 is done;
- Restate's view: ``GET {admin}/deployments`` (each deployment's URI and services) and the
  SQL ``POST {admin}/query`` (which deployment each service's latest is, and how many
  non-completed invocations are pinned to each deployment).

Restate Cloud's admin API takes ``Authorization: Bearer <token>`` (the effects carry it).
A 5xx, a timeout or any transport error is a ``TemporaryError``; so is an answer that does
not parse. Nothing here decides anything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx

from restate_op.deployment_identity import admin_request_url
from restate_op.deployment_observe import KnownDeployment, RestateView
from restate_op.effects import DeregisterDeployment, RegisterDeployment, RegistrationResult
from restate_op.outcomes import PermanentError, TemporaryError

#: Seconds for connecting and for each answer: a registration makes Restate call the
#: endpoint's discovery, which takes a while on a cold pod.
CONNECT_TIMEOUT_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 30.0

#: Which deployment each service's latest revision is (new invocations go to it).
LATEST_SQL = "SELECT name, deployment_id FROM sys_service WHERE deployment_id IS NOT NULL"
#: Non-completed invocations pinned to each deployment (they finish there, nowhere else).
PINNED_SQL = (
    "SELECT pinned_deployment_id AS deployment_id, COUNT(*) AS pinned "
    "FROM sys_invocation_status "
    "WHERE pinned_deployment_id IS NOT NULL AND status != 'completed' "
    "GROUP BY pinned_deployment_id"
)


def new_client() -> httpx.AsyncClient:
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS)
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False)


def headers(token: str | None) -> dict[str, str]:
    """What every request sends; a bearer token only for Restate Cloud."""
    found = {"Accept": "application/json"}
    if token is not None:
        found["Authorization"] = f"Bearer {token}"
    return found


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def restate_error(response: httpx.Response) -> tuple[str | None, str]:
    """Restate's error code (``META0006``) and text from an error answer."""
    body = _body(response)
    if isinstance(body, Mapping):
        code = body.get("restate_code") or body.get("code")
        message = body.get("message") or body.get("error") or json.dumps(body)
        return (str(code) if code else None), str(message)
    return None, response.text.strip()[:2000] or response.reason_phrase


def _temporary(what: str, response: httpx.Response) -> TemporaryError:
    code, message = restate_error(response)
    detail = f"{code}: {message}" if code else message
    return TemporaryError(f"Restate answered {response.status_code} to {what}: {detail}")


def _transport(what: str, exc: httpx.HTTPError) -> TemporaryError:
    return TemporaryError(f"Restate's admin API did not answer {what}: {type(exc).__name__}: {exc}")


async def register(client: httpx.AsyncClient, effect: RegisterDeployment) -> RegistrationResult:
    url = admin_request_url(effect.admin_url, "deployments")
    what = f"POST {url}"
    body = {"uri": effect.uri, "use_http_11": effect.use_http11, "force": effect.force}
    try:
        response = await client.post(url, json=body, headers=headers(effect.token))
    except httpx.HTTPError as exc:
        raise _transport(what, exc) from exc
    if response.is_success:
        answer = _body(response)
        deployment_id = answer.get("id") if isinstance(answer, Mapping) else None
        if not isinstance(deployment_id, str) or not deployment_id:
            raise TemporaryError(f"Restate accepted {what} but named no deployment id")
        return RegistrationResult(effect.version, accepted=True, deployment_id=deployment_id)
    if 400 <= response.status_code < 500:
        code, message = restate_error(response)
        return RegistrationResult(
            effect.version,
            accepted=False,
            status=response.status_code,
            code=code,
            message=message,
        )
    raise _temporary(what, response)


async def deregister(client: httpx.AsyncClient, effect: DeregisterDeployment) -> None:
    url = admin_request_url(effect.admin_url, "deployments", effect.deployment_id)
    what = f"DELETE {url}"
    try:
        response = await client.delete(url, params={"force": "true"}, headers=headers(effect.token))
    except httpx.HTTPError as exc:
        raise _transport(what, exc) from exc
    if response.is_success or response.status_code == 404:
        return
    if 400 <= response.status_code < 500:
        code, message = restate_error(response)
        detail = f"{code}: {message}" if code else message
        raise PermanentError(
            f"Restate refused to remove deployment {effect.deployment_id} of version "
            f"{effect.version} ({response.status_code} {detail})"
        )
    raise _temporary(what, response)


async def _sql(
    client: httpx.AsyncClient, admin: str, query: str, token: str | None = None
) -> list[Mapping[str, Any]]:
    url = admin_request_url(admin, "query")
    what = f"POST {url}"
    body = await _read_json(client, "POST", url, what, token, json={"query": query})
    rows = body.get("rows") if isinstance(body, Mapping) else None
    if not isinstance(rows, list) or not all(isinstance(r, Mapping) for r in rows):
        raise TemporaryError(f"Restate's answer to {what} has no rows")
    return rows


async def _read_json(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    what: str,
    token: str | None = None,
    **kwargs: Any,
) -> Any:
    """The decoded body of a read from the admin API; any failure is temporary."""
    try:
        response = await client.request(method, url, headers=headers(token), **kwargs)
    except httpx.HTTPError as exc:
        raise _transport(what, exc) from exc
    if not response.is_success:
        raise _temporary(what, response)
    return _body(response)


async def _deployments(
    client: httpx.AsyncClient, admin: str, token: str | None = None
) -> list[Mapping[str, Any]]:
    url = admin_request_url(admin, "deployments")
    what = f"GET {url}"
    body = await _read_json(client, "GET", url, what, token)
    found = body.get("deployments") if isinstance(body, Mapping) else None
    if not isinstance(found, list) or not all(isinstance(d, Mapping) for d in found):
        raise TemporaryError(f"Restate's answer to {what} lists no deployments")
    return found


def parse_view(
    admin: str,
    read_at: float,
    deployments: list[Mapping[str, Any]],
    latest: list[Mapping[str, Any]],
    pinned: list[Mapping[str, Any]],
) -> RestateView:
    """The three answers as one ``RestateView``; a deployment without a URI (a Lambda) is
    listed under its ARN so that it never matches a version's endpoint."""
    latest_for: dict[str, list[str]] = {}
    for row in latest:
        if row.get("deployment_id") and row.get("name"):
            latest_for.setdefault(str(row["deployment_id"]), []).append(str(row["name"]))
    counts: dict[str, int] = {}
    for row in pinned:
        if row.get("deployment_id"):
            counts[str(row["deployment_id"])] = int(row.get("pinned") or 0)
    known = []
    for d in deployments:
        if not d.get("id"):
            continue
        ident = str(d["id"])
        uri = d.get("uri") or d.get("arn") or ""
        services = tuple(
            str(s["name"])
            for s in d.get("services") or []
            if isinstance(s, Mapping) and s.get("name")
        )
        known.append(
            KnownDeployment(
                id=ident,
                uri=str(uri),
                services=services,
                latest_for=tuple(sorted(latest_for.get(ident, ()))),
                pinned=counts.get(ident, 0),
            )
        )
    return RestateView(admin_url=admin, read_at=read_at, deployments=tuple(known))


async def read_view(
    client: httpx.AsyncClient, admin: str, read_at: float, token: str | None = None
) -> RestateView:
    """Restate's view now; a failure is a view with ``error`` set (never an exception),
    so that the decision sees it and holds every version as it is."""
    try:
        deployments = await _deployments(client, admin, token)
        latest = await _sql(client, admin, LATEST_SQL, token)
        pinned = await _sql(client, admin, PINNED_SQL, token)
        return parse_view(admin, read_at, deployments, latest, pinned)
    except TemporaryError as exc:
        return RestateView(admin_url=admin, read_at=read_at, error=exc.message)
    except (TypeError, ValueError) as exc:
        return RestateView(
            admin_url=admin, read_at=read_at, error=f"Restate's answer does not parse: {exc}"
        )
