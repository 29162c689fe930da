"""The simulator's controllers: informers feed work queues; each sync reads caches, plans, writes.

One module per KubeVirt controller (vm_controller, vmi_controller, node_controller,
migration_controller, snapshot_controller) and CDI's
(cdi_controller); this module
wires their informers and queues together. Every write sends fieldValidation=Strict (kube.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from kubernetes_asyncio import client

from ..cdi import LABEL_SIMULATED
from ..informer import Informer, Resource, object_key
from ..launcher import LABEL_APP, LABEL_CREATED_BY
from ..options import Options
from .cdi_controller import DataVolumeController
from .kube import Kube
from .migration_controller import MigrationController
from .node_controller import NodeController
from .snapshot_controller import SnapshotController
from .vm_controller import VmController
from .vmi_controller import VmiController

VMS = Resource("kubevirt.io", "v1", "virtualmachines")
VMIS = Resource("kubevirt.io", "v1", "virtualmachineinstances")
PODS = Resource("", "v1", "pods")
NODES = Resource("", "v1", "nodes")
DATA_VOLUMES = Resource("cdi.kubevirt.io", "v1beta1", "datavolumes")
MIGRATIONS = Resource("kubevirt.io", "v1", "virtualmachineinstancemigrations")
SNAPSHOTS = Resource("snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshots")
SNAPSHOT_CONTENTS = Resource("snapshot.kubevirt.io", "v1beta1", "virtualmachinesnapshotcontents")
RESTORES = Resource("snapshot.kubevirt.io", "v1beta1", "virtualmachinerestores")
DATA_SOURCES = Resource("cdi.kubevirt.io", "v1beta1", "datasources")
PVCS = Resource("", "v1", "persistentvolumeclaims")
PVS = Resource("", "v1", "persistentvolumes")


class Simulator:
    def __init__(self, api: client.ApiClient, options: Options | None = None) -> None:
        self.options = options or Options()
        self.kube = Kube(api)
        self._pods_by_vmi: dict[str, dict] = {}
        self.vms = Informer(api, VMS, self._vm_changed)
        self.vmis = Informer(api, VMIS, self._vmi_changed)
        self.pods = Informer(api, PODS, self._pod_changed, label_selector=f"{LABEL_APP}=virt-launcher")
        self.nodes = Informer(api, NODES, self._node_changed)
        self.dvs = Informer(api, DATA_VOLUMES, self._dv_changed)
        self.vmims = Informer(api, MIGRATIONS, self._vmim_changed)
        self.vm_snapshots = Informer(api, SNAPSHOTS, self._snapshot_changed)
        self.vm_snapshot_contents = Informer(api, SNAPSHOT_CONTENTS, self._content_changed)
        self.vm_restores = Informer(api, RESTORES, self._restore_changed)
        self.datasources = Informer(api, DATA_SOURCES, self._datasource_changed)
        self.pvcs = Informer(api, PVCS, lambda old, new: self.cdi.pvc_changed(new or old))
        self.pvs = Informer(
            api,
            PVS,
            lambda old, new: self.cdi.volumes.add(object_key(new or old)),
            label_selector=f"{LABEL_SIMULATED}=true",
        )
        self.vm = VmController(self)
        self.vmi = VmiController(self)
        self.node = NodeController(self)
        self.cdi = DataVolumeController(self)
        self.migration = MigrationController(self)
        self.snapshot = SnapshotController(self)

    @property
    def informers(self) -> list[Informer]:
        return [
            self.vms,
            self.vmis,
            self.pods,
            self.nodes,
            self.dvs,
            self.vmims,
            self.vm_snapshots,
            self.vm_snapshot_contents,
            self.vm_restores,
            self.datasources,
            self.pvcs,
            self.pvs,
        ]

    async def run(self, on_synced: Callable[[], object]) -> None:
        tasks = [asyncio.create_task(i.run()) for i in self.informers]
        await asyncio.gather(*(i.synced.wait() for i in self.informers))
        await self.node.heartbeat_all()
        controllers = (self.vm, self.vmi, self.node, self.cdi, self.migration, self.snapshot)
        tasks += [asyncio.create_task(c.run()) for c in controllers]
        on_synced()
        await asyncio.gather(*tasks)

    # --- event routing -----------------------------------------------------------------------
    def _vm_changed(self, old: dict | None, new: dict | None) -> None:
        key = object_key(new or old)
        self.vm.queue.add(key)
        self.snapshot.vm_changed(*key)

    def _vmi_changed(self, old: dict | None, new: dict | None) -> None:
        key = object_key(new or old)
        self.vmi.queue.add(key)
        self.vm.queue.add(key)
        self.migration.vmi_changed(*key)
        self.snapshot.vm_changed(*key)

    def _pod_changed(self, old: dict | None, new: dict | None) -> None:
        pod = new or old
        key = object_key(pod)
        if old is not None:
            uid = old["metadata"]["labels"].get(LABEL_CREATED_BY)
            bucket = self._pods_by_vmi.get(uid, {})
            bucket.pop(key, None)
            if not bucket:
                self._pods_by_vmi.pop(uid, None)
        if new is not None:
            self._pods_by_vmi.setdefault(new["metadata"]["labels"].get(LABEL_CREATED_BY), {})[key] = new
        if new is not None and old is None:
            self.vmi.pod_observed(pod["metadata"]["labels"].get(LABEL_CREATED_BY))
        domain = (pod["metadata"].get("annotations") or {}).get("kubevirt.io/domain")
        if domain:
            self.vmi.queue.add((pod["metadata"]["namespace"], domain))
            self.migration.vmi_changed(pod["metadata"]["namespace"], domain)

    def _node_changed(self, old: dict | None, new: dict | None) -> None:
        self.node.queue.add(object_key(new or old))

    def _snapshot_changed(self, old: dict | None, new: dict | None) -> None:
        self.snapshot.snapshot_changed(*object_key(new or old))

    def _content_changed(self, old: dict | None, new: dict | None) -> None:
        content = new or old
        snapshot = content["spec"].get("virtualMachineSnapshotName")
        if snapshot:
            self.snapshot.snapshot_changed(content["metadata"]["namespace"], snapshot)

    def _datasource_changed(self, old: dict | None, new: dict | None) -> None:
        namespace, name = object_key(new or old)
        for key, dv in list(self.dvs.cache.items()):
            ref = (dv.get("spec") or {}).get("sourceRef") or {}
            if ref.get("name") == name and (ref.get("namespace") or key[0]) == namespace:
                self.cdi.queue.add(key)

    def _restore_changed(self, old: dict | None, new: dict | None) -> None:
        self.snapshot.restores.add(object_key(new or old))

    def _vmim_changed(self, old: dict | None, new: dict | None) -> None:
        self.migration.queue.add(object_key(new or old))

    def _dv_changed(self, old: dict | None, new: dict | None) -> None:
        dv = new or old
        self.cdi.queue.add(object_key(dv))
        namespace = dv["metadata"]["namespace"]
        owners = [r["name"] for r in dv["metadata"].get("ownerReferences", []) if r.get("kind") == "VirtualMachine"]
        if owners:
            for owner in owners:
                self.vm.queue.add((namespace, owner))
            return
        for ns, name in list(self.vms.cache):  # a DataVolume a VM uses without owning it
            if ns == namespace:
                self.vm.queue.add((ns, name))

    # --- cache queries -----------------------------------------------------------------------
    def pods_of(self, vmi: dict) -> list[dict]:
        """The VMI's launcher pods (an index by `kubevirt.io/created-by`, kept by the pod informer)."""
        return list(self._pods_by_vmi.get(vmi["metadata"]["uid"], {}).values())

    def vmis_on_node(self, node: str) -> list[dict]:
        return [v for v in self.vmis.cache.values() if (v.get("status") or {}).get("nodeName") == node]
