"""SSH key pairs: registered keys are checked and fingerprinted; generated private keys live only in their Secret."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, guest_agent, wait_condition, wait_for

from .test_reconcile_writes import settled

API = "virtstack.io/v1alpha1"


def keypair(name: str, **spec: str) -> dict:
    return {"apiVersion": API, "kind": "SSHKeyPair", "metadata": {"name": name}, "spec": spec}


def ready_keypair(cluster: Cluster, namespace: str, name: str) -> dict:
    def ready() -> dict | None:
        obj = cluster.get("sshkey", name, namespace)
        ready_condition = condition_of(obj, "Ready")
        return obj if ready_condition and obj["status"].get("observedGeneration") else None

    return wait_for(ready, 60, f"sshkey {name} reconciled")


def ssh_keygen(public_line: str, digest: str, tmp_path: Path) -> str:
    path = tmp_path / f"{digest}.pub"
    path.write_text(public_line + "\n")
    return subprocess.run(
        ["ssh-keygen", "-l", "-E", digest, "-f", str(path)], capture_output=True, text=True, check=True
    ).stdout.split()[1]


@pytest.mark.usefixtures("virtstack_crds")
@pytest.mark.parametrize("key_type", ["ed25519", "rsa"])
def test_generated_private_key_is_only_in_its_secret(
    cluster: Cluster, namespace: str, operator, key_type: str, tmp_path: Path
) -> None:
    cluster.apply(keypair("deploy", keyType=key_type), namespace=namespace)
    obj = ready_keypair(cluster, namespace, "deploy")
    status = obj["status"]
    assert condition_of(obj, "Ready")["reason"] == "Generated"
    secret = cluster.get("secret", status["privateKeySecret"], namespace)
    file = "id_ed25519" if key_type == "ed25519" else "id_rsa"
    private = base64.b64decode(secret["data"][file]).decode()
    assert "BEGIN OPENSSH PRIVATE KEY" in private
    assert secret["immutable"] is True and secret["metadata"]["ownerReferences"][0]["name"] == "deploy"
    assert base64.b64decode(secret["data"][f"{file}.pub"]).decode().strip() == status["publicKey"]

    body = private.splitlines()[1]  # a line of the key itself
    events = json.dumps(cluster.list("events", namespace)) + json.dumps(cluster.list("events.events.k8s.io", namespace))
    for where, text in (
        ("status", json.dumps(obj)),
        ("events", events),
        ("operator log", operator.log_path.read_text()),
    ):
        assert body not in text and secret["data"][file] not in text, f"the private key leaked into {where}"

    if shutil.which("ssh-keygen"):
        assert status["fingerprintSHA256"] == ssh_keygen(status["publicKey"], "sha256", tmp_path)
        assert "MD5:" + status["fingerprintMD5"] == ssh_keygen(status["publicKey"], "md5", tmp_path)

    if cluster.plane is not None:  # the local plane's audit log counts the operator's writes
        cluster.kubectl("annotate", "sshkey", "deploy", "-n", namespace, "example.com/touched=yes")
        creates = [w for w in settled(cluster, namespace) if w.verb == "create" and w.resource == "secrets"]
        assert len(creates) == 1, f"the key pair is generated once: {creates}"


@pytest.mark.usefixtures("virtstack_crds", "operator")
def test_registered_key_is_fingerprinted_and_a_bad_one_explained(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    line = (Path(__file__).resolve().parents[2] / "examples" / "sshkeypair-registered.yaml").read_text()
    public = next(row.split("publicKey: ", 1)[1] for row in line.splitlines() if "publicKey:" in row)
    cluster.apply(keypair("alice", publicKey=public), namespace=namespace)
    status = ready_keypair(cluster, namespace, "alice")["status"]
    assert status["publicKey"] == " ".join(public.split()[:2]) and "privateKeySecret" not in status
    if shutil.which("ssh-keygen"):
        assert status["fingerprintSHA256"] == ssh_keygen(public, "sha256", tmp_path)
        assert "MD5:" + status["fingerprintMD5"] == ssh_keygen(public, "md5", tmp_path)

    truncated = public.split()[0] + " " + public.split()[1][:-8]
    cluster.apply(keypair("broken", publicKey=truncated), namespace=namespace)
    ready = wait_for(
        lambda: condition_of(cluster.get("sshkey", "broken", namespace), "Ready"), 60, "broken's condition"
    )
    assert (ready["status"], ready["reason"]) == ("False", "InvalidPublicKey")
    assert "is not a valid ssh-ed25519 key" in ready["message"]


@pytest.mark.usefixtures("virtstack_crds", "operator")
def test_vm_keys_wait_for_their_key_pairs_and_changes_wait_for_a_start(cluster: Cluster, namespace: str) -> None:
    vm = {
        "apiVersion": API,
        "kind": "VirtualMachine",
        "metadata": {"name": "keyed"},
        "spec": {"sshKeyPairs": ["ops"], "source": {"template": {"image": "quay.io/containerdisks/fedora:41"}}},
    }
    cluster.apply(vm, namespace=namespace)
    waiting = wait_condition(
        cluster, "vsvm", "keyed", namespace, "Ready", 30, "keyed waits for its key pair", reason="SSHKeyPairNotReady"
    )
    assert "SSHKeyPair ops (spec.sshKeyPairs) does not exist" in waiting["message"]
    assert cluster.get("virtualmachines.kubevirt.io", "keyed", namespace) is None

    cluster.apply(keypair("ops"), keypair("extra"), namespace=namespace)
    wait_for(
        lambda: (cluster.get("vsvm", "keyed", namespace) or {}).get("status", {}).get("state") == "Running",
        60,
        "keyed Running once the key pair exists",
    )
    public = ready_keypair(cluster, namespace, "ops")["status"]["publicKey"]
    secret = cluster.get("secret", "keyed-ssh-keys", namespace)
    assert base64.b64decode(secret["data"]["ops"]).decode().strip() == public
    credentials = cluster.get("virtualmachines.kubevirt.io", "keyed", namespace)["spec"]["template"]["spec"][
        "accessCredentials"
    ]
    assert credentials[0]["sshPublicKey"]["source"]["secret"]["secretName"] == "keyed-ssh-keys"
    assert condition_of(cluster.get("vsvm", "keyed", namespace), "SSHKeys")["status"] == "True"

    ready_keypair(cluster, namespace, "extra")
    vm["spec"]["sshKeyPairs"] = ["ops", "extra"]
    cluster.apply(vm, namespace=namespace)
    pending = wait_condition(
        cluster, "vsvm", "keyed", namespace, "SSHKeys", 30, "the new key waits for a start", status="False"
    )
    assert pending["reason"] == "PendingRestart"
    assert "extra" in cluster.get("secret", "keyed-ssh-keys", namespace)["data"]


def ssh_keys_condition(cluster: Cluster, namespace: str, name: str, reason: str) -> dict:
    return wait_condition(cluster, "vsvm", name, namespace, "SSHKeys", 30, f"SSHKeys {reason}", reason=reason)


@pytest.mark.simulator
@pytest.mark.usefixtures("virtstack_crds", "operator")
def test_keys_for_guest_agent_users_change_live_on_a_running_vm(cluster: Cluster, namespace: str) -> None:
    cluster.apply(keypair("ops"), keypair("extra"), namespace=namespace)
    ready_keypair(cluster, namespace, "extra")
    vm = {
        "apiVersion": API,
        "kind": "VirtualMachine",
        "metadata": {"name": "live-keys"},
        "spec": {
            "sshKeyPairs": ["ops"],
            "sshKeyGuestAgentUsers": ["fedora"],
            "source": {"template": {"image": "quay.io/containerdisks/fedora:41"}},
        },
    }
    cluster.apply(vm, namespace=namespace)
    wait_for(
        lambda: (cluster.get("vsvm", "live-keys", namespace) or {}).get("status", {}).get("state") == "Running",
        60,
        "live-keys Running",
    )
    waiting = ssh_keys_condition(cluster, namespace, "live-keys", "WaitingForGuestAgent")
    assert waiting["status"] == "False" and "QEMU guest agent" in waiting["message"]
    started = cluster.get("virtualmachineinstances.kubevirt.io", "live-keys", namespace)
    method = started["spec"]["accessCredentials"][0]["sshPublicKey"]["propagationMethod"]
    assert method == {"qemuGuestAgent": {"users": ["fedora"]}}

    guest_agent(cluster, namespace, "live-keys", True)
    assert ssh_keys_condition(cluster, namespace, "live-keys", "GuestAgent")["status"] == "True"

    vm["spec"]["sshKeyPairs"] = ["ops", "extra"]
    cluster.apply(vm, namespace=namespace)
    wait_for(
        lambda: "extra" in cluster.get("secret", "live-keys-ssh-keys", namespace)["data"],
        30,
        "the new key in the VM's key Secret, which the guest agent reads",
    )
    settled(cluster, namespace)
    settled_vm = cluster.get("vsvm", "live-keys", namespace)
    keys = condition_of(settled_vm, "SSHKeys")
    assert (keys["status"], keys["reason"]) == ("True", "GuestAgent"), "applied live, not at the next start"
    assert (condition_of(settled_vm, "RestartRequired") or {}).get("status") != "True"
    now = cluster.get("virtualmachineinstances.kubevirt.io", "live-keys", namespace)
    assert now["metadata"]["uid"] == started["metadata"]["uid"], "the same guest, not restarted"
