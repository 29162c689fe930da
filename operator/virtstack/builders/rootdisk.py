"""Reinstall and reset-on-reboot: which source the root disk is built from, and when it is replaced (pure).

CloudStack's restoreVirtualMachine, declared: a new `spec.reinstallRequestedAt` recreates the root
disk from `spec.source` (a new source of the same kind allowed); editing the source alone never
touches the disk, the VM keeps the source it was installed from and reports `ReinstallPending`.

Every step is derived from objects the API server holds, so a crash at any point is repaired:
- The KubeVirt VM records the source its root disk is made from, and the request it answers
  (annotation `virtstack.io/root-disk`); a request that differs from the recorded one is new.
- KubeVirt copies dataVolumeTemplates' metadata to the DataVolume it creates, and the template's
  metadata to each VMI: both carry the request they were made under, so a disk or a VMI older
  than the request is recognised as such.
- A disk made before the request is replaced by halting the KubeVirt VM, deleting the root
  DataVolume once no VMI uses it (foreground: its PVC goes first, so the new DataVolume cannot
  adopt the old claim), then restoring the run strategy: KubeVirt recreates the DataVolume from
  its template and CDI fills it from the source before the VM starts. A container disk is fresh
  in every VMI, so replacing the VMI is the whole reinstall.
- Reset on reboot: a reboot request reaching a running VM whose disk persists names that
  DataVolume's UID on the KubeVirt VM (annotation `virtstack.io/root-disk-reset`) before halting
  it; the disk with that UID is then replaced as above.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..api.virtualmachine import Source, VirtualMachineSpec
from .kubevirt_vm import reboot_pending, root_disk_name
from .labels import VM_LABEL

SOURCE_ANNOTATION = "virtstack.io/root-disk"
RESET_ANNOTATION = "virtstack.io/root-disk-reset"
# On the root DataVolume (through its template) and on each VMI (through the VM template).
REINSTALL_ANNOTATION = "virtstack.io/reinstall-requested-at"

# ReinstallPending reasons.
UP_TO_DATE = "UpToDate"
SOURCE_CHANGED = "SourceChanged"
KIND_CHANGE_REFUSED = "KindChangeRefused"
SNAPSHOTS_EXIST = "SnapshotsExist"
REINSTALLING = "Reinstalling"


@dataclass(frozen=True)
class RootDiskPlan:
    source: Source  # what the KubeVirt VM's root disk is built from
    request: str  # the reinstall request that source answers ("" for none)
    reset_uid: str | None = None  # the root DataVolume being replaced for a reboot
    halt: bool = False  # the KubeVirt VM stays Halted while its old root disk goes
    delete_disk: bool = False  # no VMI uses the old root DataVolume any more: delete it now
    replace_vmi: bool = False  # the VMI runs on a disk older than the request: delete it
    pending_reason: str = UP_TO_DATE  # the ReinstallPending condition
    pending_message: str = ""
    reinstalled: bool = False  # spec.reinstallRequestedAt is carried out


def reinstall_request(spec: VirtualMachineSpec) -> str:
    return spec.reinstallRequestedAt.strftime("%Y-%m-%dT%H:%M:%SZ") if spec.reinstallRequestedAt else ""


def source_kind(source: Source) -> str:
    return "ISO" if source.iso is not None else "template"


def describe(source: Source) -> str:
    return json.dumps(source.model_dump(mode="json", exclude_none=True), sort_keys=True, separators=(",", ":"))


def recorded(kubevirt_vm: dict | None) -> tuple[Source, str] | None:
    """The source and request the KubeVirt VM's root disk was last built for; None for a VM not built yet."""
    value = (((kubevirt_vm or {}).get("metadata") or {}).get("annotations") or {}).get(SOURCE_ANNOTATION)
    if not value:
        return None
    record = json.loads(value)
    return Source.model_validate(record["source"]), record.get("request", "")


def persistent(source: Source) -> bool:
    """The root disk is a DataVolume (kept across VMIs), not a container disk (fresh in every VMI)."""
    return source.template is None or source.template.image is None


def plan_root_disk(
    spec: VirtualMachineSpec,
    kubevirt_vm: dict | None,
    data_volume: dict | None,
    vmi: dict | None,
    snapshot_count: int = 0,
) -> RootDiskPlan:
    """`data_volume`: the DataVolume named root_disk_name(vm), as observed; `snapshot_count`: the VM's VMSnapshots.

    CloudStack restores no VM that has VM snapshots (a revert would bring the old disk back), so a
    reinstall request waits while any exist, and says so.
    """
    wanted = reinstall_request(spec)
    record = recorded(kubevirt_vm)
    refused = None
    if record is None:
        source, request = spec.source, wanted  # a new VM: its first disk answers the request already
    elif wanted and record[1] != wanted and source_kind(spec.source) == source_kind(record[0]) and not snapshot_count:
        source, request = spec.source, wanted  # a new reinstall request
    else:  # no new request (a removed one asks for nothing: the disk stays), or one that must wait
        source, request = record
        if source_kind(spec.source) != source_kind(source):
            refused = KIND_CHANGE_REFUSED
        elif wanted and record[1] != wanted:
            refused = SNAPSHOTS_EXIST
    live_vmi = vmi is not None and not vmi["metadata"].get("deletionTimestamp")
    reset_uid = _reset_uid(spec, kubevirt_vm, data_volume, vmi, source)
    doomed = data_volume is not None and (
        _annotation(data_volume, REINSTALL_ANNOTATION) != request
        or data_volume["metadata"]["uid"] == reset_uid
        or not persistent(source)  # the new source is a container disk: the old DataVolume goes
    )
    older_vmi = vmi is not None and _annotation(vmi, REINSTALL_ANNOTATION) != request  # live or on its way out
    replace_vmi = live_vmi and older_vmi
    reinstalling = wanted != "" and request == wanted and (doomed or older_vmi or _awaits_disk(source, data_volume))
    reason, message = _pending(spec, source, record, refused, reinstalling, snapshot_count)
    return RootDiskPlan(
        source=source,
        request=request,
        reset_uid=reset_uid,
        halt=doomed,
        delete_disk=doomed and vmi is None and not data_volume["metadata"].get("deletionTimestamp"),
        replace_vmi=replace_vmi and not doomed,
        pending_reason=reason,
        pending_message=message,
        reinstalled=wanted != "" and request == wanted and not reinstalling,
    )


def _awaits_disk(source: Source, data_volume: dict | None) -> bool:
    return persistent(source) and data_volume is None


def _reset_uid(
    spec: VirtualMachineSpec, kubevirt_vm: dict | None, data_volume: dict | None, vmi: dict | None, source: Source
) -> str | None:
    """The root DataVolume a reboot replaces: named when a reboot reaches a running VM, kept until it is gone."""
    if data_volume is None:
        return None
    uid = data_volume["metadata"]["uid"]
    marked = (((kubevirt_vm or {}).get("metadata") or {}).get("annotations") or {}).get(RESET_ANNOTATION)
    if marked == uid:
        return uid
    if spec.rootDisk.resetOnReboot and persistent(source) and reboot_pending(spec, vmi):
        return uid
    return None


def _annotation(obj: dict, key: str) -> str:
    return (obj["metadata"].get("annotations") or {}).get(key, "")


def _pending(
    spec: VirtualMachineSpec,
    source: Source,
    record: tuple[Source, str] | None,
    refused: str | None,
    reinstalling: bool,
    snapshot_count: int,
) -> tuple[str, str]:
    if refused == SNAPSHOTS_EXIST:
        return SNAPSHOTS_EXIST, (
            f"spec.reinstallRequestedAt waits: the VM has {snapshot_count} VMSnapshot(s), and a reinstall is "
            "not carried out while snapshots exist (as in CloudStack: reverting one would bring the old disk "
            "back); delete them, and the reinstall proceeds"
        )
    if refused == KIND_CHANGE_REFUSED:
        return KIND_CHANGE_REFUSED, (
            f"spec.source changes the root disk's kind from {source_kind(source)} to {source_kind(spec.source)}: "
            "a reinstall keeps the kind (template to template, ISO to ISO), so the VM keeps its disk from "
            f"{describe(source)}; restore a {source_kind(source)} source, or create a new VM"
        )
    if reinstalling:
        how = (
            "the VM is halted, its old root disk deleted, and it starts again on the new one"
            if persistent(source)
            else "a container disk is fresh in every VMI, so the VMI is replaced, and the VM starts again on the "
            "new disk"
        )
        return REINSTALLING, (
            f"recreating the root disk from {describe(source)} (spec.reinstallRequestedAt "
            f"{reinstall_request(spec)}): {how} as spec.state asks"
        )
    if record is not None and describe(spec.source) != describe(source):
        return SOURCE_CHANGED, (
            f"spec.source differs from the source the root disk was made from ({describe(source)}); the disk "
            "is kept: set spec.reinstallRequestedAt to now to recreate it from spec.source (its contents are lost)"
        )
    return UP_TO_DATE, "the root disk is made from spec.source"


def with_root_disk(kubevirt_vm: dict, plan: RootDiskPlan) -> dict:
    """The KubeVirt VM marked with what its root disk answers; Halted while an old root disk is replaced."""
    metadata = kubevirt_vm["metadata"]
    annotations = {
        **metadata.get("annotations", {}),
        SOURCE_ANNOTATION: json.dumps(
            {"source": plan.source.model_dump(mode="json", exclude_none=True), "request": plan.request},
            sort_keys=True,
            separators=(",", ":"),
        ),
    }
    if plan.reset_uid:
        annotations[RESET_ANNOTATION] = plan.reset_uid
    spec = dict(kubevirt_vm["spec"])
    if plan.halt:
        spec["runStrategy"] = "Halted"
    spec["template"] = _marked(spec["template"], plan.request)
    name = root_disk_name(metadata["name"])
    if spec.get("dataVolumeTemplates"):
        spec["dataVolumeTemplates"] = [
            _marked(t, plan.request, {VM_LABEL: metadata["name"]}) if t["metadata"]["name"] == name else t
            for t in spec["dataVolumeTemplates"]
        ]
    return {**kubevirt_vm, "metadata": {**metadata, "annotations": annotations}, "spec": spec}


def _marked(template: dict, request: str, labels: dict | None = None) -> dict:
    """A VM or DataVolume template whose objects carry the reinstall request they were made under."""
    metadata = dict(template.get("metadata") or {})
    if labels:
        metadata["labels"] = {**metadata.get("labels", {}), **labels}
    if request:
        metadata["annotations"] = {**metadata.get("annotations", {}), REINSTALL_ANNOTATION: request}
    return {**template, "metadata": metadata}
