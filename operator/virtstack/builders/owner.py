"""The owner reference every object the operator creates for a VM carries: garbage collection deletes it with the VM."""

from __future__ import annotations

from ..api.crd import GROUP, VERSION
from .labels import MANAGED_BY, VM_LABEL


def owner_reference(vm_name: str, uid: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualMachine",
        "name": vm_name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def owned_secret(vm_name: str, namespace: str, uid: str, name: str, data: dict[str, str]) -> dict:
    """A Secret the VM owns: labelled for the operator's index, deleted with the VM."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {VM_LABEL: vm_name, **MANAGED_BY},
            "ownerReferences": [owner_reference(vm_name, uid)],
        },
        "type": "Opaque",
        "data": data,
    }
