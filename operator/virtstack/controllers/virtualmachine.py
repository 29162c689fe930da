"""Reconcile one virtstack VirtualMachine: read, resolve, build, apply, compute status, write status.

Level-triggered: it is run for a key whenever our VM or anything it owns or reads changes, and
by the periodic resync; it compares before every write, so a second run writes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from ..api.affinitygroup import AffinityGroupSpec
from ..api.durations import parse_duration
from ..api.gpuprofile import GPUProfileSpec
from ..api.settings import Settings
from ..api.virtualmachine import PowerState, VirtualMachineSpec, VirtualMachineStatus
from ..builders.access import build_keys_secret, keys_delivery, keys_secret_name
from ..builders.affinity import membership_change
from ..builders.cloudinit import (
    UserDataError,
    build_user_data_secret,
    check_size,
    cloud_init_volume,
    user_data_from_secret,
)
from ..builders.cloudinit import secret_name as user_data_secret_name
from ..builders.iso import IsoUnusable, resolve_isos
from ..builders.kubevirt_vm import (
    VMInputs,
    build_kubevirt_vm,
    held_size,
    imported_urls,
    reboot_pending,
    root_disk_name,
)
from ..builders.names import display_name, instance_name
from ..builders.placement import ZONE_LABEL
from ..builders.rootdisk import RootDiskPlan, plan_root_disk, with_root_disk
from ..builders.service import build_service, public_address
from ..kube import Kube, refusal_message, refused_as_invalid
from ..objects import needs_apply, stamped
from ..status.hosts import HostHealth, host_health
from ..status.iso import VM_ISO_NOT_READY, VM_ISO_UNUSABLE, VM_URL_REFUSED
from ..status.lifecycle import request_events
from ..status.virtualmachine import (
    GPU_PROFILE_MISSING,
    REFUSED,
    SNAPSHOTS_EXIST,
    SSH_KEY_PAIR_PROBLEM,
    USER_DATA_INVALID,
    Observed,
    blocked_status,
    compute_status,
    in_progress,
    transition_event,
)
from ..status.vmsnapshot import disk_change_refusal, summarize
from ..urlguard import ReadFailed, UrlRefused, UrlRules, checked_addresses
from .base import Controller, Key, one
from .capacity import CapacityGate
from .migration import awaits_scheduling, carry_out_migration
from .settling import ProgressHold

log = logging.getLogger(__name__)

PLURAL = "virtualmachines"
MIGRATION_POLL_SECONDS = 5.0


@dataclass(frozen=True)
class Blocked:
    """Why the VM is not built or changed: a condition reason and a message naming the object and the fix."""

    reason: str
    message: str
    waiting: bool = False  # only until something on its way is ready, not for a fix


@dataclass
class Indexes:
    """kopf's in-memory indexes, filled before any handler runs."""

    vms: Any
    kubevirt_vms: Any
    vmis: Any
    services: Any
    secrets: Any
    nodes: Any
    groups: Any
    gpu_profiles: Any
    keypairs: Any
    migrations: Any  # the VMs' VirtualMachineInstanceMigrations
    data_volumes: Any  # DataVolumes KubeVirt made from VMs' templates, by name
    isos: Any  # ISOs by (namespace, name)
    workload_updates: Any  # KubeVirt's own hotplug migrations, by (namespace, VMI name)
    snapshots: Any = None  # VMSnapshots by (namespace, VM name)


class VirtualMachineController(Controller):
    name = "virtualmachine"
    plural = PLURAL

    def __init__(self, kube: Kube, settings: Settings) -> None:
        super().__init__(kube)
        self.settings = settings
        self._node_ready: dict[str, bool] = {}
        self._host_down_after = parse_duration(settings.hostDownAfter)
        self._url_rules = UrlRules.from_settings(settings.isoUrlRules)
        self._hold = ProgressHold()
        self.capacity = CapacityGate(settings.maxVMsPerHost)

    def primary_index(self) -> Any:
        return self.indexes.vms

    def node_changed(self, node: str, indexes: Indexes) -> None:
        """Requeue the VMs on a host whose readiness flipped; other node updates (heartbeats) cost nothing."""
        self.indexes = indexes
        entry = one(indexes.nodes, node)
        ready = bool(entry and entry.get("ready"))
        if self._node_ready.get(node) == ready:
            return
        self._node_ready[node] = ready
        for key, store in indexes.vmis.items():
            if any((vmi.get("status") or {}).get("nodeName") == node for vmi in store):
                self.queue.add(key)

    def capacity_changed(self, indexes: Indexes) -> None:
        """Room may have freed (a VM stopped or went, a host came): the waiting VMs try again."""
        self.indexes = indexes
        for key in self.capacity.to_requeue(indexes):
            self.queue.add(key)

    async def reconcile(self, key: Key) -> None:
        assert self.indexes is not None, "enqueue() binds the indexes before any key is queued"
        vm = self.fresh(key, one(self.indexes.vms, key))
        if vm is None or vm["metadata"].get("deletionTimestamp"):
            self._hold.forget(key)
            self.capacity.forget(key)
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
        uid = vm["metadata"]["uid"]
        # Generated once and kept: the setting may change later, the name must not.
        name_of_instance = previous.instanceName or instance_name(
            uid, display_name(name, spec), self.settings.appendDisplayNameToInstanceName
        )
        kubevirt_vm = one(self.indexes.kubevirt_vms, key)
        snapshots = summarize(list(self.indexes.snapshots.get(key) or []), kubevirt_vm)
        data_volume = one(self.indexes.data_volumes, (namespace, root_disk_name(name)))
        disk = plan_root_disk(spec, kubevirt_vm, data_volume, one(self.indexes.vmis, key), snapshots.count)
        if refusal := disk_change_refusal(spec, kubevirt_vm, snapshots.count):
            resolved: VMInputs | Blocked = Blocked(SNAPSHOTS_EXIST, refusal)
        else:
            # Built from the source the root disk comes from: a source edit alone waits for a reinstall.
            resolved = await self._resolve(key, uid, spec.model_copy(update={"source": disk.source}), name_of_instance)
        if not isinstance(resolved, Blocked):
            resolved = replace(resolved, halted=snapshots.reverting_to is not None)
        if isinstance(resolved, Blocked):
            self.capacity.blocked(key)
            status = blocked_status(
                generation, resolved.reason, resolved.message, previous, name_of_instance, waiting=resolved.waiting
            )
        else:
            try:
                observed = await self._apply_children(key, resolved, disk)
                status = compute_status(
                    generation, spec, replace(observed, reverting_to=snapshots.reverting_to), previous
                )
            except ApiException as error:
                if not refused_as_invalid(error):
                    raise  # conflicts, throttling, outages: the work queue retries with backoff
                status = blocked_status(generation, REFUSED, refusal_message(error), previous, name_of_instance)
        status = status.model_copy(update={"snapshotCount": snapshots.count, "currentSnapshot": snapshots.current})
        await self._write_status(key, vm, previous, status)

    async def _resolve(self, key: Key, uid: str, spec: VirtualMachineSpec, name_of_instance: str) -> VMInputs | Blocked:
        """Everything the KubeVirt VM is built from, or what keeps the VM from being built (nothing half-made)."""
        namespace, name = key
        try:
            user_data = await self._user_data(namespace, spec)
        except UserDataError as error:
            return Blocked(USER_DATA_INVALID, str(error))
        public_keys, key_problem = self._public_keys(namespace, spec)
        if key_problem is not None:
            return Blocked(SSH_KEY_PAIR_PROBLEM, key_problem)
        profile = one(self.indexes.gpu_profiles, spec.gpu.profile) if spec.gpu else None
        if spec.gpu is not None and profile is None:
            return Blocked(
                GPU_PROFILE_MISSING,
                f"GPUProfile {spec.gpu.profile} (spec.gpu.profile) does not exist: "
                "ask an administrator to create it, or name an existing one (kubectl get gpuprofile)",
            )
        gpu_profile = GPUProfileSpec.model_validate(profile["spec"]) if profile else None
        try:
            boot_iso, attached_iso = resolve_isos(lambda ns, n: one(self.indexes.isos, (ns, n)), namespace, spec)
        except IsoUnusable as error:
            if error.waiting:
                return Blocked(VM_ISO_NOT_READY, str(error), waiting=True)
            return Blocked(VM_ISO_UNUSABLE, str(error))
        if (refusal := await self._url_refusal(key, spec)) is not None:
            return Blocked(VM_URL_REFUSED, refusal)
        return VMInputs(
            name,
            namespace,
            uid,
            spec,
            self.settings,
            name_of_instance,
            user_data,
            gpu_profile=gpu_profile,
            public_keys=public_keys,
            boot_iso=boot_iso,
            attached_iso=attached_iso,
        )

    async def _url_refusal(self, key: Key, spec: VirtualMachineSpec) -> str | None:
        """The SSRF guard for a template URL CDI will import, judged once per URL (before KubeVirt gets it)."""
        url = spec.source.template.url if spec.source.template else None
        if url is None or url in imported_urls(one(self.indexes.kubevirt_vms, key)):
            return None
        try:
            await checked_addresses(url, self._url_rules)
        except UrlRefused as error:
            return f"spec.source.template.url is refused: {error}"
        except ReadFailed:
            return None  # CDI reports a host that does not resolve, and retries
        return None

    async def _write_status(
        self, key: Key, vm: dict, previous: VirtualMachineStatus, status: VirtualMachineStatus
    ) -> None:
        """The status (progress only once it lasts: settling.py), and an Event when the state changed."""
        holdable = in_progress(status) and previous.observedGeneration in (None, status.observedGeneration)
        if (wait := self._hold.wait(key, holdable)) is not None:
            self.queue.add_after(key, wait)
            return
        await self.write_status(vm, status)
        if (event := transition_event(previous, status)) is not None:
            await self.kube.post_event(vm, *event)
        for event in request_events(previous, status):
            await self.kube.post_event(vm, *event)

    def _public_keys(self, namespace: str, spec: VirtualMachineSpec) -> tuple[dict[str, str], str | None]:
        """The listed key pairs' public keys, or what keeps one from being used."""
        keys = {}
        for name in spec.sshKeyPairs:
            keypair = one(self.indexes.keypairs, (namespace, name))
            if keypair is None:
                return {}, (
                    f"SSHKeyPair {name} (spec.sshKeyPairs) does not exist: create it or remove it from "
                    "the list; the VM waits for it"
                )
            public = (keypair.get("status") or {}).get("publicKey")
            if not public:
                return {}, f"SSHKeyPair {name} (spec.sshKeyPairs) has no usable public key yet: see its Ready condition"
            keys[name] = public
        return keys, None

    async def _user_data(self, namespace: str, spec: VirtualMachineSpec) -> bytes | None:
        if spec.userData is None:
            return None
        if spec.userData.inline is not None:
            data = spec.userData.inline.encode()
            check_size(data, "spec.userData.inline")
            return data
        reference = spec.userData.secretRef
        secret = await self.kube.read_secret(namespace, reference.name)
        return user_data_from_secret(secret, reference.name, reference.key)

    async def _apply_children(self, key: Key, inputs: VMInputs, disk: RootDiskPlan) -> Observed:
        """Make what the VM owns match the spec, writing only what differs; return what is observed."""
        indexes = self.indexes
        namespace, name = key
        if inputs.user_data is not None and cloud_init_volume(name, inputs.user_data)[1]:
            secret = build_user_data_secret(name, namespace, inputs.uid, inputs.user_data)
            await self._ensure(secret, one(indexes.secrets, (namespace, user_data_secret_name(name))))
        keys_secret = one(indexes.secrets, (namespace, keys_secret_name(name)))
        if inputs.public_keys:
            await self._ensure(build_keys_secret(name, namespace, inputs.uid, inputs.public_keys), keys_secret)
        elif keys_secret is not None:
            await self.kube.delete_core("Secret", namespace, keys_secret_name(name))
        service = one(indexes.services, key)
        if inputs.spec.expose is not None:
            desired = build_service(name, namespace, inputs.uid, inputs.spec.expose, self.settings.exposeServiceType)
            service = await self._ensure(desired, service)
        elif service is not None:
            await self.kube.delete_core("Service", namespace, name)
            service = None
        kubevirt_vm = one(indexes.kubevirt_vms, key)
        vmi = one(indexes.vmis, key)
        groups = {
            g: AffinityGroupSpec.model_validate(found["spec"])
            for g in inputs.spec.affinityGroups
            if (found := one(indexes.groups, (namespace, g))) is not None
        }
        wants_to_run = inputs.spec.state is PowerState.RUNNING
        # A revert, a reinstall or a reset on reboot halts the VM for a while: it keeps its room meanwhile.
        halted_for_a_while = inputs.halted or disk.halt
        waiting = self.capacity.wait_message(key, wants_to_run, kubevirt_vm, vmi, indexes, kept=halted_for_a_while)
        inputs = replace(
            inputs,
            held_size=held_size(inputs.spec, kubevirt_vm, vmi),
            affinity_groups=groups,
            wait_for_room=waiting is not None,
        )
        desired_vm = with_root_disk(build_kubevirt_vm(inputs), disk)
        if needs_apply(desired_vm, kubevirt_vm):
            kubevirt_vm = await self.kube.apply(stamped(desired_vm), PLURAL)
        if disk.delete_disk:
            # Foreground: the PVC goes before the DataVolume, so the one KubeVirt recreates gets a new claim.
            await self.kube.delete_custom(
                "cdi.kubevirt.io/v1beta1", "datavolumes", namespace, root_disk_name(name), propagation="Foreground"
            )
        if reboot_pending(inputs.spec, vmi) or disk.replace_vmi:
            # Stop then start, as CloudStack reboots: the run strategy creates the new VMI.
            await self.kube.delete_custom("kubevirt.io/v1", "virtualmachineinstances", namespace, name)
        migration = await carry_out_migration(
            self.kube,
            list(indexes.migrations.get(key) or []),
            key,
            inputs.uid,
            inputs.spec,
            vmi,
            (one(indexes.vms, key) or {}).get("status", {}).get("lastMigratedAt"),
        )
        if awaits_scheduling(migration):
            self.queue.add_after(key, MIGRATION_POLL_SECONDS)
        host = (vmi or {}).get("status", {}).get("nodeName")
        node = one(indexes.nodes, host) if host else None
        addresses = {host: node["address"]} if node and node.get("address") else {}
        health = await self._handle_host(key, inputs, vmi, host, node)
        return Observed(
            vm_name=name,
            kubevirt_vm=kubevirt_vm,
            vmi=vmi,
            instance_name=inputs.instance_name,
            zone=(node or {}).get("labels", {}).get(ZONE_LABEL),
            public_address=public_address(service, addresses, host),
            host_down_for=health.not_ready_for if health and health.down else None,
            resize_held=inputs.held_size is not None,
            missing_groups=[g for g in inputs.spec.affinityGroups if g not in groups],
            groups_pending=membership_change(vmi, groups),
            keys=keys_delivery(name, inputs.public_keys, inputs.spec.sshKeyGuestAgentUsers, vmi),
            capacity_wait=waiting,
            migration=migration,
            root_disk=disk,
            workload_updates=list(indexes.workload_updates.get(key, [])),
        )

    async def _handle_host(
        self, key: Key, inputs: VMInputs, vmi: dict | None, host: str | None, node: dict | None
    ) -> HostHealth | None:
        """CloudStack's host-down rule for a VM's host, and HA's restart elsewhere.

        For an HA VM on a down host the launcher pod is force-deleted: KubeVirt then fails the VMI
        at once (its pod is gone) and run strategy Always starts a new one on a Ready host, instead of
        waiting for KubeVirt's own node-loss rule (5 minutes of missed virt-handler heartbeats).
        """
        if host is None or vmi is None or (vmi.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        health = host_health(node, datetime.now(UTC), self._host_down_after)
        if health.recheck_in is not None:
            self.queue.add_after(key, health.recheck_in + 1)
        if health.down and inputs.spec.highAvailability:
            await self.kube.force_delete_pods(key[0], f"kubevirt.io/created-by={vmi['metadata']['uid']}", host)
        return health

    async def _ensure(self, desired: dict, actual: dict | None) -> dict:
        if not needs_apply(desired, actual):
            return actual
        return await self.kube.apply_core(stamped(desired))
