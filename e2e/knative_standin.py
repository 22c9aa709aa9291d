"""Knative Serving's controller, played by the test for one Namespace or all (no Knative runs here;
its CRDs are stand-ins, ``e2e/crds/knative-serving-stand-in.yaml``).

What the operator waits for, as Knative reports it (upstream-2026 §1.5): each Configuration
gets a Revision ``<configuration>-<generation, 5 digits>`` (created, Ready, one replica) and
its status names it as the latest created and ready, with ``observedGeneration``; each Route
gets ``status.url`` (the cluster-local URL Knative gives it,
``http://<route>.<namespace>.svc.cluster.local``), traffic to that Revision and Ready. The
stand-in admin API never calls the URL; it only records it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from e2e.operator_process import Kubectl

READY = [{"type": "Ready", "status": "True"}]


def route_url(route: str, namespace: str) -> str:
    return f"http://{route}.{namespace}.svc.cluster.local"


def revision_of(config: dict[str, Any]) -> str:
    return f"{config['metadata']['name']}-{int(config['metadata']['generation']):05}"


class KnativePlayer:
    """One pass of :meth:`play` brings every Configuration and Route of the Namespace to
    what Knative would report; :func:`playing` repeats it in the background."""

    def __init__(self, kubectl: Kubectl, namespace: str | None) -> None:
        self.kubectl = kubectl
        self.namespace = namespace

    def _items(self, plural: str) -> list[dict[str, Any]]:
        where = ["-n", self.namespace] if self.namespace else ["-A"]
        found: list[dict[str, Any]] = self.kubectl.json(
            "get", f"{plural}.serving.knative.dev", *where
        )["items"]
        return found

    def _status(self, plural: str, obj: dict[str, Any], status: dict[str, Any]) -> None:
        self.kubectl.merge_patch(
            f"{plural}.serving.knative.dev",
            obj["metadata"]["name"],
            {"status": status},
            namespace=obj["metadata"]["namespace"],
            subresource="status",
            check=False,
        )

    def play(self) -> None:
        latest: dict[tuple[str, str], str] = {}
        revisions = {
            (r["metadata"]["namespace"], r["metadata"]["name"]) for r in self._items("revisions")
        }
        for config in self._items("configurations"):
            namespace, name = config["metadata"]["namespace"], config["metadata"]["name"]
            revision = latest[namespace, name] = revision_of(config)
            if (namespace, revision) not in revisions:
                self._create_revision(config, revision)
            wanted = {
                "observedGeneration": config["metadata"]["generation"],
                "latestCreatedRevisionName": revision,
                "latestReadyRevisionName": revision,
                "conditions": READY,
            }
            if config.get("status") != wanted:
                self._status("configurations", config, wanted)
        for route in self._items("routes"):
            namespace, name = route["metadata"]["namespace"], route["metadata"]["name"]
            target = (route.get("spec", {}).get("traffic") or [{}])[0].get("configurationName")
            if (namespace, target) not in latest:
                continue
            wanted = {
                "observedGeneration": route["metadata"]["generation"],
                "url": route_url(name, namespace),
                "traffic": [{"revisionName": latest[namespace, target], "percent": 100}],
                "conditions": READY,
            }
            if route.get("status") != wanted:
                self._status("routes", route, wanted)

    def _create_revision(self, config: dict[str, Any], revision: str) -> None:
        meta = config["metadata"]
        created = self.kubectl.apply(
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Revision",
                "metadata": {
                    "name": revision,
                    "namespace": meta["namespace"],
                    "labels": {"serving.knative.dev/configuration": meta["name"]},
                    "ownerReferences": [
                        {
                            "apiVersion": "serving.knative.dev/v1",
                            "kind": "Configuration",
                            "name": meta["name"],
                            "uid": meta["uid"],
                            "controller": True,
                        }
                    ],
                },
                "spec": config["spec"]["template"].get("spec") or {},
            },
            "-o",
            "json",
            check=False,
        )
        if created.returncode == 0:
            self._status(
                "revisions",
                json.loads(created.stdout),
                {"conditions": READY, "actualReplicas": 1, "desiredReplicas": 1},
            )


@contextmanager
def playing(
    kubectl: Kubectl, namespace: str | None, interval: float = 0.5
) -> Iterator[KnativePlayer]:
    """Knative's controller for ``namespace`` (None: every one) while the block runs."""
    player = KnativePlayer(kubectl, namespace)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                player.play()
            except Exception as exc:  # a Namespace going away mid-pass: try again
                print(f"knative stand-in pass failed: {exc}")
            stop.wait(interval)

    thread = threading.Thread(target=loop, name=f"knative-{namespace or 'all'}", daemon=True)
    thread.start()
    try:
        yield player
    finally:
        stop.set()
        thread.join(timeout=30)
