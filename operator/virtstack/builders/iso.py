"""ISOs on CDI and KubeVirt (pure): the import DataVolume, and the CD-ROMs of the VMs that use them.

Every VM gets its own copy of each ISO it uses: a CDI clone DataVolume in the VM's
`dataVolumeTemplates`, from the ISO's imported PVC (in the ISO's namespace, which for a public
ISO is another namespace: CDI's cross-namespace clone, authorised by `datavolumes/source`). The
copy is owned by the KubeVirt VM and goes with it. Sharing one PVC instead would need
ReadOnlyMany storage for VMs on different hosts, and would tie the ISO's disk to VMs in other
namespaces that its owner cannot see.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..api.crd import GROUP, VERSION
from ..api.virtualmachine import IsoReference, VirtualMachineSpec
from .labels import MANAGED_BY

ISO_LABEL = "virtstack.io/iso"
FINALIZER = "virtstack.io/iso-in-use"
# On the import DataVolume: the operator's failed reads before it was created (CDI counts the rest).
FAILED_READS_ANNOTATION = "virtstack.io/failed-reads"
# On the import DataVolume: the ISO's status.startedAt it was made for. A DataVolume of an earlier
# download (one that failed and was retried) is told apart by it, even from a stale cache.
DOWNLOAD_ANNOTATION = "virtstack.io/download-started-at"
CDI = "cdi.kubevirt.io/v1beta1"
MIB = 1024 * 1024
CDROM_BUS = "sata"  # KubeVirt refuses virtio for cdrom; sata is what its webhook defaults to on amd64


def import_name(iso_name: str) -> str:
    """The DataVolume (and PVC) holding the imported ISO: deterministic, so a rerun finds it."""
    return f"{iso_name}-iso"


def requested_size(size_bytes: int) -> str:
    """The import's storage request: the ISO's size in whole MiB (CDI's `storage` API adds filesystem overhead)."""
    return f"{max(math.ceil(size_bytes / MIB), 1)}Mi"


def build_import(name: str, namespace: str, uid: str, url: str, size_bytes: int, storage_class: str) -> dict:
    """The CDI DataVolume importing the ISO, owned by the ISO (garbage collection removes it with the ISO)."""
    storage: dict = {"resources": {"requests": {"storage": requested_size(size_bytes)}}}
    if storage_class:
        storage["storageClassName"] = storage_class
    return {
        "apiVersion": CDI,
        "kind": "DataVolume",
        "metadata": {
            "name": import_name(name),
            "namespace": namespace,
            "labels": {ISO_LABEL: name, **MANAGED_BY},
            "ownerReferences": [
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "ISO",
                    "name": name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {"source": {"http": {"url": url}}, "storage": storage},
    }


def download_mark(started_at: datetime) -> str:
    return started_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def download_of(data_volume: dict) -> datetime | None:
    """The download (status.startedAt) a DataVolume was made for."""
    mark = (data_volume["metadata"].get("annotations") or {}).get(DOWNLOAD_ANNOTATION)
    return datetime.strptime(mark, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) if mark else None


@dataclass(frozen=True)
class ResolvedIso:
    """A Ready ISO a VM may use, as the VM's builder needs it."""

    namespace: str
    name: str
    uid: str
    size: int  # bytes


def iso_reference(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def copy_name(vm_name: str, iso: ResolvedIso) -> str:
    """The VM's copy of the ISO: one per VM and ISO (the ISO's uid: a re-registered ISO is copied anew)."""
    return f"{vm_name}-iso-{iso.uid[:8]}"


def copy_template(vm_name: str, iso: ResolvedIso, storage_class: str) -> dict:
    """A dataVolumeTemplate cloning the ISO's PVC into the VM's namespace."""
    storage: dict = {"resources": {"requests": {"storage": requested_size(iso.size)}}}
    if storage_class:
        storage["storageClassName"] = storage_class
    return {
        "metadata": {"name": copy_name(vm_name, iso)},
        "spec": {"source": {"pvc": {"namespace": iso.namespace, "name": import_name(iso.name)}}, "storage": storage},
    }


def blank_disk_template(name: str, size: str, storage_class: str) -> dict:
    """The blank root disk an ISO installs onto."""
    storage: dict = {"resources": {"requests": {"storage": size}}}
    if storage_class:
        storage["storageClassName"] = storage_class
    return {"metadata": {"name": name}, "spec": {"source": {"blank": {}}, "storage": storage}}


def cdrom(vm_name: str, iso: ResolvedIso, boot: bool) -> tuple[dict, dict]:
    """(disk, volume) of a read-only SATA CD-ROM holding the VM's copy of the ISO; first to boot when `boot`."""
    name = copy_name(vm_name, iso)
    disk: dict = {"name": name, "cdrom": {"bus": CDROM_BUS}}
    if boot:
        disk["bootOrder"] = 1
    return disk, {"name": name, "dataVolume": {"name": name}}


def iso_parts(
    vm_name: str, boot: ResolvedIso | None, attached: ResolvedIso | None, storage_class: str
) -> tuple[list[dict], list[dict], list[dict]]:
    """(disks, volumes, dataVolumeTemplates) for the VM's CD-ROMs; an ISO both booted and attached is one CD-ROM."""
    disks, volumes, templates = [], [], []
    for iso, boot_from in ((boot, True), (attached, False)):
        if iso is None or (not boot_from and boot is not None and iso.uid == boot.uid):
            continue
        disk, volume = cdrom(vm_name, iso, boot_from)
        disks.append(disk)
        volumes.append(volume)
        templates.append(copy_template(vm_name, iso, storage_class))
    return disks, volumes, templates


def attached_reference(text: str) -> IsoReference:
    """spec.attachedISO: a name, or namespace/name."""
    namespace, _, name = text.rpartition("/")
    return IsoReference(name=name, namespace=namespace or None)


def vm_iso_references(namespace: str, spec: dict) -> Iterator[tuple[str, str, str]]:
    """(field, ISO namespace, ISO name) for each ISO a VM's spec names (raw spec: also for indexes)."""
    boot = (spec.get("source") or {}).get("iso")
    if boot:
        yield "spec.source.iso", boot.get("namespace") or namespace, boot["name"]
    if spec.get("attachedISO"):
        attached = attached_reference(spec["attachedISO"])
        yield "spec.attachedISO", attached.namespace or namespace, attached.name


def iso_users(vms: Any, namespace: str, name: str, public: bool) -> list[str]:
    """The VMs (namespace/name) using the ISO: naming it, not being deleted, allowed to (same namespace or public)."""
    return sorted(
        iso_reference(vm_namespace, vm_name)
        for (vm_namespace, vm_name), store in vms.items()
        for vm in store
        if not vm["metadata"].get("deletionTimestamp")
        and (public or vm_namespace == namespace)
        and any((ns, n) == (namespace, name) for _, ns, n in vm_iso_references(vm_namespace, vm.get("spec") or {}))
    )


class IsoUnusable(Exception):
    """The VM cannot use an ISO it names (yet); the message names the ISO, the field and the fix."""

    def __init__(self, message: str, waiting: bool) -> None:
        super().__init__(message)
        self.waiting = waiting  # True: it will be usable on its own (downloading); False: the user must act


def resolve_iso(
    lookup: Callable[[str, str], dict | None], namespace: str, field: str, reference: IsoReference, boot: bool
) -> ResolvedIso:
    """The ISO a VM names, if the VM may use it now; IsoUnusable says why not."""
    iso_namespace = reference.namespace or namespace
    where = f"ISO {iso_reference(iso_namespace, reference.name)} ({field})"
    iso = lookup(iso_namespace, reference.name)
    if iso is None:
        raise IsoUnusable(
            f"{where} does not exist: register it (kind ISO), or name an existing one (kubectl get iso -A); "
            "the VM waits for it",
            waiting=False,
        )
    spec, status = iso.get("spec") or {}, iso.get("status") or {}
    if iso_namespace != namespace and not spec.get("public"):
        raise IsoUnusable(
            f"{where} is private to namespace {iso_namespace}: register the ISO in this namespace, "
            "or ask its owner to make it public (spec.public: true)",
            waiting=False,
        )
    if iso["metadata"].get("deletionTimestamp"):
        raise IsoUnusable(f"{where} is being deleted: name another ISO", waiting=False)
    if boot and spec.get("bootable") is False:
        raise IsoUnusable(
            f"{where} is not bootable (spec.bootable: false): boot from a bootable ISO, "
            "or attach this one as spec.attachedISO",
            waiting=False,
        )
    phase = status.get("phase")
    if phase != "Ready" or not status.get("size"):
        if phase == "Failed":
            raise IsoUnusable(f"{where} failed to download: see its Ready condition, retry it or name another", False)
        progress = f" {status['progress']}" if status.get("progress") else ""
        raise IsoUnusable(f"{where} is {phase or 'Pending'}{progress}: the VM waits until it is Ready", waiting=True)
    return ResolvedIso(iso_namespace, reference.name, iso["metadata"]["uid"], int(status["size"]))


def resolve_isos(
    lookup: Callable[[str, str], dict | None], namespace: str, spec: VirtualMachineSpec
) -> tuple[ResolvedIso | None, ResolvedIso | None]:
    """(boot ISO, attached ISO) of a VM, each usable now; IsoUnusable otherwise."""
    boot = resolve_iso(lookup, namespace, "spec.source.iso", spec.source.iso, True) if spec.source.iso else None
    attached = (
        resolve_iso(lookup, namespace, "spec.attachedISO", attached_reference(spec.attachedISO), False)
        if spec.attachedISO
        else None
    )
    return boot, attached
