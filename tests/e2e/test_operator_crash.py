"""SIGKILL the operator in the middle of its work: after a restart everything converges, nothing doubles."""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import yaml
from virtstack.builders.kubevirt_vm import root_disk_name
from virtstack_testbed.testing import Cluster, wait_for

from .test_walking_skeleton import vsvm

COUNT = 20
LONG_PROFILE = "VIRTSTACK_FAULTS_LONG"  # set: more VMs and more kills (on demand, not in CI)
GOLDEN_PVC = {
    "apiVersion": "v1",
    "kind": "PersistentVolumeClaim",
    "metadata": {"name": "golden-image"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
}


def kubevirt_vms_by_owner(cluster: Cluster, namespace: str) -> Counter:
    return Counter(
        ref["uid"]
        for vm in cluster.list("virtualmachines.kubevirt.io", namespace)
        for ref in vm["metadata"].get("ownerReferences", [])
    )


def test_sigkill_while_creating_and_deleting_converges_without_duplicates(
    cluster: Cluster, namespace: str, operator
) -> None:
    names = [f"crash-{i:02d}" for i in range(COUNT)]
    cluster.kubectl(
        "apply",
        "--server-side",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input_text=yaml.safe_dump_all([vsvm(name) for name in names]),
    )
    wait_for(
        lambda: len(cluster.list("virtualmachines.kubevirt.io", namespace)) >= COUNT // 4,
        60,
        "the operator part way through",
    )
    operator.kill()
    operator.start()

    def all_running() -> bool:
        vms = cluster.list("vsvm", namespace)
        return len(vms) == COUNT and all(vm.get("status", {}).get("state") == "Running" for vm in vms)

    wait_for(all_running, 180, f"all {COUNT} VMs Running after the restart")
    uids = {vm["metadata"]["uid"] for vm in cluster.list("vsvm", namespace)}
    owners = kubevirt_vms_by_owner(cluster, namespace)
    assert set(owners) == uids and set(owners.values()) == {1}, "exactly one KubeVirt VM per VM"
    assert len(cluster.list("virtualmachineinstances.kubevirt.io", namespace)) == COUNT
    pods = Counter(
        pod["metadata"]["labels"]["virtstack.io/vm"]
        for pod in cluster.list("pods", namespace)
        if not pod["metadata"].get("deletionTimestamp")
    )
    assert set(pods.values()) == {1} and len(pods) == COUNT, "one launcher pod per VM"

    doomed = names[: COUNT // 2]
    cluster.kubectl("delete", "vsvm", *doomed, "-n", namespace, "--wait=false")
    operator.kill()
    operator.start()
    wait_for(
        lambda: len(cluster.list("virtualmachines.kubevirt.io", namespace)) == COUNT - len(doomed),
        120,
        "the deleted VMs' KubeVirt VMs gone",
    )
    wait_for(lambda: len(cluster.list("vsvm", namespace)) == COUNT - len(doomed), 60, "the deleted VMs gone")
    kept = {vm["metadata"]["name"] for vm in cluster.list("vsvm", namespace)}
    assert kept == set(names[COUNT // 2 :])
    assert all(vm["status"]["state"] == "Running" for vm in cluster.list("vsvm", namespace))


def test_sigkill_at_random_points_during_create_resize_snapshot_and_delete_loses_nothing(
    cluster: Cluster, namespace: str, operator
) -> None:
    """Kills land wherever the clock says (seed printed); the user's own PVC and kept disks survive."""
    seed = int(os.environ.get("VIRTSTACK_FAULTS_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"VIRTSTACK_FAULTS_SEED={seed}")
    count, kills = (40, 4) if os.environ.get(LONG_PROFILE) else (12, 2)
    cluster.apply(GOLDEN_PVC, namespace=namespace)
    names = [f"chaos-{i:02d}" for i in range(count)]
    from_pvc = set(names[::2])  # half boot from a clone of the user's PVC: a DataVolume and PVC each

    def manifest(name: str, cpu: int = 2) -> dict:
        vm = vsvm(name)
        vm["spec"]["resources"]["cpu"] = cpu
        if name in from_pvc:
            vm["spec"]["source"] = {"template": {"pvc": {"name": GOLDEN_PVC["metadata"]["name"]}}}
        return vm

    def apply_all(manifests: list[dict]) -> None:
        cluster.kubectl(
            "apply", "--server-side", "--validate=strict", "-n", namespace, "-f", "-",
            input_text=yaml.safe_dump_all(manifests),
        )  # fmt: skip

    def crash_while(action) -> None:
        action()
        for _ in range(kills):
            time.sleep(rng.uniform(0.2, 3.0))
            operator.kill()
            operator.start()

    crash_while(lambda: apply_all([manifest(name) for name in names]))
    wait_for(lambda: converged(cluster, namespace, names, cpu=2), 240, f"all {count} VMs Running after the kills")

    crash_while(lambda: apply_all([manifest(name, cpu=3) for name in names]))
    wait_for(lambda: converged(cluster, namespace, names, cpu=3), 180, "every KubeVirt VM resized after the kills")

    snapped = sorted(rng.sample(sorted(from_pvc), len(from_pvc) // 2))
    crash_while(lambda: cluster.apply(*(vm_snapshot(f"{name}-snap", name) for name in snapped), namespace=namespace))
    wait_for(lambda: snapshots_converged(cluster, namespace, snapped), 180, "every snapshot Ready after the kills")

    doomed = set(rng.sample(names, count // 2))
    kept = sorted(set(names) - doomed)
    crash_while(lambda: cluster.kubectl("delete", "vsvm", *sorted(doomed), "-n", namespace, "--wait=false"))
    wait_for(lambda: converged(cluster, namespace, kept, cpu=3), 180, "the deleted VMs' objects gone")
    wait_for(
        lambda: snapshots_converged(cluster, namespace, sorted(set(snapped) - doomed)),
        120,
        "the deleted VMs' snapshots gone with them, the others kept",
    )
    claims = {pvc["metadata"]["name"] for pvc in cluster.list("pvc", namespace)}
    assert GOLDEN_PVC["metadata"]["name"] in claims, "the user's own PVC is never deleted"
    assert {root_disk_name(name) for name in kept if name in from_pvc} <= claims, "kept VMs keep their disks"


def converged(cluster: Cluster, namespace: str, names: list[str], cpu: int) -> bool:
    """Exactly the listed VMs, each Running at its generation with one KubeVirt VM, VMI and launcher pod."""
    vms = {vm["metadata"]["name"]: vm for vm in cluster.list("vsvm", namespace)}
    if sorted(vms) != sorted(names):
        return False
    for vm in vms.values():
        status = vm.get("status") or {}
        if status.get("state") != "Running" or status.get("observedGeneration") != vm["metadata"]["generation"]:
            return False
    kubevirt = cluster.list("virtualmachines.kubevirt.io", namespace)
    owners = Counter(ref["uid"] for k in kubevirt for ref in k["metadata"].get("ownerReferences", []))
    assert set(owners.values()) <= {1}, f"a VM owns two KubeVirt VMs: {owners}"
    if set(owners) != {vm["metadata"]["uid"] for vm in vms.values()} or len(kubevirt) != len(names):
        return False  # an orphan still waits for garbage collection, or one is missing
    if any(k["spec"]["template"]["spec"]["domain"]["cpu"]["sockets"] != cpu for k in kubevirt):
        return False
    vmis = cluster.list("virtualmachineinstances.kubevirt.io", namespace)
    pods = [p for p in cluster.list("pods", namespace) if not p["metadata"].get("deletionTimestamp")]
    volumes = {dv["metadata"]["name"] for dv in cluster.list("datavolumes.cdi.kubevirt.io", namespace)}
    return len(vmis) == len(names) and len(pods) == len(names) and volumes <= {root_disk_name(n) for n in names}


def vm_snapshot(name: str, vm: str) -> dict:
    return {
        "apiVersion": "virtstack.io/v1alpha1",
        "kind": "VMSnapshot",
        "metadata": {"name": name},
        "spec": {"virtualMachine": vm},
    }


def snapshots_converged(cluster: Cluster, namespace: str, vms: list[str]) -> bool:
    """One Ready VMSnapshot per listed VM, each with exactly one KubeVirt snapshot; no KubeVirt snapshot left over."""
    snapshots = {s["metadata"]["uid"]: s for s in cluster.list("vssnap", namespace)}
    if sorted(s["spec"]["virtualMachine"] for s in snapshots.values()) != sorted(vms):
        return False
    if any((s.get("status") or {}).get("phase") != "Ready" for s in snapshots.values()):
        return False
    kubevirt = cluster.list("virtualmachinesnapshots.snapshot.kubevirt.io", namespace)
    owners = Counter(ref["uid"] for k in kubevirt for ref in k["metadata"].get("ownerReferences", []))
    assert set(owners.values()) <= {1}, f"a VMSnapshot owns two KubeVirt snapshots: {owners}"
    return set(owners) == set(snapshots) and len(kubevirt) == len(snapshots)
