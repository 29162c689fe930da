"""Build the control-plane binaries from the Go module proxy, once, cached by version.

kube-apiserver and friends cannot be `go install`ed: k8s.io/kubernetes requires its
staging modules at v0.0.0 with `replace => ./staging/...`, so a throw-away wrapper
module replaces each staging module with its published tag. etcd, kwok and helm
build from wrapper modules or `go install` directly.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .cache import cache_root
from .errors import TestbedError

KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.13"
KWOK_VERSION = "v0.7.0"
HELM_VERSION = "v3.22.0"

KUBE_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")


@dataclass(frozen=True)
class Binaries:
    """Paths of every binary the local control plane runs."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kubectl: Path
    kwok: Path
    helm: Path

    def all(self) -> list[Path]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


def expected_binaries(root: Path | None = None) -> Binaries:
    bin_root = (root or cache_root()) / "bin"
    kube = bin_root / f"kubernetes-{KUBERNETES_VERSION}"
    return Binaries(
        etcd=bin_root / f"etcd-{ETCD_VERSION}" / "etcd",
        kube_apiserver=kube / "kube-apiserver",
        kube_controller_manager=kube / "kube-controller-manager",
        kube_scheduler=kube / "kube-scheduler",
        kubectl=kube / "kubectl",
        kwok=bin_root / f"kwok-{KWOK_VERSION}" / "kwok",
        helm=bin_root / f"helm-{HELM_VERSION}" / "helm",
    )


def ensure_binaries(log=print) -> Binaries:
    """Build whatever binary is missing; a warm cache returns at once."""
    binaries = expected_binaries()
    missing = [path for path in binaries.all() if not path.exists()]
    if not missing:
        return binaries
    go = _require_go()
    builder = _GoBuilder(go, cache_root(), log)
    if any(p.name in KUBE_COMMANDS for p in missing):
        builder.build_kubernetes(binaries.kubectl.parent)
    if not binaries.etcd.exists():
        builder.build_etcd(binaries.etcd.parent)
    if not binaries.kwok.exists():
        builder.go_install(f"sigs.k8s.io/kwok/cmd/kwok@{KWOK_VERSION}", binaries.kwok.parent, "kwok")
    if not binaries.helm.exists():
        builder.go_install(f"helm.sh/helm/v3/cmd/helm@{HELM_VERSION}", binaries.helm.parent, "helm")
    still_missing = [str(p) for p in binaries.all() if not p.exists()]
    if still_missing:
        raise TestbedError(
            f"build finished but binaries are missing: {', '.join(still_missing)}",
            f"remove {cache_root() / 'bin'} and run 'testbed build' again",
        )
    return binaries


def _require_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise TestbedError("Go is not installed", "install Go >= 1.25 (apt-get install golang or the Go tarball)")
    version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    match = re.match(r"go1\.(\d+)", version)
    if match is None or int(match.group(1)) < 25:
        raise TestbedError(f"Go {version or 'of unknown version'} is too old", "install Go >= 1.25")
    return go


class _GoBuilder:
    def __init__(self, go: str, root: Path, log) -> None:
        self.go = go
        self.root = root
        self.log = log
        self.logs = root / "build-logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "GOMODCACHE": str(root / "go" / "mod"),
            "GOCACHE": str(root / "go" / "build"),
            "GOPATH": str(root / "go" / "path"),
            "GOTOOLCHAIN": "local",
            "CGO_ENABLED": "0",
        }

    def run(self, args: list[str], cwd: Path, what: str, extra_env: dict[str, str] | None = None) -> str:
        log_file = self.logs / f"{what}.log"
        with log_file.open("a") as out:
            out.write(f"$ {' '.join(args)}\n")
            out.flush()
            env = {**self.env, **(extra_env or {})}
            result = subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=out, text=True, check=False)
            out.write(result.stdout)
        if result.returncode != 0:
            raise TestbedError(
                f"building {what} failed at '{' '.join(args[:3])}…' (log: {log_file})",
                "check the Go module proxy is reachable (GOPROXY) and the log; then run 'testbed build' again",
            )
        return result.stdout

    def wrapper_module(self, name: str) -> Path:
        work = self.root / "go" / "wrappers" / name
        if work.exists():
            shutil.rmtree(work)
        work.mkdir(parents=True)
        self.run([self.go, "mod", "init", f"example.invalid/{name}"], work, name)
        return work

    def build_kubernetes(self, out_dir: Path) -> None:
        started = time.monotonic()
        self.log(f"building Kubernetes {KUBERNETES_VERSION} (cold: about 5 minutes)")
        work = self.wrapper_module(f"kubernetes-{KUBERNETES_VERSION}")
        module = f"k8s.io/kubernetes@{KUBERNETES_VERSION}"
        info = json.loads(self.run([self.go, "mod", "download", "-json", module], work, "kubernetes"))
        staging_version = "v0." + KUBERNETES_VERSION.removeprefix("v1.")
        for line in Path(info["GoMod"]).read_text().splitlines():
            match = re.match(r"\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", line)
            if match:
                dep = match.group(1)
                self.run([self.go, "mod", "edit", f"-replace={dep}={dep}@{staging_version}"], work, "kubernetes")
        self.run([self.go, "mod", "edit", f"-require={module}"], work, "kubernetes")
        imports = "\n".join(f'\t_ "k8s.io/kubernetes/cmd/{cmd}"' for cmd in KUBE_COMMANDS)
        (work / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n")
        self.run([self.go, "get", module], work, "kubernetes")
        self.run([self.go, "mod", "tidy", "-e"], work, "kubernetes")
        out_dir.mkdir(parents=True, exist_ok=True)
        stamps = []
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            minor = KUBERNETES_VERSION.split(".")[1]
            stamps += [
                f"-X {package}.gitVersion={KUBERNETES_VERSION}",
                f"-X {package}.gitMajor=1",
                f"-X {package}.gitMinor={minor}",
            ]
        ldflags = " ".join(["-s", "-w", *stamps])
        for cmd in KUBE_COMMANDS:
            self.log(f"  go build {cmd}")
            target = out_dir / cmd
            self.run(
                [
                    self.go,
                    "build",
                    "-trimpath",
                    "-ldflags",
                    ldflags,
                    "-o",
                    f"{target}.tmp",
                    f"k8s.io/kubernetes/cmd/{cmd}",
                ],
                work,
                "kubernetes",
            )
            os.replace(f"{target}.tmp", target)
        self.log(f"built Kubernetes in {time.monotonic() - started:.0f} s")

    def build_etcd(self, out_dir: Path) -> None:
        started = time.monotonic()
        self.log(f"building etcd {ETCD_VERSION}")
        work = self.wrapper_module(f"etcd-{ETCD_VERSION}")
        self.run([self.go, "get", f"go.etcd.io/etcd/server/v3@{ETCD_VERSION}"], work, "etcd")
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / "etcd"
        self.run(
            [self.go, "build", "-trimpath", "-ldflags", "-s -w", "-o", f"{target}.tmp", "go.etcd.io/etcd/server/v3"],
            work,
            "etcd",
        )
        os.replace(f"{target}.tmp", target)
        self.log(f"built etcd in {time.monotonic() - started:.0f} s")

    def go_install(self, package: str, out_dir: Path, what: str) -> None:
        started = time.monotonic()
        self.log(f"building {package}")
        out_dir.mkdir(parents=True, exist_ok=True)
        self.run(
            [self.go, "install", "-trimpath", "-ldflags", "-s -w", package], out_dir, what, {"GOBIN": str(out_dir)}
        )
        self.log(f"built {what} in {time.monotonic() - started:.0f} s")
