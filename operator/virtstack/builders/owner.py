"""The owner reference every object the operator creates for a VM carries: garbage collection deletes it with the VM."""

from __future__ import annotations

from ..api.crd import GROUP, VERSION


def owner_reference(vm_name: str, uid: str) -> dict:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "VirtualMachine",
        "name": vm_name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
