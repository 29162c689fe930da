"""Reconcile one virtstack VirtualMachine: read, build, apply, compute status, write status.

Level-triggered: it is run for a key whenever our VM, its KubeVirt VM or its VMI changes, and
by the periodic resync; it compares before every write, so a second run writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..api.crd import GROUP, VERSION
from ..api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus
from ..builders.kubevirt_vm import build_kubevirt_vm
from ..kube import Kube
from ..objects import is_subset, merge_patch
from ..status.virtualmachine import compute_status, not_implemented_status, unsupported_fields
from ..workqueue import WorkQueue

log = logging.getLogger(__name__)

Key = tuple[str, str]
PLURAL = "virtualmachines"


@dataclass
class Indexes:
    """kopf's in-memory indexes, filled before any handler runs: our VMs, KubeVirt VMs, VMIs."""

    vms: Any
    kubevirt_vms: Any
    vmis: Any

    def one(self, index: Any, key: Key) -> dict | None:
        store = index.get(key)
        return next(iter(store), None) if store else None


class VirtualMachineController:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.queue = WorkQueue("virtualmachine", self.reconcile)
        self.indexes: Indexes | None = None

    def enqueue(self, key: Key, indexes: Indexes) -> None:
        self.indexes = indexes
        self.queue.add(key)

    def all_keys(self) -> list[Key]:
        return list(self.indexes.vms) if self.indexes else []

    async def reconcile(self, key: Key) -> None:
        assert self.indexes is not None, "enqueue() binds the indexes before any key is queued"
        vm = self.indexes.one(self.indexes.vms, key)
        if vm is None or vm["metadata"].get("deletionTimestamp"):
            return  # garbage collection removes what it owned
        namespace, name = key
        try:
            spec = VirtualMachineSpec.model_validate(vm["spec"])
        except ValidationError as error:
            log.error("vsvm %s/%s has a spec the CRD should have refused: %s", namespace, name, error)
            return
        generation = vm["metadata"].get("generation", 1)
        current = vm.get("status") or {}
        previous = VirtualMachineStatus.model_validate(current)
        unsupported = unsupported_fields(spec)
        if unsupported:
            status = not_implemented_status(generation, unsupported, previous)
        else:
            desired = build_kubevirt_vm(name, namespace, vm["metadata"]["uid"], spec)
            kubevirt_vm = self.indexes.one(self.indexes.kubevirt_vms, key)
            if kubevirt_vm is None or not is_subset(desired, kubevirt_vm):
                kubevirt_vm = await self.kube.apply(desired, PLURAL)
            vmi = self.indexes.one(self.indexes.vmis, key)
            status = compute_status(generation, spec, kubevirt_vm, vmi, previous)
        patch = merge_patch(current, status.model_dump(mode="json", exclude_none=True))
        if patch:
            await self.kube.patch_status(f"{GROUP}/{VERSION}", PLURAL, namespace, name, patch)
