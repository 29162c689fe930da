"""CPU and memory hotplug decisions (pure).

Follows kubevirt/kubevirt pkg/virt-controller/watch/vm/vm.go (`handleCPUChangeRequest`,
`handleMemoryHotplugRequest`, `syncRestartRequired`, `setupCPUHotplug` / memory defaults at VMI
creation), pkg/defaults/defaults.go (maxSockets = sockets x 4, capped at 512 vCPUs; maxGuest =
guest x 4 when guest >= 1 GiB), pkg/virt-controller/watch/vmi (HotVCPUChange / HotMemoryChange)
and pkg/virt-controller/watch/workload-updater/workload-updater.go (a migration named
`kubevirt-workload-update-*` for LiveMigratable VMIs with a pending change). The testbed's KubeVirt
configuration is the default one: vmRolloutStrategy LiveUpdate, workloadUpdateMethods [LiveMigrate].
"""

from __future__ import annotations

import hashlib

from .quantity import format_bytes, parse_quantity

MAX_HOTPLUG_RATIO = 4
MAX_VCPUS = 512
GIB = 2**30
WORKLOAD_UPDATE_PREFIX = "kubevirt-workload-update-"


def _cpu(spec: dict) -> dict:
    return (spec.get("domain") or {}).get("cpu") or {}


def _guest(spec: dict) -> str | None:
    return ((spec.get("domain") or {}).get("memory") or {}).get("guest")


def hotplug_defaults(spec: dict) -> dict:
    """defaults.go: the VMI spec with maxSockets / maxGuest filled in (a copy when changed)."""
    domain = spec.get("domain") or {}
    cpu = domain.get("cpu")
    out = spec
    if cpu and cpu.get("sockets") and not cpu.get("maxSockets"):
        per_socket = cpu.get("cores", 1) * cpu.get("threads", 1)
        max_sockets = min(cpu["sockets"] * MAX_HOTPLUG_RATIO, max(MAX_VCPUS // per_socket, cpu["sockets"]))
        out = {**out, "domain": {**out["domain"], "cpu": {**cpu, "maxSockets": max_sockets}}}
    memory = domain.get("memory") or {}
    guest = memory.get("guest")
    if guest and not memory.get("maxGuest") and parse_quantity(guest) >= GIB:
        max_guest = format_bytes(parse_quantity(guest) * MAX_HOTPLUG_RATIO)
        out = {**out, "domain": {**out["domain"], "memory": {**memory, "maxGuest": max_guest}}}
    return out


def without_hotplug_fields(spec: dict) -> dict:
    """The template spec minus what hotplug applies live (for syncRestartRequired's comparison)."""
    domain = dict(spec.get("domain") or {})
    if "cpu" in domain:
        domain["cpu"] = {k: v for k, v in domain["cpu"].items() if k not in ("sockets", "maxSockets")}
    if "memory" in domain:
        domain["memory"] = {k: v for k, v in domain["memory"].items() if k not in ("guest", "maxGuest")}
    return {**spec, "domain": domain}


def plan_hotplug(template: dict, vmi: dict, migratable: bool) -> tuple[dict | None, str | None]:
    """(VMI domain patch, RestartRequired message) for socket / guest memory changes of a running VMI."""
    spec = vmi.get("spec") or {}
    patch: dict = {}
    want, have = _cpu(template).get("sockets"), _cpu(spec).get("sockets")
    if want is not None and have is not None and want != have:
        max_sockets = _cpu(spec).get("maxSockets")
        if want < have:
            return None, "Reduction of CPU socket count requires a restart"
        if not max_sockets or want > max_sockets:
            return None, "CPU sockets updated in template spec to a value higher than what's available"
        patch["cpu"] = {"sockets": want}
    want_guest, have_guest = _guest(template), _guest(spec)
    if want_guest and have_guest and parse_quantity(want_guest) != parse_quantity(have_guest):
        boot = ((vmi.get("status") or {}).get("memory") or {}).get("guestAtBoot") or have_guest
        max_guest = ((spec.get("domain") or {}).get("memory") or {}).get("maxGuest")
        if parse_quantity(want_guest) < parse_quantity(boot):
            return None, "Memory hotplug: the guest memory cannot be reduced below its boot value"
        if not max_guest:
            return None, "Memory hotplug is not supported for this VM: no maxGuest"
        if parse_quantity(want_guest) > parse_quantity(max_guest):
            return None, "Memory updated in template spec to a value higher than what's available"
        if not migratable:
            return None, "Memory hotplug is not allowed: the VMI is not live-migratable"
        patch["memory"] = {"guest": want_guest}
    return (patch or None), None


def pending_changes(vmi: dict) -> list[dict]:
    """HotVCPUChange / HotMemoryChange while the spec is ahead of what the guest runs with."""
    spec, status = vmi.get("spec") or {}, vmi.get("status") or {}
    conditions = []
    topology = status.get("currentCPUTopology") or {}
    sockets = _cpu(spec).get("sockets")
    if sockets and topology.get("sockets") and topology["sockets"] != sockets:
        conditions.append({"type": "HotVCPUChange", "status": "True"})
    current = (status.get("memory") or {}).get("guestCurrent")
    guest = _guest(spec)
    if guest and current and parse_quantity(current) != parse_quantity(guest):
        conditions.append({"type": "HotMemoryChange", "status": "True"})
    return conditions


def boot_status(spec: dict) -> dict:
    """What virt-handler reports once the domain runs: the topology and memory it booted with."""
    status: dict = {}
    cpu = _cpu(spec)
    if cpu:
        status["currentCPUTopology"] = {
            "sockets": cpu.get("sockets", 1),
            "cores": cpu.get("cores", 1),
            "threads": cpu.get("threads", 1),
        }
    guest = _guest(spec)
    if guest:
        status["memory"] = {"guestAtBoot": guest, "guestCurrent": guest, "guestRequested": guest}
    return status


def applied_status(vmi: dict) -> dict:
    """After a workload-update migration: the guest runs with the spec's topology and memory."""
    status = boot_status(vmi.get("spec") or {})
    old_memory = (vmi.get("status") or {}).get("memory") or {}
    if "memory" in status and old_memory.get("guestAtBoot"):
        status["memory"]["guestAtBoot"] = old_memory["guestAtBoot"]
    return status


def workload_update_name(vmi: dict) -> str:
    """One migration per pending change (a deterministic name: a retry cannot create two)."""
    spec = vmi.get("spec") or {}
    key = f"{vmi['metadata']['uid']}/{_cpu(spec).get('sockets')}/{_guest(spec)}"
    return WORKLOAD_UPDATE_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:5]


def workload_update(vmi: dict, migrations: list[dict]) -> dict | None:
    """workload-updater.go: the migration to create for a running, migratable VMI with a pending change."""
    status = vmi.get("status") or {}
    if status.get("phase") != "Running" or vmi["metadata"].get("deletionTimestamp"):
        return None
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    if not any(conditions.get(kind, {}).get("status") == "True" for kind in ("HotVCPUChange", "HotMemoryChange")):
        return None
    if conditions.get("LiveMigratable", {}).get("status") != "True":
        return None  # the CPU path does not check migratability: the change stays pending
    name = workload_update_name(vmi)
    for migration in migrations:
        if migration["spec"].get("vmiName") == vmi["metadata"]["name"] and (
            migration["metadata"]["name"] == name
            or (migration.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        ):
            return None
    return {
        "apiVersion": "kubevirt.io/v1",
        "kind": "VirtualMachineInstanceMigration",
        "metadata": {
            "name": name,
            "namespace": vmi["metadata"]["namespace"],
            "labels": {"kubevirt.io/vmi-name": vmi["metadata"]["name"], "kubevirt.io/workloadUpdateMigration": ""},
        },
        "spec": {"vmiName": vmi["metadata"]["name"]},
    }
