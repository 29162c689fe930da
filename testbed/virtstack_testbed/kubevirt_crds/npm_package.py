"""Fetch the pinned `@kubevirt-ui-ext/kubevirt-api` npm package: the only KubeVirt schema
source reachable here (KubeVirt's Go modules are refused by the proxy)."""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from ..cache import cache_root
from ..errors import TestbedError

PACKAGE_NAME = "@kubevirt-ui-ext/kubevirt-api"
PACKAGE_VERSION = "1.7.0"
# `npm view @kubevirt-ui-ext/kubevirt-api@1.7.0 dist.integrity`
PACKAGE_INTEGRITY = "sha512-FG/kkL5fR3relVUoWimvqYqiSMuW95L4hor8HW7TVUPbUnxgvkh9L1RxNEMN6cgnQ+I7LlrPZhsSSUxt8+vd/g=="


def ensure_package() -> Path:
    """Path of the extracted package directory; downloads and verifies it once."""
    npm_cache = cache_root() / "npm"
    target = npm_cache / f"kubevirt-api-{PACKAGE_VERSION}"
    if (target / "package.json").exists():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise TestbedError(
            f"npm is needed to fetch {PACKAGE_NAME}@{PACKAGE_VERSION} but is not on PATH",
            "install Node.js with npm (e.g. `apt-get install npm`)",
        )
    npm_cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=npm_cache) as scratch:
        tarball = _npm_pack(npm, Path(scratch))
        _verify_integrity(tarball)
        with tarfile.open(tarball) as archive:
            archive.extractall(scratch, filter="data")
        try:
            (Path(scratch) / "package").rename(target)
        except OSError:
            if not (target / "package.json").exists():
                raise  # not a concurrent run that got there first
    return target


def _npm_pack(npm: str, directory: Path) -> Path:
    spec = f"{PACKAGE_NAME}@{PACKAGE_VERSION}"
    result = subprocess.run([npm, "pack", spec, "--silent"], cwd=directory, capture_output=True, text=True)
    tarballs = list(directory.glob("*.tgz"))
    if result.returncode != 0 or len(tarballs) != 1:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise TestbedError(
            f"`npm pack {spec}` failed: {last_line}",
            "check that the npm registry is reachable (npm config get registry)",
        )
    return tarballs[0]


def _verify_integrity(tarball: Path) -> None:
    algorithm, expected = PACKAGE_INTEGRITY.split("-", 1)
    actual = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if actual != expected:
        raise TestbedError(
            f"{tarball.name} does not match the pinned {algorithm} integrity of {PACKAGE_NAME}@{PACKAGE_VERSION}",
            "the registry served different bytes; do not trust it, check the npm registry setting",
        )
