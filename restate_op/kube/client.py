"""The one place that sends HTTP requests to the Kubernetes API server.

Built on ``kr8s.Api.call_api`` rather than kr8s's object helpers because the operator needs
what those hide: the list ``resourceVersion``, watch bookmarks and server-side timeouts,
server-side apply, delete preconditions and typed errors. kr8s still does the hard parts of
talking to a cluster: kubeconfig / in-cluster auth, TLS, and re-authentication on 401.

Every request passes through :meth:`KubeClient._call`, which counts it in
``restate_operator_api_requests_total{verb,kind}`` and turns failures into
:mod:`restate_op.kube.errors` types.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, Literal

import httpx
import kr8s.asyncio
from prometheus_client import Counter

from restate_op import __version__
from restate_op.kube.errors import KubeError, NotFound, from_response, from_status, translate
from restate_op.kube.resources import Kind, Target, kind_of

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
ObjList = list[Obj]
Verb = Literal["get", "list", "watch", "create", "update", "patch", "apply", "delete"]
WatchEventType = Literal["ADDED", "MODIFIED", "DELETED", "BOOKMARK"]
LabelSelector = str | Mapping[str, str]

USER_AGENT = f"restate-operator/{__version__}"
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
JSON = "application/json"

API_REQUESTS = Counter(
    "restate_operator_api_requests",
    "Requests sent to the Kubernetes API server, by verb and kind.",
    ["verb", "kind"],
)


def selector_string(selector: LabelSelector | None) -> str | None:
    """Render a label selector as the ``labelSelector`` query parameter.

    Example:
        >>> selector_string({"app": "restate", "tier": "db"})
        'app=restate,tier=db'
    """
    if selector is None or isinstance(selector, str):
        return selector or None
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items())) or None


def _metadata(manifest: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = manifest.get("metadata")
    if not isinstance(meta, Mapping) or not meta.get("name"):
        raise ValueError("manifest needs metadata.name")
    return meta


def _encode(body: Mapping[str, Any] | Sequence[Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


class KubeClient:
    """A thin async client for the few REST verbs the operator uses.

    Objects are plain ``dict``s exactly as the API server returns them. Errors are
    :class:`~restate_op.kube.errors.KubeError` subclasses; ``get`` and ``delete`` turn a 404
    into ``None`` / ``False`` because "it is not there" is an answer, not a failure.

    Example:
        >>> client = await KubeClient.connect(None)
        >>> sts = await client.get(STATEFUL_SET, "demo", "demo")
    """

    def __init__(
        self,
        api: Any,
        *,
        user_agent: str = USER_AGENT,
        request_timeout: float = 30.0,
    ) -> None:
        """Wrap an awaited ``kr8s.asyncio.Api``; most callers want :meth:`connect`."""
        self._api = api
        self._user_agent = user_agent
        self._timeout = httpx.Timeout(request_timeout)
        self._request_timeout = request_timeout

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        *,
        context: str | None = None,
        user_agent: str = USER_AGENT,
        request_timeout: float = 30.0,
    ) -> KubeClient:
        """Connect with a kubeconfig file, or in-cluster credentials when ``None``.

        kr8s checks the server version on connect, so this fails fast when the API server
        is unreachable or the credentials are wrong.
        """
        try:
            api = await kr8s.asyncio.api(kubeconfig=kubeconfig, context=context)
        except Exception as exc:
            error = translate(exc)
            if error is None:
                raise
            raise error from exc
        return cls(api, user_agent=user_agent, request_timeout=request_timeout)

    async def close(self) -> None:
        """Close the HTTP connection pool (kr8s reopens it if the client is used again)."""
        session: httpx.AsyncClient | None = getattr(self._api, "_session", None)
        if session is not None and not session.is_closed:
            await session.aclose()

    @contextlib.asynccontextmanager
    async def _call(
        self,
        verb: Verb,
        kind: str,
        method: str,
        target: Target,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | Sequence[Any] | None = None,
        content_type: str = JSON,
        stream: bool = False,
        http_timeout: httpx.Timeout | None = None,
    ) -> AsyncIterator[httpx.Response]:
        """Send one request: count it, and translate every failure into a ``KubeError``."""
        API_REQUESTS.labels(verb=verb, kind=kind).inc()
        headers = {"User-Agent": self._user_agent, "Accept": JSON}
        kwargs: dict[str, Any] = target.call_api_kwargs()
        if body is not None:
            headers["Content-Type"] = content_type
            kwargs["content"] = _encode(body)
        if params:
            kwargs["params"] = dict(params)
        try:
            for attempt in (1, 2):
                # Errors are ours to read: kr8s would treat every 403 (RBAC, quota,
                # admission) as expired credentials and rebuild the connection pool under
                # the feet of every other request. Only a 401 means that, and earns one
                # re-authentication.
                async with self._api.call_api(
                    method,
                    headers=headers,
                    stream=stream,
                    raise_for_status=False,
                    timeout=http_timeout or self._timeout,
                    **kwargs,
                ) as response:
                    if not response.is_error:
                        yield response
                        return
                    if stream:
                        await response.aread()
                    if response.status_code != 401 or attempt == 2:
                        raise from_response(response)
                await self._reauthenticate()
        except KubeError:
            raise
        except Exception as exc:
            error = translate(exc)
            if error is None:
                raise
            raise error from exc

    async def _reauthenticate(self) -> None:
        """Reload credentials (say a rotated ServiceAccount token) after a 401."""
        await self._api.auth.reauthenticate()
        await self._api._create_session()

    async def _request(
        self,
        verb: Verb,
        kind: Kind,
        method: str,
        target: Target,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | Sequence[Any] | None = None,
        content_type: str = JSON,
    ) -> Obj:
        async with self._call(
            verb,
            kind.kind,
            method,
            target,
            params=params,
            body=body,
            content_type=content_type,
        ) as response:
            result = response.json()
        if not isinstance(result, dict):
            raise KubeError(f"unexpected response to {method} {target.path}", reason="BadBody")
        return result

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Obj | None:
        """Read one object; ``None`` when it does not exist."""
        try:
            return await self._request("get", kind, "GET", kind.target(namespace, name))
        except NotFound:
            return None

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
        *,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> tuple[ObjList, str]:
        """List objects (all namespaces when ``namespace`` is ``None``), following pages.

        Returns the items and the list's ``resourceVersion``, from which a watch continues
        without missing an event. Items get ``apiVersion`` and ``kind`` filled in (list
        responses omit them) so they look the same as watched objects. Raises
        :class:`~restate_op.kube.errors.Gone` if a page's continue token expired.
        """
        items: ObjList = []
        resource_version = ""
        token: str | None = None
        while True:
            params = {"limit": str(page_size)}
            selector = selector_string(label_selector)
            if selector:
                params["labelSelector"] = selector
            if field_selector:
                params["fieldSelector"] = field_selector
            if token:
                params["continue"] = token
            page = await self._request("list", kind, "GET", kind.target(namespace), params=params)
            for item in page.get("items") or ():
                item.setdefault("apiVersion", kind.api_version)
                item.setdefault("kind", kind.kind)
                items.append(item)
            meta = page.get("metadata") or {}
            resource_version = resource_version or str(meta.get("resourceVersion") or "")
            token = meta.get("continue") or None
            if not token:
                return items, resource_version

    async def create(self, manifest: Mapping[str, Any], *, kind: Kind | None = None) -> Obj:
        """Create an object (POST); raises :class:`~restate_op.kube.errors.AlreadyExists`."""
        kind = kind or kind_of(manifest)
        meta = manifest.get("metadata") or {}
        target = kind.target(meta.get("namespace"))
        return await self._request("create", kind, "POST", target, body=manifest)

    async def replace(self, manifest: Mapping[str, Any], *, kind: Kind | None = None) -> Obj:
        """Replace an object (PUT, verb ``update``).

        With ``metadata.resourceVersion`` set this is a compare-and-swap: a 409
        :class:`~restate_op.kube.errors.Conflict` means someone else wrote first.
        """
        kind = kind or kind_of(manifest)
        meta = _metadata(manifest)
        target = kind.target(meta.get("namespace"), meta["name"])
        return await self._request("update", kind, "PUT", target, body=manifest)

    async def apply(
        self,
        manifest: Mapping[str, Any],
        field_manager: str,
        *,
        force: bool = True,
        subresource: str | None = None,
        kind: Kind | None = None,
    ) -> Obj:
        """Server-side apply ``manifest`` as ``field_manager``; returns the live object.

        The body is JSON, which is valid YAML, so it goes as ``application/apply-patch+yaml``.
        ``force`` takes ownership of fields another manager set (the operator is the source
        of truth for what it builds). Applying an unchanged manifest is a no-op on the
        server: the ``resourceVersion`` does not move.
        """
        kind = kind or kind_of(manifest)
        meta = _metadata(manifest)
        params = {"fieldManager": field_manager}
        if force:
            params["force"] = "true"
        target = kind.target(meta.get("namespace"), meta["name"], subresource)
        return await self._request(
            "apply", kind, "PATCH", target, params=params, body=manifest, content_type=APPLY_PATCH
        )

    async def apply_status(
        self,
        manifest: Mapping[str, Any],
        field_manager: str,
        *,
        force: bool = True,
        kind: Kind | None = None,
    ) -> Obj:
        """Server-side apply to the ``status`` subresource.

        ``manifest`` carries ``apiVersion``, ``kind``, ``metadata.name`` (and namespace) and
        the ``status`` fields this manager owns; fields it no longer sends are removed.
        """
        return await self.apply(
            manifest, field_manager, force=force, subresource="status", kind=kind
        )

    async def patch_merge(
        self,
        kind: Kind,
        name: str,
        namespace: str | None,
        patch: Mapping[str, Any],
        subresource: str | None = None,
    ) -> Obj:
        """JSON merge patch (RFC 7386): keys set to ``None`` are removed."""
        target = kind.target(namespace, name, subresource)
        return await self._request(
            "patch", kind, "PATCH", target, body=patch, content_type=MERGE_PATCH
        )

    async def patch_json(
        self,
        kind: Kind,
        name: str,
        namespace: str | None,
        operations: Sequence[Mapping[str, Any]],
    ) -> Obj:
        """JSON patch (RFC 6902): a failed ``test`` operation is a 422, nothing changed."""
        target = kind.target(namespace, name)
        return await self._request(
            "patch", kind, "PATCH", target, body=list(operations), content_type=JSON_PATCH
        )

    async def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: Literal["Orphan", "Background", "Foreground"] | None = None,
        uid_precondition: str | None = None,
        resource_version_precondition: str | None = None,
        grace_period_seconds: int | None = None,
    ) -> bool:
        """Delete an object; ``False`` when it was already gone.

        A ``uid_precondition`` makes sure we delete the very object we observed and not a
        namesake created since: on mismatch the server answers 409
        (:class:`~restate_op.kube.errors.Conflict`).
        """
        options: Obj = {"apiVersion": "v1", "kind": "DeleteOptions"}
        if propagation_policy is not None:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        preconditions: dict[str, str] = {}
        if uid_precondition is not None:
            preconditions["uid"] = uid_precondition
        if resource_version_precondition is not None:
            preconditions["resourceVersion"] = resource_version_precondition
        if preconditions:
            options["preconditions"] = preconditions
        try:
            await self._request(
                "delete", kind, "DELETE", kind.target(namespace, name), body=options
            )
        except NotFound:
            return False
        return True

    async def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 300,
        *,
        allow_bookmarks: bool = True,
    ) -> AsyncGenerator[tuple[WatchEventType, Obj], None]:
        """Stream watch events ``(type, object)`` until the server ends the watch.

        The server closes the stream after ``timeout_seconds``; the caller re-watches from
        the last ``resourceVersion`` it saw (``BOOKMARK`` events carry one without a change).
        An expired ``resource_version`` raises :class:`~restate_op.kube.errors.Gone`,
        whether the server says so with an HTTP 410 or with an ``ERROR`` event.

        Close the iterator when abandoning it early (``contextlib.aclosing``) so the
        connection is released at once.
        """
        params = {"watch": "true", "timeoutSeconds": str(int(timeout_seconds))}
        if allow_bookmarks:
            params["allowWatchBookmarks"] = "true"
        if resource_version:
            params["resourceVersion"] = resource_version
        selector = selector_string(label_selector)
        if selector:
            params["labelSelector"] = selector
        # The server ends the watch at timeoutSeconds; the read timeout only catches a dead
        # connection that never delivers even that.
        timeout = httpx.Timeout(self._request_timeout, read=timeout_seconds + 30.0)
        async with self._call(
            "watch",
            kind.kind,
            "GET",
            kind.target(namespace),
            params=params,
            stream=True,
            http_timeout=timeout,
        ) as response:
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                event_type = event.get("type")
                obj = event.get("object")
                if not isinstance(obj, dict):
                    raise KubeError(f"malformed watch event: {line[:200]}", reason="BadBody")
                if event_type == "ERROR":
                    raise from_status(None, obj)
                if event_type in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
                    yield event_type, obj
                else:
                    logger.warning("ignoring watch event of unknown type %r", event_type)

    async def api_groups(self) -> set[str]:
        """Every group/version the server serves, e.g. ``{"v1", "apps/v1", ...}``."""
        core = await self._discover(Target("/api", "", None, ""))
        return {str(v) for v in core.get("versions") or ()} | await self.named_groups()

    async def named_groups(self) -> set[str]:
        """The group/versions served under ``/apis`` (every group but the core ``v1``), in
        one request: cheap enough to poll for optional APIs appearing."""
        groups = await self._discover(Target("/apis", "", None, ""))
        return {
            str(version.get("groupVersion"))
            for group in groups.get("groups") or ()
            for version in group.get("versions") or ()
        }

    async def has_api(self, group_version: str, plural: str) -> bool:
        """Whether the server serves ``plural`` in ``group_version`` (e.g. an optional CRD)."""
        target = (
            Target("/api", "", None, group_version)
            if "/" not in group_version
            else Target("/apis", "", None, group_version)
        )
        try:
            resources = await self._discover(target)
        except NotFound:
            return False
        return any(r.get("name") == plural for r in resources.get("resources") or ())

    async def has_kind(self, kind: Kind) -> bool:
        """Whether the server serves ``kind`` (see :meth:`has_api`)."""
        return await self.has_api(kind.api_version, kind.plural)

    async def _discover(self, target: Target) -> Obj:
        async with self._call("get", "discovery", "GET", target) as response:
            result = response.json()
        if not isinstance(result, dict):
            raise KubeError(f"unexpected discovery response from {target.path}")
        return result
