"""Names the operator derives: deterministic, so a rerun after a crash derives the same ones."""

from __future__ import annotations

import re

from ..api.virtualmachine import VirtualMachineSpec

INSTANCE_PREFIX = "i"
MAX_LABEL = 63


def instance_name(uid: str, display_name: str, append_display_name: bool) -> str:
    """CloudStack's internal name i-<id>[-<display name>], as an RFC 1123 label.

    The id is the VM's UID's first 8 hex digits: stable for the VM's life and unique enough per
    cluster without a shared counter (a counter would need a write per VM and a lock).
    """
    name = f"{INSTANCE_PREFIX}-{uid.replace('-', '')[:8]}"
    if append_display_name:
        suffix = rfc1123_fragment(display_name)
        if suffix:
            name = f"{name}-{suffix}"[:MAX_LABEL].rstrip("-")
    return name


def rfc1123_fragment(text: str) -> str:
    """Lower-case letters, digits and single dashes only."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def display_name(name: str, spec: VirtualMachineSpec) -> str:
    return spec.displayName or name


def hostname(name: str, spec: VirtualMachineSpec) -> str:
    """The guest's host name: spec.hostname, else the object's name cut to an RFC 1123 label."""
    return spec.hostname or rfc1123_fragment(name)[:MAX_LABEL].rstrip("-")
