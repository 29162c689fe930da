"""GitOps readiness: manifests applied as Argo CD applies them show no drift once reconciled, and every kind
reports Ready for the generation it saw, which kstatus, `kubectl wait`, Flux and Argo CD read."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_for

from .test_walking_skeleton import vsvm

pytestmark = [pytest.mark.usefixtures("operator"), pytest.mark.simulator]
REPO = Path(__file__).resolve().parents[2]
MANAGER = "argocd-controller"  # the field manager Argo CD's server-side apply uses
API = "virtstack.io/v1alpha1"


def manifests(profile: str, vm_state: str) -> list[dict]:
    vm = vsvm("web-1", state=vm_state)
    vm["spec"].update(sshKeyPairs=["deploy"], affinityGroups=["web"])
    return [
        {"apiVersion": API, "kind": "GPUProfile", "metadata": {"name": profile},
         "spec": {"type": "VGPU", "resourceName": "nvidia.com/GRID_K240Q", "vgpuType": "GRID K240Q"}},
        {"apiVersion": API, "kind": "SSHKeyPair", "metadata": {"name": "deploy"}, "spec": {"keyType": "ed25519"}},
        {"apiVersion": API, "kind": "AffinityGroup", "metadata": {"name": "web"},
         "spec": {"type": "HostAntiAffinity", "enforcement": "Required"}},
        vm,
        {"apiVersion": API, "kind": "VMSnapshot", "metadata": {"name": "web-1-base"},
         "spec": {"virtualMachine": "web-1"}},
    ]  # fmt: skip


def write(path: Path, docs: list[dict]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def resource(doc: dict) -> str:
    plural = {"VMSnapshot": "vssnapshots"}.get(doc["kind"], doc["kind"].lower() + "s")
    return f"{plural}.virtstack.io/{doc['metadata']['name']}"


def live(cluster: Cluster, namespace: str, doc: dict) -> dict:
    scope = [] if doc["kind"] == "GPUProfile" else ["-n", namespace]
    shown = cluster.kubectl("get", resource(doc), *scope, "--show-managed-fields", "-o", "json").stdout
    return json.loads(shown)


def reconciled(cluster: Cluster, namespace: str, doc: dict) -> bool:
    """kstatus' Current: the status speaks of the latest generation, and Ready is True."""
    obj = live(cluster, namespace, doc)
    status = obj.get("status") or {}
    ready = condition_of(obj, "Ready") or {}
    return status.get("observedGeneration") == obj["metadata"]["generation"] and ready.get("status") == "True"


def diff(cluster: Cluster, namespace: str, path: Path) -> subprocess.CompletedProcess:
    """What Argo CD's server-side diff sees: a server-side apply dry run of the manifests against the live objects."""
    return cluster.kubectl("diff", "--server-side", f"--field-manager={MANAGER}", "-n", namespace, "-f", str(path),
                           check=False)  # fmt: skip


def apply(cluster: Cluster, namespace: str, path: Path) -> None:
    cluster.kubectl("apply", "--server-side", f"--field-manager={MANAGER}", "-n", namespace, "-f", str(path))


def test_reconciled_objects_show_no_drift_and_report_ready(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    profile = f"gitops-{namespace}"
    docs = manifests(profile, "Running")
    path = write(tmp_path / "app.yaml", docs)
    try:
        apply(cluster, namespace, path)
        for doc in docs:
            wait_for(lambda d=doc: reconciled(cluster, namespace, d), 120, f"{doc['kind']} Ready for its generation")
        cluster.kubectl("wait", "--for=condition=Ready", "--timeout=10s", "-n", namespace,
                        *(resource(d) for d in docs[1:]))  # fmt: skip

        result = diff(cluster, namespace, path)
        assert result.returncode == 0 and result.stdout == "", f"drift after reconcile:\n{result.stdout}"
        for doc in docs:
            obj = live(cluster, namespace, doc)
            meta = obj["metadata"]
            kopf_marks = [k for k in meta.get("annotations", {}) if "kopf" in k]
            assert not kopf_marks, f"{doc['kind']} carries kopf's bookkeeping: {kopf_marks}"
            assert not [f for f in meta.get("finalizers", []) if "kopf" in f], meta["finalizers"]
            writers = {(m["manager"], m.get("subresource", "")) for m in meta["managedFields"]}
            assert (MANAGER, "") in writers
            assert not [w for w in writers if w[0] != MANAGER and w[1] != "status" and w[0] != "virtstack"], (
                f"only the user's manager writes {doc['kind']}'s spec: {writers}"
            )
            assert argo_health(obj) in ("Healthy", None), f"Argo CD sees {doc['kind']} as {argo_health(obj)}"

        # A change in Git is drift until applied, and is reconciled to Ready at the new generation.
        changed = write(tmp_path / "changed.yaml", manifests(profile, "Stopped"))
        result = diff(cluster, namespace, changed)
        assert result.returncode == 1 and "-  state: Running" in result.stdout and "+  state: Stopped" in result.stdout
        apply(cluster, namespace, changed)
        vm = docs[3]
        wait_for(lambda: reconciled(cluster, namespace, vm), 60, "the VM Ready at its new generation")
        assert live(cluster, namespace, vm)["status"]["state"] == "Stopped"
        result = diff(cluster, namespace, changed)
        assert result.returncode == 0 and result.stdout == "", result.stdout
    finally:
        cluster.kubectl("delete", "gpuprofile", profile, "--ignore-not-found")


def argo_health(obj: dict) -> str | None:
    """The docs' Argo CD health check run on the live object (None without the dev dependency lupa)."""
    try:
        from lupa.lua51 import LuaRuntime
    except ImportError:
        return None
    lua = LuaRuntime()
    script = (REPO / "docs" / "argocd" / f"virtstack.io_{obj['kind']}.lua").read_text()
    return lua.eval(f"function(obj) {script} end")(lua.table_from(obj, recursive=True))["status"]
