"""A fake external provisioner and resizer for the local control plane's storage classes.

Without kubelets or a CSI driver nothing would ever bind a PersistentVolumeClaim or grow
one, so the control plane runs this controller as a separate process (so that it shares
neither the GIL nor the event loop with the code under test, and is stopped by PID like every
other component). It plays the parts that external-provisioner and external-resizer play
in a real cluster, and leaves everything else to kube-controller-manager:

* provisioning: for every pending claim of a StorageClass whose provisioner is ours, it
  creates a PersistentVolume pre-bound to the claim (claimRef with the claim's UID);
  kube-controller-manager's PV controller then binds both sides exactly as for static
  provisioning, so the claim's `spec.volumeName`, `status.phase` and `status.capacity` are set
  by real Kubernetes code.
* resizing: when a bound claim's `spec.resources.requests.storage` exceeds its
  `status.capacity.storage` (the API server only allows that for classes with
  `allowVolumeExpansion: true`), it grows the PV, then walks the claim through the
  `Resizing` and `FileSystemResizePending` conditions, one poll each, before setting the new
  capacity, like external-resizer followed by the kubelet's filesystem resize.
* deletion: a Released PV of ours whose reclaim policy is Delete is deleted.
* resizing only: for the classes of the provisioners given with `--resize-provisioner` (the
  real node's local-path-provisioner, which provisions real directories but has no
  resizer), bound claims are grown the same way, at the API level only: an emulation on top
  of real volumes, whose directories have no size anyway.

It polls instead of watching: a list of claims every half second is cheap at test scale and
survives API server restarts without any watch bookkeeping. Volumes are listed on every
fourth pass only (to delete released ones and to learn of volumes deleted by others); in
between it remembers which volumes it created, so a thousand claims do not cost a list of a
thousand volumes twice a second.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import re
import signal
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any

from e2e.kubehttp import JSON, Credentials, KubeHTTP, KubeHTTPError

PROVISIONER = "fake-storage.e2e.restate.dev"
"""Provisioner (and CSI driver) name of the fake storage classes; a DNS subdomain as CSI needs."""
_LOG = logging.getLogger("fake-storage")
_SUFFIXES = {
    "": Decimal(1),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
    "m": Decimal("0.001"),
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(text: str) -> Decimal:
    """Parse a Kubernetes resource quantity ("1Gi", "500M", "1e9") into a number of units."""
    match = _QUANTITY.match(text.strip())
    if not match or match.group(2) not in _SUFFIXES:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return Decimal(match.group(1)) * _SUFFIXES[match.group(2)]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dig(obj: JSON, *keys: str) -> Any:
    cur: Any = obj
    for key in keys:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


class FakeStorageController:
    """One reconcile pass at a time over all claims and volumes of our provisioner."""

    #: Every how many passes the volumes are listed.
    FULL_PASS_EVERY = 4

    def __init__(
        self,
        client: KubeHTTP,
        provisioner: str = PROVISIONER,
        resize_provisioners: Sequence[str] = (),
    ) -> None:
        """Use `client` (already authenticated) and act for classes naming `provisioner`.

        Claims of classes naming one of `resize_provisioners` are only resized.
        """
        self.client = client
        self.provisioner = provisioner
        self.resize_provisioners = frozenset(resize_provisioners)
        self._passes = 0
        #: Names of the volumes that exist, as of the last list plus those created since.
        self._volumes: set[str] = set()

    def reconcile_once(self) -> None:
        """Provision, resize and delete whatever is due right now; raises on API errors."""
        all_classes = self.client.get("/apis/storage.k8s.io/v1/storageclasses")["items"]
        classes = {
            sc["metadata"]["name"]: sc
            for sc in all_classes
            if sc.get("provisioner") == self.provisioner
        }
        resize_only = {
            sc["metadata"]["name"]
            for sc in all_classes
            if sc.get("provisioner") in self.resize_provisioners
        }
        claims = self.client.get("/api/v1/persistentvolumeclaims")["items"]
        volumes: list[JSON] = []
        if self._passes % self.FULL_PASS_EVERY == 0:
            volumes = self.client.get("/api/v1/persistentvolumes")["items"]
            self._volumes = {pv["metadata"]["name"] for pv in volumes}
        self._passes += 1
        for claim in claims:
            if (
                (_dig(claim, "spec", "storageClassName") or "") in resize_only
                and _dig(claim, "status", "phase") == "Bound"
                and not _dig(claim, "metadata", "deletionTimestamp")
            ):
                try:
                    self._resize_step(claim)
                except KubeHTTPError as err:
                    _LOG.warning("claim %s: %s", _claim_key(claim), err)
                continue
            sc = classes.get(_dig(claim, "spec", "storageClassName") or "")
            if sc is None or _dig(claim, "metadata", "deletionTimestamp"):
                continue
            try:
                if not _dig(claim, "spec", "volumeName"):
                    if _pv_name(claim) not in self._volumes:
                        self._provision(claim, sc)
                elif _dig(claim, "status", "phase") == "Bound":
                    self._resize_step(claim)
            except KubeHTTPError as err:
                # A claim deleted or changed under our feet: the next pass sees the new state.
                _LOG.warning("claim %s: %s", _claim_key(claim), err)
        for pv in volumes:
            annotations = _dig(pv, "metadata", "annotations") or {}
            if (
                annotations.get("pv.kubernetes.io/provisioned-by") == self.provisioner
                and _dig(pv, "status", "phase") in ("Released", "Failed")
                and _dig(pv, "spec", "persistentVolumeReclaimPolicy") == "Delete"
                and not _dig(pv, "metadata", "deletionTimestamp")
            ):
                _LOG.info("deleting released volume %s", pv["metadata"]["name"])
                self.client.delete(f"/api/v1/persistentvolumes/{pv['metadata']['name']}")

    def _provision(self, claim: JSON, sc: JSON) -> None:
        request = _dig(claim, "spec", "resources", "requests", "storage")
        if request is None:
            return
        meta = claim["metadata"]
        pv: JSON = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": _pv_name(claim),
                "annotations": {"pv.kubernetes.io/provisioned-by": self.provisioner},
                "labels": {"e2e.restate.dev/fake-storage": "true"},
            },
            "spec": {
                "capacity": {"storage": request},
                "accessModes": _dig(claim, "spec", "accessModes") or ["ReadWriteOnce"],
                "volumeMode": _dig(claim, "spec", "volumeMode") or "Filesystem",
                "storageClassName": sc["metadata"]["name"],
                "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy", "Delete"),
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "namespace": meta["namespace"],
                    "name": meta["name"],
                    "uid": meta["uid"],
                },
                "csi": {"driver": self.provisioner, "volumeHandle": _pv_name(claim)},
            },
        }
        if self.client.create("/api/v1/persistentvolumes", pv) is not None:
            _LOG.info("provisioned %s for %s (%s)", _pv_name(claim), _claim_key(claim), request)
        self._volumes.add(_pv_name(claim))  # created now, or already there (409)

    def _resize_step(self, claim: JSON) -> None:
        request = _dig(claim, "spec", "resources", "requests", "storage")
        capacity = _dig(claim, "status", "capacity", "storage")
        if request is None or capacity is None:
            return
        if parse_quantity(request) <= parse_quantity(capacity):
            return
        meta = claim["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/persistentvolumeclaims/{meta['name']}"
        conditions: list[JSON] = _dig(claim, "status", "conditions") or []
        types = {c.get("type") for c in conditions}
        others = [
            c for c in conditions if c.get("type") not in ("Resizing", "FileSystemResizePending")
        ]
        if "Resizing" not in types and "FileSystemResizePending" not in types:
            # The controller half of a CSI resize: the volume grows first.
            self.client.merge_patch(
                f"/api/v1/persistentvolumes/{claim['spec']['volumeName']}",
                {"spec": {"capacity": {"storage": request}}},
            )
            status: JSON = {
                "conditions": [*others, _condition("Resizing")],
                "allocatedResources": {"storage": request},
                "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"},
            }
            _LOG.info("resizing %s: %s -> %s", _claim_key(claim), capacity, request)
        elif "Resizing" in types:
            status = {
                "conditions": [*others, _condition("FileSystemResizePending")],
                "allocatedResourceStatuses": {"storage": "NodeResizePending"},
            }
        else:
            # The kubelet half: the file system has grown, the claim reports the new size.
            status = {
                "conditions": others,
                "capacity": {"storage": request},
                "allocatedResourceStatuses": None,
            }
            _LOG.info("resized %s to %s", _claim_key(claim), request)
        self.client.merge_patch(path + "/status", {"status": status})


def _condition(kind: str) -> JSON:
    return {"type": kind, "status": "True", "lastTransitionTime": _now()}


def _pv_name(claim: JSON) -> str:
    return f"pvc-{claim['metadata']['uid']}"


def _claim_key(claim: JSON) -> str:
    return f"{claim['metadata']['namespace']}/{claim['metadata']['name']}"


def run(
    creds: Credentials, provisioner: str, interval: float, resize_provisioners: Sequence[str] = ()
) -> None:
    """Reconcile every `interval` seconds until SIGTERM/SIGINT, riding out API outages."""
    stopping = False

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    client = KubeHTTP(creds, timeout=5.0)
    controller = FakeStorageController(client, provisioner, resize_provisioners)
    failing = False
    while not stopping:
        try:
            controller.reconcile_once()
            if failing:
                _LOG.info("API server reachable again")
            failing = False
        except Exception as err:  # keep running whatever happens; the log says what
            if not failing:
                _LOG.warning("reconcile failed (will retry): %s", err)
            failing = True
        time.sleep(interval)
    client.close()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: `python -m e2e.fake_storage --server ... --ca ...`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--server", required=True)
    parser.add_argument("--ca", required=True, type=Path)
    parser.add_argument("--cert", required=True, type=Path)
    parser.add_argument("--key", required=True, type=Path)
    parser.add_argument("--provisioner", default=PROVISIONER)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument(
        "--resize-provisioner",
        action="append",
        default=[],
        help="also resize (never provision) bound claims of this provisioner's classes",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run(
        Credentials(args.server, args.ca, args.cert, args.key),
        args.provisioner,
        args.interval,
        args.resize_provisioner,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
