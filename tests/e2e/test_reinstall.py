"""Reinstall (CloudStack's restoreVirtualMachine) and reset-on-reboot: a new root disk, the same VM."""

from __future__ import annotations

import pytest
from virtstack.objects import condition_of
from virtstack_testbed.testing import Cluster, wait_condition, wait_for

from .test_isos import Server, http_server, iso, wait_phase  # noqa: F401 - a fixture
from .test_migration import now, operator_events
from .test_snapshots import snapshot, wait_snapshot
from .test_vm_lifecycle import running_vmi_uid, status_of, vm_with, wait_state

pytestmark = pytest.mark.usefixtures("operator")


def golden(cluster: Cluster, namespace: str, *names: str) -> None:
    """Template PVCs to clone root disks from."""
    cluster.apply(
        *[
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": name},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }
            for name in names
        ],
        namespace=namespace,
    )


def from_pvc(name: str) -> dict:
    return {"template": {"pvc": {"name": name}}}


def root_pvc_uid(cluster: Cluster, namespace: str, vm: str) -> str | None:
    pvc = cluster.get("pvc", f"{vm}-rootdisk", namespace)
    return pvc["metadata"]["uid"] if pvc and not pvc["metadata"].get("deletionTimestamp") else None


def reinstall_pending(cluster: Cluster, namespace: str, vm: str, reason: str) -> dict:
    return wait_condition(
        cluster, "vsvm", vm, namespace, "ReinstallPending", 60, f"{vm}'s ReinstallPending {reason}", reason=reason
    )


def test_reinstall_keeps_the_vm_and_recreates_its_root_disk_from_the_new_source(
    cluster: Cluster, namespace: str
) -> None:
    golden(cluster, namespace, "fedora-40", "fedora-41")
    exposed = {"ports": [{"port": 22}]}
    cluster.apply(vm_with("app", source=from_pvc("fedora-40"), expose=exposed), namespace=namespace)
    before = wait_state(cluster, namespace, "app", "Running")
    vm_uid = cluster.get("vsvm", "app", namespace)["metadata"]["uid"]
    disk = root_pvc_uid(cluster, namespace, "app")
    service = cluster.get("service", "app", namespace)["metadata"]["uid"]
    first_vmi = running_vmi_uid(cluster, namespace, "app")
    assert condition_of(cluster.get("vsvm", "app", namespace), "ReinstallPending")["status"] == "False"

    # Editing the source alone deletes nothing: the VM keeps its disk and says a reinstall would apply it.
    cluster.apply(vm_with("app", source=from_pvc("fedora-41"), expose=exposed), namespace=namespace)
    pending = reinstall_pending(cluster, namespace, "app", "SourceChanged")
    assert pending["status"] == "True" and "spec.reinstallRequestedAt" in pending["message"]
    assert root_pvc_uid(cluster, namespace, "app") == disk
    assert running_vmi_uid(cluster, namespace, "app") == first_vmi
    kubevirt_vm = cluster.get("virtualmachines.kubevirt.io", "app", namespace)
    assert kubevirt_vm["spec"]["dataVolumeTemplates"][0]["spec"]["source"]["pvc"]["name"] == "fedora-40"
    assert status_of(cluster, namespace, "app")["state"] == "Running"

    requested = now()
    cluster.apply(
        vm_with("app", source=from_pvc("fedora-41"), expose=exposed, reinstallRequestedAt=requested),
        namespace=namespace,
    )
    wait_for(
        lambda: status_of(cluster, namespace, "app").get("lastReinstalledAt") == requested, 90, "the reinstall done"
    )
    after = wait_state(cluster, namespace, "app", "Running")
    new_disk = root_pvc_uid(cluster, namespace, "app")
    assert new_disk and new_disk != disk, "a new root disk"
    data_volume = cluster.get("datavolumes.cdi.kubevirt.io", "app-rootdisk", namespace)
    assert data_volume["spec"]["source"]["pvc"]["name"] == "fedora-41"
    assert running_vmi_uid(cluster, namespace, "app") != first_vmi
    assert after["instanceName"] == before["instanceName"]
    assert cluster.get("vsvm", "app", namespace)["metadata"]["uid"] == vm_uid
    assert cluster.get("service", "app", namespace)["metadata"]["uid"] == service
    assert condition_of(cluster.get("vsvm", "app", namespace), "ReinstallPending")["status"] == "False"
    assert root_pvc_uid(cluster, namespace, "app") == new_disk, "reinstalled once"
    assert len(wait_for(lambda: operator_events(cluster, namespace, "app", "Reinstalled"), 30, "an Event")) == 1


def test_reinstall_of_a_stopped_vm_keeps_it_stopped(cluster: Cluster, namespace: str) -> None:
    golden(cluster, namespace, "base")
    cluster.apply(vm_with("idle", state="Stopped", source=from_pvc("base")), namespace=namespace)
    wait_state(cluster, namespace, "idle", "Stopped")
    disk = wait_for(lambda: root_pvc_uid(cluster, namespace, "idle"), 60, "idle's root disk")
    requested = now()
    cluster.apply(
        vm_with("idle", state="Stopped", source=from_pvc("base"), reinstallRequestedAt=requested), namespace=namespace
    )
    wait_for(lambda: status_of(cluster, namespace, "idle").get("lastReinstalledAt") == requested, 60, "reinstalled")
    assert root_pvc_uid(cluster, namespace, "idle") not in (None, disk)
    assert status_of(cluster, namespace, "idle")["state"] == "Stopped"
    assert cluster.get("virtualmachineinstances.kubevirt.io", "idle", namespace) is None


def test_reinstall_of_a_container_disk_vm_replaces_its_vmi(cluster: Cluster, namespace: str) -> None:
    cluster.apply(vm_with("ephemeral"), namespace=namespace)
    wait_state(cluster, namespace, "ephemeral", "Running")
    first = running_vmi_uid(cluster, namespace, "ephemeral")
    requested = now()
    image = {"template": {"image": "quay.io/containerdisks/fedora:42"}}
    cluster.apply(vm_with("ephemeral", source=image, reinstallRequestedAt=requested), namespace=namespace)
    wait_for(
        lambda: status_of(cluster, namespace, "ephemeral").get("lastReinstalledAt") == requested, 60, "reinstalled"
    )
    # The old VMI is gone once the reinstall is recorded; KubeVirt's new one may come a moment later.
    vmi = wait_for(
        lambda: cluster.get("virtualmachineinstances.kubevirt.io", "ephemeral", namespace), 30, "the new VMI"
    )
    assert vmi["metadata"]["uid"] != first
    assert vmi["spec"]["volumes"][0]["containerDisk"]["image"] == "quay.io/containerdisks/fedora:42"


def test_reset_on_reboot_gives_a_fresh_root_disk_at_each_reboot_only(cluster: Cluster, namespace: str) -> None:
    golden(cluster, namespace, "kiosk")
    reset = {"resetOnReboot": True}
    cluster.apply(vm_with("kiosk", source=from_pvc("kiosk"), rootDisk=reset), namespace=namespace)
    cluster.apply(vm_with("keeper", source=from_pvc("kiosk")), namespace=namespace)
    wait_state(cluster, namespace, "kiosk", "Running")
    wait_state(cluster, namespace, "keeper", "Running")
    disks = {vm: root_pvc_uid(cluster, namespace, vm) for vm in ("kiosk", "keeper")}

    requested = now()
    cluster.apply(
        vm_with("kiosk", source=from_pvc("kiosk"), rootDisk=reset, rebootRequestedAt=requested), namespace=namespace
    )
    cluster.apply(vm_with("keeper", source=from_pvc("kiosk"), rebootRequestedAt=requested), namespace=namespace)
    for vm in ("kiosk", "keeper"):
        wait_for(
            lambda vm=vm: status_of(cluster, namespace, vm).get("lastRebootedAt") == requested, 90, f"{vm} rebooted"
        )
        wait_state(cluster, namespace, vm, "Running")
    assert root_pvc_uid(cluster, namespace, "kiosk") not in (None, disks["kiosk"]), "a fresh root disk"
    assert root_pvc_uid(cluster, namespace, "keeper") == disks["keeper"], "an ordinary reboot keeps the disk"


def test_a_change_of_kind_is_refused_and_the_disk_kept(cluster: Cluster, namespace: str) -> None:
    golden(cluster, namespace, "base")
    cluster.apply(vm_with("kind", source=from_pvc("base")), namespace=namespace)
    wait_state(cluster, namespace, "kind", "Running")
    disk = root_pvc_uid(cluster, namespace, "kind")
    vmi = running_vmi_uid(cluster, namespace, "kind")
    iso = {"iso": {"name": "installer"}}
    cluster.apply(
        vm_with("kind", source=iso, rootDisk={"size": "20Gi"}, reinstallRequestedAt=now()), namespace=namespace
    )
    refused = reinstall_pending(cluster, namespace, "kind", "KindChangeRefused")
    assert refused["status"] == "True"
    assert "from template to ISO" in refused["message"] and "template to template, ISO to ISO" in refused["message"]
    status = status_of(cluster, namespace, "kind")
    assert status["state"] == "Running" and "lastReinstalledAt" not in status
    assert condition_of(cluster.get("vsvm", "kind", namespace), "Ready")["status"] == "True", "it runs as it was"
    assert root_pvc_uid(cluster, namespace, "kind") == disk and running_vmi_uid(cluster, namespace, "kind") == vmi


def test_operator_killed_in_the_middle_of_reinstalls_finishes_each_once(
    cluster: Cluster, namespace: str, operator
) -> None:
    names = [f"re-{i}" for i in range(3)]
    golden(cluster, namespace, "base")
    for name in names:
        cluster.apply(vm_with(name, source=from_pvc("base")), namespace=namespace)
    disks = {name: wait_for(lambda n=name: root_pvc_uid(cluster, namespace, n), 60, "a disk") for name in names}
    for name in names:
        wait_state(cluster, namespace, name, "Running")
    requested = now()
    for name in names:
        cluster.apply(vm_with(name, source=from_pvc("base"), reinstallRequestedAt=requested), namespace=namespace)
    wait_for(
        # The first step (the KubeVirt VM records the request) is done; the rest is in flight.
        lambda: (
            requested
            in cluster.get("virtualmachines.kubevirt.io", names[0], namespace)["metadata"]["annotations"][
                "virtstack.io/root-disk"
            ]
        ),
        30,
        "the first reinstall under way",
    )
    operator.kill()
    operator.start()
    for name in names:
        wait_for(
            lambda n=name: status_of(cluster, namespace, n).get("lastReinstalledAt") == requested, 120, f"{name} done"
        )
        wait_state(cluster, namespace, name, "Running")
        assert root_pvc_uid(cluster, namespace, name) not in (None, disks[name])
    new_disks = {name: root_pvc_uid(cluster, namespace, name) for name in names}
    assert len(cluster.list("pvc", namespace)) == 1 + len(names), "the template and one root disk per VM"
    operator.kill()
    operator.start()
    wait_for(lambda: all(status_of(cluster, namespace, n).get("state") == "Running" for n in names), 60, "running")
    assert {name: root_pvc_uid(cluster, namespace, name) for name in names} == new_disks, "reinstalled once"


def test_a_reinstall_waits_while_vm_snapshots_exist(cluster: Cluster, namespace: str) -> None:
    golden(cluster, namespace, "base")
    cluster.apply(vm_with("kept", source=from_pvc("base")), namespace=namespace)
    wait_state(cluster, namespace, "kept", "Running")
    disk = root_pvc_uid(cluster, namespace, "kept")
    cluster.apply(snapshot("before", "kept"), namespace=namespace)
    wait_snapshot(cluster, namespace, "before")
    requested = now()
    cluster.apply(vm_with("kept", source=from_pvc("base"), reinstallRequestedAt=requested), namespace=namespace)
    waiting = reinstall_pending(cluster, namespace, "kept", "SnapshotsExist")
    assert waiting["status"] == "True" and "1 VMSnapshot(s)" in waiting["message"]
    assert root_pvc_uid(cluster, namespace, "kept") == disk
    cluster.kubectl("delete", "vssnap", "before", "-n", namespace)
    wait_for(lambda: status_of(cluster, namespace, "kept").get("lastReinstalledAt") == requested, 90, "reinstalled")
    assert root_pvc_uid(cluster, namespace, "kept") not in (None, disk)


def test_an_iso_vm_reinstalls_from_another_iso_and_refuses_a_template(
    cluster: Cluster,
    namespace: str,
    http_server: Server,  # noqa: F811 - the ISO tests' fixture
) -> None:
    for name in ("installer", "installer-2"):
        cluster.apply(iso(name, http_server.url("installer.iso")), namespace=namespace)
    for name in ("installer", "installer-2"):
        wait_phase(cluster, namespace, name, "Ready")
    cluster.apply(vm_with("desk", source={"iso": {"name": "installer"}}, rootDisk={"size": "2Gi"}), namespace=namespace)
    wait_state(cluster, namespace, "desk", "Running", timeout=90)
    disk = root_pvc_uid(cluster, namespace, "desk")

    requested = now()
    second = {"iso": {"name": "installer-2"}}
    cluster.apply(
        vm_with("desk", source=second, rootDisk={"size": "2Gi"}, reinstallRequestedAt=requested), namespace=namespace
    )
    wait_for(lambda: status_of(cluster, namespace, "desk").get("lastReinstalledAt") == requested, 90, "reinstalled")
    wait_state(cluster, namespace, "desk", "Running")
    assert root_pvc_uid(cluster, namespace, "desk") not in (None, disk), "a new blank root disk"
    templates = cluster.get("virtualmachines.kubevirt.io", "desk", namespace)["spec"]["dataVolumeTemplates"]
    assert {"pvc": {"namespace": namespace, "name": "installer-2-iso"}} in [t["spec"]["source"] for t in templates]

    golden(cluster, namespace, "base")
    cluster.apply(
        vm_with("desk", source=from_pvc("base"), rootDisk={"size": "2Gi"}, reinstallRequestedAt=now()),
        namespace=namespace,
    )
    refused = reinstall_pending(cluster, namespace, "desk", "KindChangeRefused")
    assert "from ISO to template" in refused["message"]
    assert status_of(cluster, namespace, "desk")["state"] == "Running"
