"""Admission the schema cannot do (issue 4 §2): KubeVirt's webhook rules as ValidatingAdmissionPolicies.

Each rule rejects with KubeVirt's message; valid objects pass. Dry-run requests go through admission
like real ones, so nothing is stored.
"""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from virtstack_testbed.testing import Cluster, kubevirt_vm, wait_for


def create(cluster: Cluster, namespace: str, obj: dict, dry_run: bool = True):
    args = ["create", "-n", namespace, "--validate=strict", "-f", "-"]
    if dry_run:
        args.insert(1, "--dry-run=server")
    return cluster.kubectl(*args, input_text=yaml.safe_dump(obj), check=False)


def template(vm: dict) -> dict:
    return vm["spec"]["template"]["spec"]


def edit(change) -> dict:
    vm = kubevirt_vm("invalid")
    change(vm)
    return vm


def _add_disk(vm: dict) -> None:
    template(vm)["domain"]["devices"]["disks"].append({"name": "extra", "disk": {}})


def _duplicate_volume(vm: dict) -> None:
    template(vm)["volumes"].append({"name": "root", "emptyDisk": {"capacity": "1Gi"}})


def _two_sources(vm: dict) -> None:
    template(vm)["volumes"][0]["emptyDisk"] = {"capacity": "1Gi"}


def _no_memory(vm: dict) -> None:
    del template(vm)["domain"]["memory"]


def _requests_over_limits(vm: dict) -> None:
    template(vm)["domain"]["resources"] = {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}


def _guest_over_limit(vm: dict) -> None:
    template(vm)["domain"]["resources"] = {"limits": {"memory": "64Mi"}}


def _interface_without_network(vm: dict) -> None:
    template(vm)["networks"] = []


def _big_user_data(vm: dict) -> None:
    template(vm)["domain"]["devices"]["disks"].append({"name": "ci", "disk": {}})
    template(vm)["volumes"].append({"name": "ci", "cloudInitNoCloud": {"userData": "#cloud-config\n" + "x" * 2100}})


def _unreferenced_template(vm: dict) -> None:
    vm["spec"]["dataVolumeTemplates"] = [{"metadata": {"name": "orphan"}, "spec": {"source": {"blank": {}}}}]


def _two_propagation_methods(vm: dict) -> None:
    template(vm)["accessCredentials"] = [
        {
            "sshPublicKey": {
                "source": {"secret": {"secretName": "keys"}},
                "propagationMethod": {"noCloud": {}, "qemuGuestAgent": {"users": ["fedora"]}},
            }
        }
    ]


def _both_running_and_strategy(vm: dict) -> None:
    vm["spec"]["running"] = True


def _neither(vm: dict) -> None:
    del vm["spec"]["runStrategy"]


def _bad_strategy(vm: dict) -> None:
    vm["spec"]["runStrategy"] = "Sometimes"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (_both_running_and_strategy, "Running and RunStrategy are mutually exclusive"),
        (_neither, "One of Running or RunStrategy must be specified"),
        (_bad_strategy, "Invalid RunStrategy (Sometimes)"),
        (_add_disk, "spec.template.spec.domain.devices.disks[].name 'extra' not found."),
        (_duplicate_volume, "spec.template.spec.volumes[].name 'root' must be unique."),
        (_two_sources, "spec.template.spec.volumes[].name 'root' must have exactly one source type set"),
        (_interface_without_network, "spec.template.spec.domain.devices.interfaces[].name 'default' not found."),
        (_no_memory, "no memory requested"),
        (_requests_over_limits, "requests.memory '2Gi' is greater than spec.template.spec.domain.resources.limits"),
        (_guest_over_limit, "memory.guest '128Mi' must be equal to or less than the memory limit"),
        (_big_user_data, "cloudInitNoCloud.userData exceeds 2048 byte limit"),
        (_unreferenced_template, "spec.dataVolumeTemplate 'orphan' must be referenced in the VMI template's"),
        (_two_propagation_methods, "must have exactly one of noCloud, configDrive or qemuGuestAgent"),
    ],
)
def test_vm_rule_rejects_with_kubevirts_message(cluster: Cluster, namespace: str, change, message: str) -> None:
    result = create(cluster, namespace, edit(change))
    assert result.returncode != 0, "refused"
    assert message in result.stderr, result.stderr


def test_valid_vms_pass(cluster: Cluster, namespace: str) -> None:
    full = kubevirt_vm("full", "Halted")
    spec = template(full)
    spec["domain"]["devices"]["disks"] += [{"name": "ci", "disk": {}}, {"name": "data", "disk": {}}]
    spec["domain"]["resources"] = {"requests": {"memory": "128Mi", "cpu": "1"}, "limits": {"memory": "1Gi", "cpu": 2}}
    spec["volumes"] += [
        {"name": "ci", "cloudInitNoCloud": {"userDataBase64": "I2Nsb3VkLWNvbmZpZwo="}},
        {"name": "data", "dataVolume": {"name": "full-data"}},
    ]
    spec["accessCredentials"] = [
        {"sshPublicKey": {"source": {"secret": {"secretName": "keys"}}, "propagationMethod": {"noCloud": {}}}}
    ]
    full["spec"]["dataVolumeTemplates"] = [{"metadata": {"name": "full-data"}, "spec": {"source": {"blank": {}}}}]
    deprecated = kubevirt_vm("legacy", None, running=False)
    for vm in (kubevirt_vm("minimal"), full, deprecated):
        result = create(cluster, namespace, vm)
        assert result.returncode == 0, result.stderr


def test_metadata_updates_of_a_stored_vm_pass_and_spec_updates_are_judged(cluster: Cluster, namespace: str) -> None:
    assert create(cluster, namespace, kubevirt_vm("stored", "Halted"), dry_run=False).returncode == 0
    cluster.kubectl("label", "vm", "stored", "-n", namespace, "tier=web")
    bad = json.dumps({"spec": {"runStrategy": "Sometimes"}})
    result = cluster.kubectl("patch", "vm", "stored", "-n", namespace, "--type=merge", "-p", bad, check=False)
    assert result.returncode != 0 and "Invalid RunStrategy (Sometimes)" in result.stderr


def vmi_manifest(name: str) -> dict:
    vm = kubevirt_vm(name)
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstance",
        "metadata": {"name": name},
        "spec": copy.deepcopy(template(vm)),
    }


def test_vmi_created_by_a_user_is_judged_and_its_spec_is_then_immutable(cluster: Cluster, namespace: str) -> None:
    invalid = vmi_manifest("bad")
    invalid["spec"]["volumes"] = []
    result = create(cluster, namespace, invalid)
    assert result.returncode != 0 and "spec.domain.devices.disks[].name 'root' not found." in result.stderr
    assert create(cluster, namespace, vmi_manifest("direct"), dry_run=False).returncode == 0
    wait_for(
        lambda: ((cluster.get("vmi", "direct", namespace) or {}).get("status") or {}).get("phase"),
        30,
        "the simulator (KubeVirt's service account) updating the VMI",
    )
    patch = json.dumps({"spec": {"domain": {"memory": {"guest": "1Gi"}}}})
    result = cluster.kubectl("patch", "vmi", "direct", "-n", namespace, "--type=merge", "-p", patch, check=False)
    assert result.returncode != 0 and "update of VMI object is restricted" in result.stderr
    cluster.kubectl("annotate", "vmi", "direct", "-n", namespace, "note=metadata is fine")


def test_snapshot_and_restore_specs_are_immutable(cluster: Cluster, namespace: str) -> None:
    snapshot = {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineSnapshot",
        "metadata": {"name": "snap"},
        "spec": {"source": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "a"}},
    }
    restore = {
        "apiVersion": "snapshot.kubevirt.io/v1beta1",
        "kind": "VirtualMachineRestore",
        "metadata": {"name": "restore"},
        "spec": {
            "target": {"apiGroup": "kubevirt.io", "kind": "VirtualMachine", "name": "a"},
            "virtualMachineSnapshotName": "snap",
        },
    }
    for obj, kind, patch in (
        (snapshot, "virtualmachinesnapshots.snapshot.kubevirt.io", {"spec": {"source": {"name": "b"}}}),
        (restore, "virtualmachinerestores.snapshot.kubevirt.io", {"spec": {"virtualMachineSnapshotName": "other"}}),
    ):
        assert create(cluster, namespace, obj, dry_run=False).returncode == 0
        name = obj["metadata"]["name"]
        result = cluster.kubectl(
            "patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(patch), check=False
        )
        assert result.returncode != 0 and "spec is immutable after creation" in result.stderr, result.stderr
        cluster.kubectl("label", kind, name, "-n", namespace, "kept=yes")
