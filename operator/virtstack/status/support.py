"""What this version of the operator carries out: a VM asking for more is not created, and says so.

Creating it without the unsupported part would pretend; refusing keeps the VM from being half-made.
"""

from __future__ import annotations

from ..api.virtualmachine import VirtualMachineSpec

# Spec fields not carried out yet.
_NOT_YET_RECONCILED = ("attachedISO",)


def unsupported_fields(spec: VirtualMachineSpec) -> list[str]:
    """Spec fields set to something the operator cannot carry out yet."""
    fields = [f"spec.{name}" for name in _NOT_YET_RECONCILED if name in spec.model_fields_set and getattr(spec, name)]
    if spec.source.iso is not None:
        fields.append("spec.source.iso")
    return fields
