"""`kubectl virtstack`: every action against the control plane, the object changed as asked and, where the
operator carries the action out already, its effect; clear output and exit codes."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_for

from .test_vm_lifecycle import status_of, vm_with, wait_state

pytestmark = pytest.mark.usefixtures("operator")
SNAPSHOT = "vssnapshots.virtstack.io"


def plugin(cluster: Cluster, namespace: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "virtstack.plugin", "-n", namespace, *args],
        env={**os.environ, "KUBECONFIG": cluster.kubeconfig},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def spec_of(cluster: Cluster, namespace: str, name: str, kind: str = "vsvm") -> dict:
    return cluster.get(kind, name, namespace)["spec"]


def keypair(cluster: Cluster, namespace: str, name: str) -> str:
    cluster.apply(
        {"apiVersion": "virtstack.io/v1alpha1", "kind": "SSHKeyPair", "metadata": {"name": name},
         "spec": {"keyType": "ed25519"}},
        namespace=namespace,
    )  # fmt: skip
    return wait_for(
        lambda: (cluster.get("sshkey", name, namespace) or {}).get("status", {}).get("publicKey"), 60, f"{name} key"
    )


def managers(cluster: Cluster, namespace: str, resource: str) -> set[str]:
    shown = cluster.kubectl("get", resource, "-n", namespace, "--show-managed-fields", "-o", "json").stdout
    return {entry["manager"] for entry in json.loads(shown)["metadata"]["managedFields"]}


def test_list_and_power_actions(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("web"), namespace=namespace)
    running = wait_state(cluster, namespace, "web", "Running")

    listing = ok(plugin(cluster, namespace, "list")).splitlines()
    assert listing[0].split() == ["NAME", "STATE", "HOST", "ZONE", "IP", "INSTANCE", "READY", "AGE"]
    row = listing[1].split()
    assert row[:4] == ["web", "Running", running["host"], running["zone"]]
    assert row[4] == ",".join(running["ipAddresses"]) and row[5] == running["instanceName"] and row[6] == "True"

    said = ok(plugin(cluster, namespace, "reboot", "web"))
    assert said == "virtualmachines.virtstack.io/web reboot requested (spec.rebootRequestedAt)"
    asked = spec_of(cluster, namespace, "web")["rebootRequestedAt"]
    wait_for(lambda: status_of(cluster, namespace, "web").get("lastRebootedAt") == asked, 60, "the reboot done")
    ok(plugin(cluster, namespace, "reboot", "web"))
    again = spec_of(cluster, namespace, "web")["rebootRequestedAt"]
    assert again > asked, "asking again asks again, even within the same second"

    ok(plugin(cluster, namespace, "stop", "web"))
    assert spec_of(cluster, namespace, "web")["state"] == "Stopped"
    wait_state(cluster, namespace, "web", "Stopped")
    ok(plugin(cluster, namespace, "start", "web"))
    assert spec_of(cluster, namespace, "web")["state"] == "Running"
    wait_state(cluster, namespace, "web", "Running")
    assert "kubectl-virtstack" in managers(cluster, namespace, "vsvm/web"), "its field manager owns what it set"


def test_keys_and_iso(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("web"), namespace=namespace)
    keys = {name: keypair(cluster, namespace, name) for name in ("alice", "bob")}
    ok(plugin(cluster, namespace, "reset-keys", "web", "alice", "bob"))
    assert spec_of(cluster, namespace, "web")["sshKeyPairs"] == ["alice", "bob"]

    def keys_delivered() -> bool:
        secret = cluster.get("secret", "web-ssh-keys", namespace) or {}  # KubeVirt accessCredentials read it
        data = " ".join(base64.b64decode(v).decode() for v in (secret.get("data") or {}).values())
        return all(key.split()[1] in data for key in keys.values())

    wait_for(keys_delivered, 60, "both public keys in the VM's key Secret (KubeVirt accessCredentials)")

    ok(plugin(cluster, namespace, "attach-iso", "web", "tools"))
    assert spec_of(cluster, namespace, "web")["attachedISO"] == "tools"
    wait_for(
        lambda: (
            "tools (spec.attachedISO) does not exist"
            in (condition_of(cluster.get("vsvm", "web", namespace), "Ready") or {}).get("message", "")
        ),
        30,
        "the VM says the ISO it names is missing",
    )
    ok(plugin(cluster, namespace, "detach-iso", "web"))
    assert "attachedISO" not in spec_of(cluster, namespace, "web"), "merge patch null removes the field"


def test_reinstall_and_migrate(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("web"), namespace=namespace)
    wait_state(cluster, namespace, "web", "Running")
    ok(plugin(cluster, namespace, "reinstall", "web"))
    asked = spec_of(cluster, namespace, "web")["reinstallRequestedAt"]
    wait_for(lambda: status_of(cluster, namespace, "web").get("lastReinstalledAt") == asked, 90, "reinstalled")
    wait_state(cluster, namespace, "web", "Running")

    target = "host-b" if status_of(cluster, namespace, "web")["host"] != "host-b" else "host-a"
    ok(plugin(cluster, namespace, "migrate", "web", "--host", target))
    migration = spec_of(cluster, namespace, "web")["migration"]
    assert migration["host"] == target and migration["requestedAt"]
    wait_for(
        lambda: (
            (s := status_of(cluster, namespace, "web")).get("lastMigratedAt") == migration["requestedAt"]
            and s.get("host") == target
        ),
        90,
        f"migrated live to {target}",
    )
    ok(plugin(cluster, namespace, "migrate", "web"))
    assert "host" not in spec_of(cluster, namespace, "web")["migration"], "no --host: the scheduler chooses"


def test_snapshot_and_revert(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("web"), namespace=namespace)
    wait_state(cluster, namespace, "web", "Running")
    said = ok(plugin(cluster, namespace, "snapshot", "web", "before-upgrade", "--description", "pre 2.0"))
    assert said == "vssnapshots.virtstack.io/before-upgrade created for virtualmachine web"
    snapshot = spec_of(cluster, namespace, "before-upgrade", SNAPSHOT)
    assert snapshot == {"virtualMachine": "web", "description": "pre 2.0", "memory": False, "quiesce": False}
    wait_for(
        lambda: (cluster.get(SNAPSHOT, "before-upgrade", namespace) or {}).get("status", {}).get("readyToUse"),
        90,
        "the snapshot taken (KubeVirt VirtualMachineSnapshot ready)",
    )
    said = ok(plugin(cluster, namespace, "revert", "before-upgrade"))
    assert said.endswith("revert of virtualmachine web requested (spec.revertRequestedAt)")
    asked = spec_of(cluster, namespace, "before-upgrade", SNAPSHOT)["revertRequestedAt"]
    wait_for(
        lambda: cluster.get(SNAPSHOT, "before-upgrade", namespace)["status"].get("lastRevertedAt") == asked,
        120,
        "the VM reverted to the snapshot",
    )


def test_errors_say_what_the_api_server_said_and_exit_non_zero(cluster: Cluster, namespace: str) -> None:
    missing = plugin(cluster, namespace, "stop", "ghost")
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.strip() == 'Error from server: virtualmachines.virtstack.io "ghost" not found'

    cluster.apply(vm_with("web", state="Stopped"), namespace=namespace)
    refused = plugin(cluster, namespace, "snapshot", "web", "Not_A_Name")
    assert refused.returncode == 1 and "Not_A_Name" in refused.stderr and "Invalid value" in refused.stderr

    usage = plugin(cluster, namespace, "reboot")
    assert usage.returncode == 2 and "the following arguments are required: vm" in usage.stderr
    unknown = plugin(cluster, namespace, "resize", "web")
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr

    assert (
        ok(plugin(cluster, f"{namespace}-empty", "list"))
        == f"No virtual machines found in {namespace}-empty namespace."
    )


def test_kubectl_finds_the_plugin_on_path(cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    """What `pip install virtstack` gives: an executable kubectl-virtstack on PATH, run as `kubectl virtstack`."""
    executable = tmp_path / "kubectl-virtstack"
    executable.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m virtstack.plugin "$@"\n')
    executable.chmod(0o755)
    cluster.apply(vm_with("web", state="Stopped"), namespace=namespace)
    wait_state(cluster, namespace, "web", "Stopped")
    env = {**os.environ, "KUBECONFIG": cluster.kubeconfig, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    kubectl = cluster.plane.binaries["kubectl"] if cluster.plane else "kubectl"
    found = subprocess.run(
        [str(kubectl), "plugin", "list"], env=env, capture_output=True, text=True, timeout=30, check=False
    )
    assert str(executable) in found.stdout
    result = subprocess.run(
        [str(kubectl), "virtstack", "-n", namespace, "list", "-A"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["NAMESPACE", "NAME", "STATE"]
    assert any(row.split()[:3] == [namespace, "web", "Stopped"] for row in rows)
