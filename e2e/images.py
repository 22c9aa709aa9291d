"""Container images for the real node, built here with podman/buildah and never pulled.

Every image is built from local inputs only and cached under ``$RESTATE_OP_CACHE/images``
(default ``~/.cache/restate-op/images``) as an OCI archive whose name carries a hash of the
image's inputs, so an image is rebuilt exactly when an input changes (the operator image when
any file of ``restate_op/``, ``states/``, ``pyproject.toml`` or the ``Dockerfile`` changes):

- ``base``: Debian bookworm minbase with python3 (mmdebstrap from Debian's archive), plus a
  ``python`` symlink; the FROM of the other images;
- ``operator``: the repository's own ``Dockerfile`` (the image users build), on ``base``;
- ``restate``: restate-server and restatectl from the npm cache (e2e/install-restate.sh);
- ``pause``: the kubelet's sandbox image, ``gcc -static`` of Kubernetes' own ``pause.c``
  from the Go module cache;
- ``busybox``: Debian's busybox-static with every applet linked (local-path's helper pods,
  client pods in the tests);
- ``sdk``: the Restate SDK service of e2e/sdk_service (PyPI's ``restate-sdk``) on ``base``,
  which the RestateDeployment tests register with a real Restate.

podman runs with a private configuration (``CONTAINERS_CONF``, ``CONTAINERS_STORAGE_CONF``,
``CONTAINERS_REGISTRIES_CONF``) in which every public registry is blocked and short names are
disabled, and every build passes ``--pull=never``: a missing image fails loudly instead of
reaching for the network. ``python -m e2e.images build`` builds whatever is missing and prints
one line per image with the time it took.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent
CACHE = Path(os.environ.get("RESTATE_OP_CACHE", Path.home() / ".cache" / "restate-op"))
IMAGES_DIR = CACHE / "images"
PODMAN_DIR = CACHE / "podman"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BLOCKED_REGISTRIES = (
    "docker.io",
    "registry-1.docker.io",
    "index.docker.io",
    "quay.io",
    "ghcr.io",
    "gcr.io",
    "k8s.gcr.io",
    "registry.k8s.io",
    "public.ecr.aws",
    "mcr.microsoft.com",
    "registry.fedoraproject.org",
    "registry.access.redhat.com",
    "registry.redhat.io",
    "registry.gitlab.com",
    "docker.elastic.co",
)
RECIPE_VERSION = "1"
"""Bump to rebuild every image after a change to how they are built."""


class ImageBuildError(RuntimeError):
    """An image could not be built; names the image and shows the tool's output."""


def versions() -> dict[str, str]:
    """The pins in e2e/versions.env."""
    pins: dict[str, str] = {}
    for raw in (E2E_DIR / "versions.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key] = value
    return pins


@dataclass(frozen=True)
class Image:
    """One built image: its reference (always ``localhost/...``) and its OCI archive."""

    role: str
    ref: str
    archive: Path


# --------------------------------------------------------------------------------------------
# podman with a private, registry-less configuration


def podman_env() -> dict[str, str]:
    """The environment that points podman/buildah at the private config (written on demand)."""
    PODMAN_DIR.mkdir(parents=True, exist_ok=True)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    # podman lowers its own nproc to 32768 before starting conmon.
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    conf = PODMAN_DIR / "containers.conf"
    conf.write_text(
        "[containers]\n"
        'netns = "none"\n'
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{PODMAN_DIR / "events.log"}"\n'
        'runtime = "runc"\n'
    )
    storage = PODMAN_DIR / "storage.conf"
    storage.write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{PODMAN_DIR / "storage"}"\n'
        f'runroot = "{PODMAN_DIR / "run"}"\n'
    )
    registries = PODMAN_DIR / "registries.conf"
    blocks = "".join(
        f'[[registry]]\nlocation = "{name}"\nblocked = true\n\n' for name in BLOCKED_REGISTRIES
    )
    registries.write_text(
        f'unqualified-search-registries = []\nshort-name-mode = "disabled"\n\n{blocks}'
    )
    env = dict(os.environ)
    env.update(
        CONTAINERS_CONF=str(conf),
        CONTAINERS_STORAGE_CONF=str(storage),
        CONTAINERS_REGISTRIES_CONF=str(registries),
    )
    return env


def _run(image: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(
        list(argv), env=env, capture_output=True, text=True, check=False, timeout=1800
    )
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr)[-4000:]
        raise ImageBuildError(
            f"image {image!r}: {' '.join(argv[:3])} ... failed ({proc.returncode}):\n{out}"
        )
    return proc.stdout


def podman(image: str, *args: str) -> str:
    """Run podman with the private config; raise ImageBuildError naming `image` on failure."""
    return _run(image, ["podman", *args], env=podman_env())


# --------------------------------------------------------------------------------------------
# Input hashing


def _hash(parts: Iterable[bytes]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:16]


def _tree_files(root: Path, rel: str) -> list[Path]:
    return sorted(
        p
        for p in (root / rel).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def operator_inputs(root: Path = REPO_ROOT) -> list[Path]:
    """The files the operator image is built from (exactly what .dockerignore lets in)."""
    return [
        root / "Dockerfile",
        root / "pyproject.toml",
        *_tree_files(root, "restate_op"),
        *_tree_files(root, "states"),
    ]


def _file_parts(root: Path, files: Iterable[Path]) -> list[bytes]:
    parts: list[bytes] = []
    for f in files:
        parts.append(str(f.relative_to(root)).encode())
        parts.append(f.read_bytes())
    return parts


# --------------------------------------------------------------------------------------------
# The images


def _archive(role: str, key: str) -> Path:
    return IMAGES_DIR / f"{role}-{key}.oci.tar"


def _save(role: str, ref: str, key: str) -> Path:
    out = _archive(role, key)
    tmp = out.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    podman(role, "save", "--format", "oci-archive", "-o", str(tmp), ref)
    tmp.rename(out)
    for stale in IMAGES_DIR.glob(f"{role}-*.oci.tar"):
        if stale != out:
            stale.unlink(missing_ok=True)
    return out


def _have(role: str, ref: str, key: str) -> Image | None:
    archive = _archive(role, key)
    return Image(role, ref, archive) if archive.is_file() else None


def _ensure_in_podman(img: Image) -> None:
    """Images built on top of another need it in podman's store (load it from its archive)."""
    env = podman_env()
    exists = subprocess.run(
        ["podman", "image", "exists", img.ref], env=env, capture_output=True, check=False
    )
    if exists.returncode != 0:
        podman(img.role, "load", "-i", str(img.archive))
        # An oci-archive loads under its annotation; make sure the expected name exists.
        podman(img.role, "image", "exists", img.ref)


def build_base(pins: Mapping[str, str]) -> Image:
    """Debian (minbase) with python3, venv and CA certificates, plus /usr/local/bin/python."""
    suite = pins.get("DEBIAN_SUITE", "bookworm")
    key = _hash([RECIPE_VERSION.encode(), suite.encode(), " ".join(BASE_PACKAGES).encode()])
    ref = f"localhost/restate-op/debian-python:{suite}-{key}"
    if (have := _have("base", ref, key)) is not None:
        return have
    with tempfile.TemporaryDirectory(prefix="restate-op-base-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        _run(
            "base",
            [
                "mmdebstrap",
                "--variant=minbase",
                "--quiet",
                f"--include={','.join(BASE_PACKAGES)}",
                "--dpkgopt=path-exclude=/usr/share/man/*",
                "--dpkgopt=path-exclude=/usr/share/doc/*",
                "--dpkgopt=path-exclude=/usr/share/locale/*",
                '--customize-hook=ln -sf /usr/bin/python3 "$1/usr/local/bin/python"',
                '--customize-hook=rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*',
                suite,
                str(rootfs),
            ],
        )
        podman(
            "base",
            "import",
            "--change",
            "ENV LANG=C.UTF-8",
            "--change",
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--change",
            'CMD ["python3"]',
            str(rootfs),
            ref,
        )
    return Image("base", ref, _save("base", ref, key))


def build_operator(base: Image, root: Path = REPO_ROOT) -> Image:
    """The repository's Dockerfile on the local base; rebuilt whenever its inputs change."""
    files = operator_inputs(root)
    key = _hash([RECIPE_VERSION.encode(), base.ref.encode(), *_file_parts(root, files)])
    ref = f"localhost/restate-op:{key}"
    if (have := _have("operator", ref, key)) is not None:
        return have
    _ensure_in_podman(base)
    with tempfile.TemporaryDirectory(prefix="restate-op-ctx-") as tmp:
        ctx = Path(tmp)
        for f in files:
            dest = ctx / f.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
        podman(
            "operator",
            "build",
            "--pull=never",
            # pip fetches the wheels from PyPI (host network; the machine's CA bundle, as
            # PyPI is reached through a TLS-intercepting path here).
            "--network=host",
            f"--volume={CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro",
            f"--build-arg=PYTHON_IMAGE={base.ref}",
            "--layers",
            "-f",
            str(ctx / "Dockerfile"),
            "-t",
            ref,
            str(ctx),
        )
    return Image("operator", ref, _save("operator", ref, key))


def build_restate(base: Image, pins: Mapping[str, str]) -> Image:
    """restate-server and restatectl (from the npm cache) on the base image."""
    version = pins["RESTATE_VERSION"]
    key = _hash([RECIPE_VERSION.encode(), base.ref.encode(), version.encode()])
    ref = f"localhost/restate-op/restate:{version}-{key}"
    if (have := _have("restate", ref, key)) is not None:
        return have
    bindir = Path(
        _run("restate", ["bash", str(E2E_DIR / "install-restate.sh")]).strip().splitlines()[-1]
    )
    _ensure_in_podman(base)
    with tempfile.TemporaryDirectory(prefix="restate-op-ctx-", dir=CACHE) as tmp:
        ctx = Path(tmp)
        for name in ("restate-server", "restatectl"):
            src = (bindir / name).resolve()
            try:
                os.link(src, ctx / name)
            except OSError:
                shutil.copy2(src, ctx / name)
        (ctx / "Containerfile").write_text(
            f"FROM {base.ref}\n"
            "COPY restate-server restatectl /usr/local/bin/\n"
            'ENTRYPOINT ["/usr/local/bin/restate-server"]\n'
        )
        podman(
            "restate",
            "build",
            "--pull=never",
            "--network=none",
            "-f",
            str(ctx / "Containerfile"),
            "-t",
            ref,
            str(ctx),
        )
    return Image("restate", ref, _save("restate", ref, key))


def build_sdk(base: Image, pins: Mapping[str, str]) -> Image:
    """e2e/sdk_service on the base image; rebuilt when the service or a pin changes."""
    src = E2E_DIR / "sdk_service"
    files = [src / "Containerfile", src / "app.py"]
    args = {k: pins[k] for k in ("RESTATE_SDK_PYTHON_VERSION", "HYPERCORN_VERSION")}
    key = _hash(
        [
            RECIPE_VERSION.encode(),
            base.ref.encode(),
            json.dumps(args, sort_keys=True).encode(),
            *(f.read_bytes() for f in files),
        ]
    )
    ref = f"localhost/restate-op/sdk-service:{key}"
    if (have := _have("sdk", ref, key)) is not None:
        return have
    _ensure_in_podman(base)
    with tempfile.TemporaryDirectory(prefix="restate-op-ctx-") as tmp:
        ctx = Path(tmp)
        for f in files:
            shutil.copy2(f, ctx / f.name)
        podman(
            "sdk",
            "build",
            "--pull=never",
            # pip fetches the wheels from PyPI, as for the operator image.
            "--network=host",
            f"--volume={CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro",
            f"--build-arg=BASE_IMAGE={base.ref}",
            *(f"--build-arg={k}={v}" for k, v in args.items()),
            "-f",
            str(ctx / "Containerfile"),
            "-t",
            ref,
            str(ctx),
        )
    return Image("sdk", ref, _save("sdk", ref, key))


def _gomodcache() -> Path:
    out = subprocess.run(
        ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
    ).stdout
    return Path(out.strip())


def _import_rootfs(role: str, rootfs: Path, ref: str, changes: Sequence[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="restate-op-tar-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        _run(role, ["tar", "-C", str(rootfs), "-cf", str(tar), "."])
        args: list[str] = []
        for change in changes:
            args += ["--change", change]
        podman(role, "import", *args, str(tar), ref)


def build_pause(pins: Mapping[str, str]) -> Image:
    """The sandbox image: Kubernetes' pause.c (from the Go module cache), static."""
    kube = pins["KUBERNETES_VERSION"]
    src = _gomodcache() / f"k8s.io/kubernetes@{kube}" / "build/pause/linux/pause.c"
    if not src.is_file():
        _run("pause", ["go", "mod", "download", f"k8s.io/kubernetes@{kube}"])
    key = _hash([RECIPE_VERSION.encode(), src.read_bytes()])
    ref = f"localhost/restate-op/pause:{key}"
    if (have := _have("pause", ref, key)) is not None:
        return have
    with tempfile.TemporaryDirectory(prefix="restate-op-pause-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        rootfs.mkdir()
        _run(
            "pause",
            [
                "gcc",
                "-Os",
                "-static",
                "-DVERSION=restate-op",
                "-o",
                str(rootfs / "pause"),
                str(src),
            ],
        )
        _run("pause", ["strip", str(rootfs / "pause")])
        _import_rootfs("pause", rootfs, ref, ['ENTRYPOINT ["/pause"]', "USER 65535:65535"])
    return Image("pause", ref, _save("pause", ref, key))


def build_busybox() -> Image:
    """Debian's busybox-static with every applet linked in /bin."""
    busybox = Path("/bin/busybox")
    if not busybox.is_file():
        raise ImageBuildError("image 'busybox': /bin/busybox missing (apt busybox-static)")
    key = _hash([RECIPE_VERSION.encode(), busybox.read_bytes()])
    ref = f"localhost/restate-op/busybox:{key}"
    if (have := _have("busybox", ref, key)) is not None:
        return have
    with tempfile.TemporaryDirectory(prefix="restate-op-busybox-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        (rootfs / "bin").mkdir(parents=True)
        for d in ("tmp", "etc", "proc", "sys", "dev"):
            (rootfs / d).mkdir()
        (rootfs / "tmp").chmod(0o1777)
        shutil.copy2(busybox, rootfs / "bin" / "busybox")
        applets = _run("busybox", [str(busybox), "--list"]).split()
        for applet in applets:
            if applet != "busybox":
                (rootfs / "bin" / applet).symlink_to("busybox")
        (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
        (rootfs / "etc" / "group").write_text("root:x:0:\n")
        _import_rootfs("busybox", rootfs, ref, ['CMD ["/bin/sh"]', "ENV PATH=/bin"])
    return Image("busybox", ref, _save("busybox", ref, key))


@dataclass(frozen=True)
class ImageSet:
    """Every image the real node needs."""

    base: Image
    operator: Image
    restate: Image
    pause: Image
    busybox: Image
    sdk: Image

    def all(self) -> list[Image]:
        """The images to load into the node's containerd."""
        return [self.operator, self.restate, self.pause, self.busybox, self.sdk]


def build_all(timings: dict[str, float] | None = None) -> ImageSet:
    """Build (or find in the cache) every image; `timings` gets seconds per image."""
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    pins = versions()
    times = timings if timings is not None else {}

    def timed(name: str, fn: object) -> Image:
        t = time.monotonic()
        assert callable(fn)
        img = fn()
        assert isinstance(img, Image)
        times[name] = time.monotonic() - t
        return img

    base = timed("base", lambda: build_base(pins))
    operator = timed("operator", lambda: build_operator(base))
    restate = timed("restate", lambda: build_restate(base, pins))
    pause = timed("pause", lambda: build_pause(pins))
    busybox = timed("busybox", build_busybox)
    sdk = timed("sdk", lambda: build_sdk(base, pins))
    return ImageSet(base, operator, restate, pause, busybox, sdk)


def main(argv: list[str] | None = None) -> int:
    """`python -m e2e.images build`: build the missing images, print refs and times."""
    parser = argparse.ArgumentParser(description="Build the real node's images (never pulls).")
    parser.add_argument("command", choices=["build", "list"])
    args = parser.parse_args(argv)
    timings: dict[str, float] = {}
    try:
        images = build_all(timings)
    except ImageBuildError as err:
        print(f"[images] FAILED: {err}", file=sys.stderr)
        return 1
    for img in [images.base, *images.all()]:
        print(
            f"[images] {img.role:9s} {timings.get(img.role, 0.0):6.1f} s  {img.ref}",
            file=sys.stderr,
        )
        if args.command == "list":
            print(json.dumps({"role": img.role, "ref": img.ref, "archive": str(img.archive)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
