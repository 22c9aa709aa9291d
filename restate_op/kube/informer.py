"""List+watch one kind into an in-memory cache, and tell handlers what changed.

Reconciles read from these caches instead of the API server, so a reconcile costs no GETs
and the API server sees one long-lived watch per kind instead of a request per cluster.

The loop is client-go's reflector, written on :meth:`KubeClient.watch` (kr8s's own watch
re-watches an expired ``resourceVersion`` in a tight loop and cannot ask for bookmarks):

1. LIST, replace the cache, synthesise events for what changed, remember the list's
   ``resourceVersion``.
2. WATCH from that ``resourceVersion`` with bookmarks and a jittered server-side timeout;
   apply each event; when the server ends the watch, watch again from the last version.
3. On ``410 Gone`` (history compacted) or any other error, go back to 1, after a backoff
   for errors. Requests are paced so an informer never sends more than one per
   ``min_interval`` seconds, even while the API server is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from typing import Literal

from restate_op.kube.client import KubeClient, LabelSelector, Obj, ObjList
from restate_op.kube.errors import MAX_RETRY_AFTER, Gone, retry_after
from restate_op.kube.resources import Kind

logger = logging.getLogger(__name__)

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
Handler = Callable[[EventType, Obj], None]
Transform = Callable[[Obj], Obj]
Key = tuple[str, str]


def object_key(obj: Obj) -> Key:
    """The cache key of an object: ``(namespace, name)``, namespace ``""`` if cluster-scoped."""
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def resource_version(obj: Obj) -> str:
    """``metadata.resourceVersion`` of an object, ``""`` if absent."""
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def strip_managed_fields(obj: Obj) -> Obj:
    """A :data:`Transform` that drops ``metadata.managedFields`` and kubectl's last-applied
    annotation: together often half an object's size, and never read by the operator."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    return obj


class Informer:
    """A cache of one kind (optionally one namespace / label selector), kept fresh by watch.

    Handlers are plain synchronous callables ``(event, obj)``; they run on the event loop
    between two watch events, so they must be quick (enqueue a key, nothing more). An
    exception in a handler is logged and does not stop the informer.

    Example:
        >>> informer = Informer(client, STATEFUL_SET, label_selector={"app": "restate"})
        >>> informer.add_handler(lambda event, obj: queue.add(owner_of(obj)))
        >>> informer.start()
        >>> await informer.wait_synced()
        >>> informer.get("demo", "demo")
    """

    def __init__(
        self,
        client: KubeClient,
        kind: Kind,
        *,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
        transform: Transform | None = None,
        watch_timeout: float = 300.0,
        min_interval: float = 1.0,
        backoff_initial: float = 1.0,
        backoff_max: float = 5.0,
    ) -> None:
        """Set up the informer; nothing is requested until :meth:`start`.

        Args:
            watch_timeout: server-side watch timeout; each watch asks for a random value
                between this and 1.5 times it, so many informers do not re-watch in step.
            min_interval: least time between two requests of this informer.
            backoff_initial, backoff_max: error backoff bounds (doubling, jittered).
        """
        self.client = client
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.handlers: list[Handler] = []
        self._transform = transform
        self._watch_timeout = watch_timeout
        self._min_interval = min_interval
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._store: dict[Key, Obj] = {}
        # Secondary index: reconciles read one namespace's children, which must not cost a
        # scan of every cluster's objects.
        self._by_namespace: dict[str, dict[str, Obj]] = {}
        self._resource_version = ""
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_request = -float("inf")
        self.last_error: BaseException | None = None

    @property
    def name(self) -> str:
        """A label for logs: the kind, plus namespace and selector if any."""
        parts = [str(self.kind)]
        if self.namespace:
            parts.append(f"ns={self.namespace}")
        if self.label_selector:
            parts.append(f"selector={self.label_selector}")
        return " ".join(parts)

    # -- reading the cache -------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """Whether the first LIST has been loaded."""
        return self._synced.is_set()

    @property
    def resource_version(self) -> str:
        """The last ``resourceVersion`` seen (list, event or bookmark)."""
        return self._resource_version

    async def wait_synced(self) -> None:
        """Wait for the first LIST (bound it with ``asyncio.timeout`` if needed)."""
        await self._synced.wait()

    def get(self, namespace: str | None, name: str) -> Obj | None:
        """The cached object, or ``None``. Do not mutate it: it is the cache's copy."""
        return self._store.get((namespace or "", name))

    def list(self, namespace: str | None = None) -> ObjList:
        """Cached objects, all or those of one namespace."""
        if namespace is None:
            return [*self._store.values()]
        return [*self._by_namespace.get(namespace, {}).values()]

    def keys(self) -> Iterator[Key]:
        """The ``(namespace, name)`` keys of every cached object."""
        return iter([*self._store])

    def __len__(self) -> int:
        return len(self._store)

    def add_handler(self, handler: Handler) -> None:
        """Register a callback for every change (also replayed for objects already cached)."""
        self.handlers.append(handler)
        for obj in [*self._store.values()]:
            self._call(handler, "ADDED", obj)

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the list+watch loop as a background task."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"informer {self.name}")

    async def stop(self) -> None:
        """Stop the loop and wait for it (the cache keeps its last content)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        """Whether the loop task is alive."""
        return self._task is not None and not self._task.done()

    # -- the loop ----------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = self._backoff_initial
        need_list = True
        while True:
            try:
                await self._pace()
                if need_list:
                    items, version = await self.client.list(
                        self.kind, self.namespace, self.label_selector
                    )
                    self._replace(items, version)
                    need_list = False
                    backoff = self._backoff_initial
                    # The watch that continues a list is not paced: events since the list
                    # would only arrive later. A failing watch leads to a paced re-list.
                self._last_request = time.monotonic()
                if await self._watch_once():
                    backoff = self._backoff_initial
            except asyncio.CancelledError:
                raise
            except Gone as exc:
                logger.info(
                    "%s: resourceVersion %s expired (%s); re-listing",
                    self.name,
                    self._resource_version,
                    exc.message,
                )
                need_list = True
            except Exception as exc:
                self.last_error = exc
                delay = backoff * random.uniform(0.8, 1.2)
                # A throttled request (429) says when to come back: never sooner.
                delay = max(delay, min(retry_after(exc) or 0.0, MAX_RETRY_AFTER))
                logger.warning(
                    "%s: list/watch failed, re-listing in %.1fs: %s", self.name, delay, exc
                )
                need_list = True
                await asyncio.sleep(delay)
                backoff = min(backoff * 2, self._backoff_max)

    async def _pace(self) -> None:
        """Keep at least ``min_interval`` between two requests of this informer."""
        wait = self._last_request + self._min_interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_request = time.monotonic()

    async def _watch_once(self) -> bool:
        """One watch request, applied to the cache; ``True`` if it delivered anything."""
        timeout = int(self._watch_timeout * random.uniform(1.0, 1.5))
        delivered = False
        events = self.client.watch(
            self.kind,
            self.namespace,
            self.label_selector,
            resource_version=self._resource_version,
            timeout_seconds=timeout,
        )
        async with contextlib.aclosing(events):
            async for event_type, obj in events:
                delivered = True
                version = resource_version(obj)
                if event_type == "BOOKMARK":
                    if version:
                        self._resource_version = version
                    continue
                self._apply(event_type, obj)
                if version:
                    self._resource_version = version
        self.last_error = None
        return delivered

    def _apply(self, event_type: EventType, obj: Obj) -> None:
        obj = self._transform(obj) if self._transform else obj
        key = object_key(obj)
        namespace, name = key
        if event_type == "DELETED":
            self._store.pop(key, None)
            siblings = self._by_namespace.get(namespace)
            if siblings is not None:
                siblings.pop(name, None)
                if not siblings:
                    del self._by_namespace[namespace]
        else:
            self._store[key] = obj
            self._by_namespace.setdefault(namespace, {})[name] = obj
        self._dispatch(event_type, obj)

    def _replace(self, items: ObjList, version: str) -> None:
        """Load a LIST: DELETED for vanished objects, ADDED for new ones, MODIFIED for
        objects whose ``resourceVersion`` changed; unchanged objects raise no event."""
        fresh: dict[Key, Obj] = {}
        for item in items:
            obj = self._transform(item) if self._transform else item
            fresh[object_key(obj)] = obj
        old, self._store = self._store, fresh
        self._by_namespace = {}
        for (namespace, name), obj in fresh.items():
            self._by_namespace.setdefault(namespace, {})[name] = obj
        self._resource_version = version
        self.last_error = None
        self._synced.set()
        for key, obj in old.items():
            if key not in fresh:
                self._dispatch("DELETED", obj)
        for key, obj in fresh.items():
            before = old.get(key)
            if before is None:
                self._dispatch("ADDED", obj)
            elif resource_version(before) != resource_version(obj):
                self._dispatch("MODIFIED", obj)

    def _dispatch(self, event_type: EventType, obj: Obj) -> None:
        for handler in [*self.handlers]:
            self._call(handler, event_type, obj)

    def _call(self, handler: Handler, event_type: EventType, obj: Obj) -> None:
        try:
            handler(event_type, obj)
        except Exception:
            logger.exception(
                "%s: handler %r failed on %s %s", self.name, handler, event_type, object_key(obj)
            )
