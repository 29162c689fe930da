"""A launcher pod refused by the API server (a namespace's GPU ResourceQuota): the VM says which and how to fix it."""

from __future__ import annotations

from virtstack.api.virtualmachine import VirtualMachineSpec, VirtualMachineStatus
from virtstack.status.quota import launcher_refusal
from virtstack.status.virtualmachine import Observed, compute_status

REFUSED = (
    'failed to create virtual machine pod: pods "virt-launcher-gpu-2-x7k2p" is forbidden: exceeded quota: gpus, '
    "requested: requests.nvidia.com/GRID_K240Q=1, used: requests.nvidia.com/GRID_K240Q=1, "
    "limited: requests.nvidia.com/GRID_K240Q=1"
)


def gpu_spec() -> VirtualMachineSpec:
    return VirtualMachineSpec.model_validate({"source": {"template": {"image": "x"}}, "gpu": {"profile": "k240q"}})


def pending_vmi(message: str) -> dict:
    synchronized = {"type": "Synchronized", "status": "False", "reason": "FailedCreate", "message": message}
    return {"metadata": {"name": "gpu-2"}, "status": {"phase": "Pending", "conditions": [synchronized]}}


def test_quota_refusal_names_the_quota_the_resource_and_the_fix() -> None:
    reason, message = launcher_refusal(gpu_spec(), pending_vmi(REFUSED))
    assert reason == "QuotaExceeded"
    assert "ResourceQuota gpus is used up" in message
    assert "asks for requests.nvidia.com/GRID_K240Q=1 (spec.gpu: GPUProfile k240q)" in message
    assert "uses requests.nvidia.com/GRID_K240Q=1 of requests.nvidia.com/GRID_K240Q=1" in message
    assert "kubectl describe resourcequota gpus" in message


def test_other_refusals_are_reported_as_they_are() -> None:
    reason, message = launcher_refusal(gpu_spec(), pending_vmi("failed to create virtual machine pod: denied"))
    assert reason == "LauncherPodRefused" and message.endswith("denied")
    assert launcher_refusal(gpu_spec(), {"metadata": {}, "status": {"phase": "Running"}}) is None
    assert launcher_refusal(gpu_spec(), None) is None


def test_the_vm_reports_quota_exceeded_in_ready_and_scheduled() -> None:
    kubevirt_vm = {"spec": {"runStrategy": "Once"}, "status": {"printableStatus": "Starting", "runStrategy": "Once"}}
    observed = Observed(kubevirt_vm=kubevirt_vm, vmi=pending_vmi(REFUSED), instance_name="i-1")
    status = compute_status(1, gpu_spec(), observed, VirtualMachineStatus(), "2026-11-25T12:00:00Z")
    conditions = {c.type: c for c in status.conditions}
    assert (conditions["Scheduled"].status, conditions["Scheduled"].reason) == ("False", "QuotaExceeded")
    assert (conditions["Ready"].status, conditions["Ready"].reason) == ("False", "QuotaExceeded")
    assert status.state == "Starting"
