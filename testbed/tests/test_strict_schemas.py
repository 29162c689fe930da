"""The API server holds KubeVirt's real schemas: a misspelled field fails loudly under strict validation."""

from __future__ import annotations

import copy

import yaml
from virtstack_testbed.testing import Cluster


def kubevirt_vm(name: str) -> dict:
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachine",
        "metadata": {"name": name},
        "spec": {
            "runStrategy": "Halted",
            "template": {
                "spec": {
                    "domain": {
                        "memory": {"guest": "1Gi"},
                        "devices": {"disks": [{"name": "root", "disk": {"bus": "virtio"}}]},
                    },
                    "volumes": [{"name": "root", "containerDisk": {"image": "quay.io/containerdisks/fedora:41"}}],
                }
            },
        },
    }


def test_valid_kubevirt_vm_is_accepted(cluster: Cluster, namespace: str) -> None:
    result = cluster.apply(kubevirt_vm("valid"), namespace=namespace, check=False)
    assert result.returncode == 0, result.stderr
    assert cluster.get("virtualmachines.kubevirt.io", "valid", namespace) is not None


def test_misspelled_kubevirt_field_is_rejected(cluster: Cluster, namespace: str) -> None:
    manifest = copy.deepcopy(kubevirt_vm("typo"))
    devices = manifest["spec"]["template"]["spec"]["domain"]["devices"]
    devices["disk"] = devices.pop("disks")  # the classic typo: disk for disks
    created = cluster.kubectl(
        "create", "--validate=strict", "-n", namespace, "-f", "-", input_text=yaml.safe_dump(manifest), check=False
    )
    assert created.returncode != 0
    assert 'unknown field "spec.template.spec.domain.devices.disk"' in created.stderr
    applied = cluster.apply(manifest, namespace=namespace, check=False)
    assert applied.returncode != 0
    assert ".spec.template.spec.domain.devices.disk: field not declared in schema" in applied.stderr
    assert cluster.get("virtualmachines.kubevirt.io", "typo", namespace) is None


def test_wrong_type_is_rejected(cluster: Cluster, namespace: str) -> None:
    manifest = kubevirt_vm("wrongtype")
    manifest["spec"]["template"]["spec"]["domain"]["cpu"] = {"sockets": "two"}
    result = cluster.apply(manifest, namespace=namespace, check=False)
    assert result.returncode != 0
    assert "spec.template.spec.domain.cpu.sockets" in result.stderr
