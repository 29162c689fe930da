"""The KubeVirt and CDI kinds the test control plane serves, with their CRD names,
subresources and printer columns as KubeVirt v1.8 / CDI v1.63 register them."""

from __future__ import annotations

from dataclasses import dataclass

KUBEVIRT = "kubevirt"  # directory of the npm package's dist/ holding each model set
CDI = "containerized-data-importer"


@dataclass(frozen=True)
class KindSpec:
    """How one kind becomes a CustomResourceDefinition."""

    kind: str
    group: str
    version: str
    plural: str
    short_names: tuple[str, ...]
    model: str  # root interface in the npm package
    package_dir: str
    status_subresource: bool
    printer_columns: tuple[dict, ...] = ()
    categories: tuple[str, ...] = ("all",)

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


def _column(name: str, json_path: str, type_: str = "string", **extra) -> dict:
    return {"name": name, "type": type_, "jsonPath": json_path, **extra}


_AGE = _column("Age", ".metadata.creationTimestamp", "date")
_PHASE = _column("Phase", ".status.phase")


def _condition(name: str, condition_type: str, **extra) -> dict:
    return _column(name, f".status.conditions[?(@.type=='{condition_type}')].status", **extra)


KUBEVIRT_KINDS: tuple[KindSpec, ...] = (
    KindSpec(
        kind="VirtualMachine",
        group="kubevirt.io",
        version="v1",
        plural="virtualmachines",
        short_names=("vm", "vms"),
        model="V1VirtualMachine",
        package_dir=KUBEVIRT,
        status_subresource=True,
        printer_columns=(
            _AGE,
            _column("Status", ".status.printableStatus", description="Human Readable Status"),
            _condition("Ready", "Ready"),
        ),
    ),
    KindSpec(
        kind="VirtualMachineInstance",
        group="kubevirt.io",
        version="v1",
        plural="virtualmachineinstances",
        short_names=("vmi", "vmis"),
        model="V1VirtualMachineInstance",
        package_dir=KUBEVIRT,
        status_subresource=False,
        printer_columns=(
            _AGE,
            _PHASE,
            _column("IP", ".status.interfaces[0].ipAddress"),
            _column("NodeName", ".status.nodeName"),
            _condition("Ready", "Ready"),
            _condition("Live-Migratable", "LiveMigratable", priority=1),
            _condition("Paused", "Paused", priority=1),
        ),
    ),
    KindSpec(
        kind="VirtualMachineInstanceMigration",
        group="kubevirt.io",
        version="v1",
        plural="virtualmachineinstancemigrations",
        short_names=("vmim", "vmims"),
        model="V1VirtualMachineInstanceMigration",
        package_dir=KUBEVIRT,
        status_subresource=True,
        printer_columns=(
            _column("Phase", ".status.phase", description="The current phase of VM instance migration"),
            _column("VMI", ".spec.vmiName", description="The name of the VMI to perform the migration on"),
        ),
    ),
    KindSpec(
        kind="VirtualMachineSnapshot",
        group="snapshot.kubevirt.io",
        version="v1beta1",
        plural="virtualmachinesnapshots",
        short_names=("vmsnapshot", "vmsnapshots"),
        model="V1beta1VirtualMachineSnapshot",
        package_dir=KUBEVIRT,
        status_subresource=True,
        printer_columns=(
            _column("SourceKind", ".spec.source.kind"),
            _column("SourceName", ".spec.source.name"),
            _PHASE,
            _column("ReadyToUse", ".status.readyToUse", "boolean"),
            _column("CreationTime", ".status.creationTime", "date"),
            _column("Error", ".status.error.message"),
        ),
    ),
    KindSpec(
        kind="VirtualMachineSnapshotContent",
        group="snapshot.kubevirt.io",
        version="v1beta1",
        plural="virtualmachinesnapshotcontents",
        short_names=("vmsnapshotcontent", "vmsnapshotcontents"),
        model="V1beta1VirtualMachineSnapshotContent",
        package_dir=KUBEVIRT,
        status_subresource=True,
        printer_columns=(
            _column("ReadyToUse", ".status.readyToUse", "boolean"),
            _column("CreationTime", ".status.creationTime", "date"),
            _column("Error", ".status.error.message"),
        ),
    ),
    KindSpec(
        kind="VirtualMachineRestore",
        group="snapshot.kubevirt.io",
        version="v1beta1",
        plural="virtualmachinerestores",
        short_names=("vmrestore", "vmrestores"),
        model="V1beta1VirtualMachineRestore",
        package_dir=KUBEVIRT,
        status_subresource=True,
        printer_columns=(
            _column("TargetKind", ".spec.target.kind"),
            _column("TargetName", ".spec.target.name"),
            _column("Complete", ".status.complete", "boolean"),
            _column("RestoreTime", ".status.restoreTime", "date"),
        ),
    ),
    KindSpec(
        kind="DataVolume",
        group="cdi.kubevirt.io",
        version="v1beta1",
        plural="datavolumes",
        short_names=("dv", "dvs"),
        model="V1beta1DataVolume",
        package_dir=CDI,
        status_subresource=True,
        printer_columns=(
            _column("Phase", ".status.phase", description="The phase the data volume is in"),
            _column(
                "Progress", ".status.progress", description="Transfer progress in percentage if known, N/A otherwise"
            ),
            _column(
                "Restarts",
                ".status.restartCount",
                "integer",
                description="The number of times the transfer has been restarted.",
            ),
            _AGE,
        ),
    ),
    KindSpec(
        kind="DataSource",
        group="cdi.kubevirt.io",
        version="v1beta1",
        plural="datasources",
        short_names=("das",),
        model="V1beta1DataSource",
        package_dir=CDI,
        status_subresource=False,
    ),
)
