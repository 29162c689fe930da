"""A launcher pod the API server refuses, e.g. over a namespace's ResourceQuota (pure).

KubeVirt reports the refusal on the VMI as `Synchronized=False`, reason `FailedCreate`, with the
API server's message, and retries with back-off; the VM says which quota and resource, and the fix.
"""

from __future__ import annotations

import re

from ..api.virtualmachine import VirtualMachineSpec

QUOTA_EXCEEDED = "QuotaExceeded"
LAUNCHER_POD_REFUSED = "LauncherPodRefused"
# The quota admission plugin's message: "exceeded quota: NAME, requested: R=N, used: R=N, limited: R=N".
_EXCEEDED = re.compile(r"exceeded quota: (?P<quota>[^,]+), requested: (?P<requested>.*), used: (?P<used>.*), "
                       r"limited: (?P<limited>.*)$")  # fmt: skip


def launcher_refusal(spec: VirtualMachineSpec, vmi: dict | None) -> tuple[str, str] | None:
    """(reason, message) while KubeVirt cannot create the VM's launcher pod; None otherwise."""
    conditions = ((vmi or {}).get("status") or {}).get("conditions", [])
    failed = next(
        (
            c
            for c in conditions
            if c["type"] == "Synchronized" and c["status"] == "False" and c.get("reason") == "FailedCreate"
        ),
        None,
    )
    if failed is None:
        return None
    message = failed.get("message", "")
    match = _EXCEEDED.search(message)
    if match is None:
        return LAUNCHER_POD_REFUSED, (f"KubeVirt cannot create the VM's launcher pod and keeps retrying: {message}")
    gpu = f" (spec.gpu: GPUProfile {spec.gpu.profile})" if spec.gpu is not None else ""
    return QUOTA_EXCEEDED, (
        f"not started: the namespace's ResourceQuota {match['quota']} is used up: the VM asks for "
        f"{match['requested']}{gpu}, the namespace uses {match['used']} of {match['limited']}. The VM starts "
        "by itself once another VM of the namespace stops and frees it (KubeVirt retries with back-off); "
        f"or ask an administrator to raise the quota (kubectl describe resourcequota {match['quota']})"
    )
